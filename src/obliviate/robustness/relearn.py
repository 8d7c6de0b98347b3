"""The relearning attack: fine-tune an unlearned model for a few steps on a small share of the
forget set (or on retained data) and measure how fast the rest of the forgotten knowledge comes
back, beside the retrained model under the same attack.

A model that only hid the knowledge (a refusal, a suppressed output) gets it back after a few
steps on related examples; a model that never had it (the retrained one) learns only what the
attack teaches. So the relearned examples are kept out of the measurement: the curves are on
the held-out part of the forget set.

References:
    Hu, Fu, Wu, Smith, "Jogging the Memory of Unlearned LLMs Through Targeted Relearning
    Attacks", ICLR 2025 (arXiv 2406.13356); Lynch, Guo, Ewart, Casper, Hadfield-Menell, "Eight
    Methods to Evaluate Robust Unlearning in LLMs", 2024 (arXiv 2402.16835); Golatkar, Achille,
    Soatto, "Eternal Sunshine of the Spotless Net", CVPR 2020 (relearn time for classifiers).

Fidelity:
    - Follows: fine-tuning the unlearned model with the ordinary loss on a small subset of the
      forget data (or on retain data: Hu et al.'s "benign" relearning on related text) for a
      few steps, and comparing with the retrained model attacked the same way.
    - Departs: the attack's data is a random share of forget examples and the measurement
      the rest, instead of Hu et al.'s public text about the topic (tofu-mini has none);
      AdamW at a fixed learning rate rather than their per-model settings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from obliviate.errors import ConfigError, DataError
from obliviate.evaluate.utility import accuracy, per_example_loss, predict
from obliviate.train import cross_entropy_loss

if TYPE_CHECKING:
    from obliviate.llm.scenario import TofuScenario

STEPS = (0, 1, 2, 4, 8, 16, 32)


def _check(share: float, steps: Sequence[int]) -> list[int]:
    if not 0 < share < 1:
        raise ConfigError(f"The relearning share must be a float in (0, 1). Got {share!r}.")
    points = sorted({int(s) for s in steps})
    if not points or points[0] < 0:
        raise ConfigError(f"Relearning steps must be ints >= 0. Got {list(steps)!r}.")
    return points


def check_share(n: int, share: float) -> int:
    """How many of ``n`` forget examples a relearning ``share`` takes; at least one must be
    left to measure the attack on."""
    k = max(1, int(round(share * n)))
    if k >= n:
        raise DataError(f"A relearning share of {share} of {n} forget example(s) leaves none "
                        f"to measure; use a smaller protocol.share or a larger forget set.")
    return k


def split_share(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(attack indices, held-out indices): a random ``share`` of ``range(n)`` and the rest."""
    k = check_share(n, share)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:k]), np.sort(order[k:])


def _relearn_curve(model: nn.Module, steps: list[int], batches, loss_fn, measure, lr: float
                   ) -> dict[str, list[float]]:
    """Fine-tune a copy of ``model`` up to ``steps[-1]`` steps, measuring at each of ``steps``."""
    m = copy.deepcopy(model)
    for p in m.parameters():  # the attacker trains every weight
        p.requires_grad_(True)
    opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=0.0)
    curve: dict[str, list[float]] = {}
    done = 0
    for target in steps:
        while done < target:
            m.train()
            opt.zero_grad(set_to_none=True)
            loss_fn(m, next(batches)).backward()
            opt.step()
            done += 1
        m.eval()
        for key, v in measure(m).items():
            curve.setdefault(key, []).append(float(v))
    return curve


def _cycle(loader: DataLoader):
    while True:
        yield from loader


def _summary(curves: dict[str, list[float]], keys: Sequence[str], last: int) -> dict[str, float]:
    out = {}
    for key in keys:
        for who in ("", "retrained_"):
            if f"{who}{key}" in curves:
                out[f"{who}{key}@0"] = curves[f"{who}{key}"][0]
                out[f"{who}{key}@{last}"] = curves[f"{who}{key}"][-1]
        if f"retrained_{key}" in curves:
            out[f"{key}_gap@{last}"] = curves[key][-1] - curves[f"retrained_{key}"][-1]
    return out


