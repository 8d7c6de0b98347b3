"""``obliviate tune`` on a language-model scenario (TOFU layout): the setting that forgets best
while keeping the model's utility.

The challenge score (:mod:`obliviate.tune`) needs a population of retrained classifiers; a
language model has one retain-only model per seed instead, and TOFU's own two figures
(Maini et al., 2024, "TOFU: A Task of Fictitious Unlearning for LLMs"): **forget quality**, the
KS-test p-value between the unlearned and the retain-only model's truth ratios on the forget
questions, and **model utility**, the harmonic mean of probability, ROUGE and truth ratio on the
retain, world (and real-author) questions. A setting's score is, averaged over held-out seeds
(each draws its own forget authors, original and retain-only model):

    forget_quality x min(1, model_utility / original's model_utility)

(utility ratio 1 where the original's utility is 0, which the leaderboard names). One run per
setting and seed: ``models`` does not apply. There is no time cut-off (the CPU time of one
retraining is not known when the reference models come from the cache); the time ratio
against the seed's fine-tuning seconds is recorded. Departures from TOFU: the product as one
score is ours (TOFU reports the two figures side by side).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.data import load_scenario
from obliviate.trial import Trial


def score_lm(metrics: Mapping[str, float], original_utility: float) -> tuple[float, float]:
    """(score, utility ratio) of one run from its TOFU metrics."""
    ratio = metrics["model_utility"] / original_utility if original_utility > 0 else 1.0
    return float(metrics["forget_quality"] * min(1.0, ratio)), float(ratio)


def tune_lm(scenario: str, info: Any, points: Sequence[tuple[dict, dict, Any]], *,
            seeds: Sequence[int], forget: str | None, options: Mapping[str, Any],
            cache: Path, progress: Callable[[str], None] | None = None) -> list[Any]:
    """The :class:`~obliviate.trial.Trial` of every grid point on ``scenario`` (an LM one)."""
    from obliviate.bench.method_runs import lm_unlearning_run
    from obliviate.llm.evaluate import evaluate_lm

    prepared = []
    for seed in seeds:
        sc = load_scenario(scenario, forget=forget, seed=seed, **options)
        original, train_s = sc.train_original_timed(seed, cache=cache)
        reference = evaluate_lm(sc.train_retrained_timed(seed, cache=cache)[0], sc)[1]
        base = evaluate_lm(original, sc, reference)[0]
        prepared.append((seed, sc, original, reference, base, train_s))
    trials = []
    for label, overrides, cfg in points:
        per_seed = []
        for seed, sc, original, reference, base, train_s in prepared:
            model, seconds = lm_unlearning_run(sc, original, info, cfg, 700_000 + seed,
                                               guard="off")
            metrics = evaluate_lm(model, sc, reference)[0]
            score, ratio = score_lm(metrics, base["model_utility"])
            per_seed.append({"score": score, "F": metrics["forget_quality"],
                             "RA_ratio": ratio, "VA_ratio": math.nan,
                             "time_ratio": seconds / train_s if train_s else math.nan,
                             "forget_prob": metrics["forget_prob"],
                             "model_utility": metrics["model_utility"],
                             "original_forget_quality": base["forget_quality"],
                             "over_cutoff": False})
        mean = {k: float(np.mean([r[k] for r in per_seed])) for k in
                ("score", "F", "RA_ratio", "VA_ratio", "time_ratio")}
        trials.append(Trial(label, overrides, over_cutoff=False, per_seed=per_seed, **mean))
        if progress is not None:
            progress(f"{info.name} {label}: score {mean['score']:.4f} (forget quality "
                     f"{mean['F']:.4f}, utility ratio {mean['RA_ratio']:.3f})")
    return trials