# ---------------------------------------------------------------------------------- classifiers
def relearn_classifier(model: nn.Module, forget: DataLoader, *, retrained: nn.Module | None = None,
                       retain: DataLoader | None = None, data: str = "forget", share: float = 0.1,
                       steps: Sequence[int] = STEPS, lr: float = 1e-3, batch_size: int = 32,
                       seed: int = 0) -> dict[str, Any]:
    """Relearn a classifier on ``share`` of the forget set (``data="forget"``) or on as many
    retain examples (``data="retain"``), and follow forget accuracy and loss on the held-out
    forget examples, for ``model`` and, when given, ``retrained``.

    Returns:
        ``{"metrics": {...}, "curves": {"steps": [...], "forget_acc": [...],
        "forget_loss": [...], "retrained_forget_acc": [...], ...}}``; ``forget_acc_gap@K`` is
        the model's forget accuracy minus the retrained model's after the last step (0: no
        more recovery than a model that never saw the data).
    """
    points = _check(share, steps)
    if data not in ("forget", "retain"):
        raise ConfigError(f"The relearning data must be 'forget' or 'retain'. Got {data!r}.")
    ds = forget.dataset
    attack_idx, held_idx = split_share(len(ds), share, seed)
    if data == "retain":
        if retain is None:
            raise DataError("Relearning on retain data needs retain=<DataLoader>.")
        pool = np.random.default_rng(seed + 1).permutation(len(retain.dataset))
        source, attack_idx = retain.dataset, pool[:len(attack_idx)]
    else:
        source = ds
    collate = forget.collate_fn

    def attack() -> DataLoader:  # one per model: every model sees the same batches in order
        return DataLoader(Subset(source, attack_idx.tolist()), batch_size=batch_size,
                          shuffle=True, generator=torch.Generator().manual_seed(seed),
                          collate_fn=collate)

    held = DataLoader(Subset(ds, held_idx.tolist()), batch_size=512, collate_fn=collate)

    def measure(m: nn.Module) -> dict[str, float]:
        logits, labels = predict(m, held)
        return {"forget_acc": accuracy(logits, labels),
                "forget_loss": float(per_example_loss(logits, labels).mean())}

    curves: dict[str, Any] = {"steps": points}
    for who, m in (("", model), ("retrained_", retrained)):
        if m is None:
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            curve = _relearn_curve(m, points, _cycle(attack()), cross_entropy_loss, measure, lr)
        curves.update({f"{who}{k}": v for k, v in curve.items()})
    metrics = _summary(curves, ("forget_acc", "forget_loss"), points[-1])
    metrics.update({"attack_examples": float(len(attack_idx)), "held_examples": float(len(held_idx))})
    return {"metrics": metrics, "curves": curves}


# ---------------------------------------------------------------------------------- language models
def relearn_lm(model: nn.Module, sc: TofuScenario, *, retrained: nn.Module | None = None,
               data: str = "forget", share: float = 0.3, steps: Sequence[int] = (0, 2, 5, 10, 20),
               lr: float = 3e-4, batch_size: int = 8, seed: int = 0,
               cache: dict | None = None) -> dict[str, Any]:
    """Relearn a causal LM on ``share`` of the forget questions (their answers, and
    paraphrases when the scenario trains them) or on as many retained pairs, and follow the
    held-out forget questions: answer probability, ROUGE-L, truth-ratio score, and forget
    quality against the retrained (retain-only) model attacked the same way.

    Returns:
        ``{"metrics": {...}, "curves": {"steps": [...], "forget_prob": [...],
        "forget_rouge": [...], "forget_truth_ratio": [...], "forget_quality": [...],
        "retrained_forget_prob": [...], ...}}``. ``cache``: a dict kept across calls on the
        same scenario and retrained model, so that the retrained model is attacked once.
    """
    from obliviate.llm import metrics as M
    from obliviate.llm.data import loader
    from obliviate.llm.evaluate import question_stats, scenario_max_new_tokens
    from obliviate.llm.losses import nll

    points = _check(share, steps)
    if data not in ("forget", "retain"):
        raise ConfigError(f"The relearning data must be 'forget' or 'retain'. Got {data!r}.")
    attack_idx, held_idx = split_share(len(sc.forget_qa), share, seed)
    held = [sc.forget_qa[i] for i in held_idx]
    if data == "retain":
        pool = np.random.default_rng(seed + 1).permutation(len(sc.retain_qa))
        attack_qa = [sc.retain_qa[i] for i in pool[:len(attack_idx)]]
    else:
        attack_qa = [sc.forget_qa[i] for i in attack_idx]

    def batches():  # one per model: every model sees the same batches in order
        return loader(sc.training_pairs(attack_qa), batch_size=batch_size, seed=seed)

    def measure(m: nn.Module) -> dict[str, Any]:
        s = question_stats(m, sc.tokenizer, held, max_new_tokens=scenario_max_new_tokens(sc))
        return {"forget_prob": float(np.exp(-s["nll"]).mean()),
                "forget_rouge": float(s["rouge"].mean()),
                "forget_truth_ratio": M.truth_ratio_score(s["truth_ratio"], forget=True),
                "_tr": s["truth_ratio"]}

    curves: dict[str, Any] = {"steps": points}
    ratios: dict[str, list[np.ndarray]] = {}
    key = ("relearn_lm", data, share, tuple(points), lr, batch_size, seed)
    for who, m in (("", model), ("retrained_", retrained)):
        if m is None:
            continue
        if who and cache is not None and key in cache:
            curve, ratios[who] = cache[key]
            curves.update({f"{who}{k}": v for k, v in curve.items()})
            continue
        kept: list[np.ndarray] = []

        def keep(mm: nn.Module, kept=kept) -> dict[str, float]:
            out = measure(mm)
            kept.append(out.pop("_tr"))
            return out

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            curve = _relearn_curve(m, points, _cycle(batches()), nll, keep, lr)
        curves.update({f"{who}{k}": v for k, v in curve.items()})
        ratios[who] = kept
        if who and cache is not None:
            cache[key] = (curve, kept)
    if retrained is not None:
        curves["forget_quality"] = [M.forget_quality(a, b)
                                    for a, b in zip(ratios[""], ratios["retrained_"], strict=True)]
    keys = ("forget_prob", "forget_rouge", "forget_truth_ratio", "forget_quality")
    metrics = _summary(curves, keys, points[-1])
    if "forget_quality" in curves:
        metrics["forget_quality@0"] = curves["forget_quality"][0]
        metrics[f"forget_quality@{points[-1]}"] = curves["forget_quality"][-1]
    metrics.update({"attack_questions": float(len(attack_qa)), "held_questions": float(len(held))})
    return {"metrics": metrics, "curves": curves}
