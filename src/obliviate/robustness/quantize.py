"""The quantization attack: round an unlearned model's weights to 8 or 4 bits and see whether
the forgotten knowledge comes back, beside the same rounding of the retrained model.

Unlearning with a utility constraint often moves the weights so little from the original's
that a coarse weight grid maps the unlearned and the original model to the same point, and the
rounded model answers like the original again.

References:
    Zhang, Jia, Wang, Zhang, Luo, Liu, Xiong, Wang, "Catastrophic Failure of LLM Unlearning via
    Quantization", ICLR 2025 (arXiv 2410.16454).

Fidelity:
    - Follows: weight-only quantization at 8 and 4 bits of every linear layer (the paper's
      setting), the comparison of forget metrics before and after rounding.
    - Departs: round-to-nearest with a symmetric absmax scale per group of 128 input weights
      of each output unit, simulated in float ("fake quantization"); the paper applies GPTQ
      and AWQ through their libraries, which calibrate on data and need a GPU. RTN is the
      simplest member of the family the paper's analysis covers; it is at least as coarse.
    - Departs: embeddings, norms and biases stay in full precision, as in GPTQ/AWQ.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from obliviate.errors import ConfigError

GROUP = 128


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d) or type(module).__name__ == "Conv1D"


@torch.no_grad()
def round_to_grid(weight: torch.Tensor, bits: int, group_size: int = GROUP) -> torch.Tensor:
    """``weight`` (outputs first) rounded to ``2**bits`` symmetric levels per group of
    ``group_size`` consecutive inputs of each output unit."""
    if bits < 2:
        raise ConfigError(f"Quantization needs at least 2 bits. Got {bits} instead.")
    shape = weight.shape
    w = weight.reshape(shape[0], -1).float()
    pad = (-w.shape[1]) % group_size
    w = torch.nn.functional.pad(w, (0, pad))
    g = w.reshape(shape[0], -1, group_size)
    top = 2 ** (bits - 1) - 1
    scale = g.abs().amax(-1, keepdim=True).clamp(min=1e-12) / top
    q = (g / scale).round().clamp(-top - 1, top) * scale
    q = q.reshape(shape[0], -1)[:, :w.shape[1] - pad]
    return q.reshape(shape).to(weight.dtype)


def quantize_weights(model: nn.Module, bits: int, group_size: int = GROUP) -> nn.Module:
    """A copy of ``model`` whose linear and convolution weights are rounded to ``bits`` bits
    (GPT-2's ``Conv1D`` keeps its weight as inputs x outputs, so it is transposed first)."""
    out = copy.deepcopy(model)
    for module in out.modules():
        if not _is_linear(module):
            continue
        w = module.weight
        transposed = type(module).__name__ == "Conv1D"
        src = w.data.t() if transposed else w.data
        q = round_to_grid(src, bits, group_size)
        w.data.copy_(q.t() if transposed else q)
    return out.eval()


def quantization_attack(model: nn.Module, evaluate: Callable[[nn.Module], dict[str, float]], *,
                        retrained: nn.Module | None = None, bits: Iterable[int] = (8, 4),
                        group_size: int = GROUP) -> dict[str, Any]:
    """``evaluate`` the model at full precision and rounded to each of ``bits``, and the
    retrained model likewise when given.

    Returns:
        ``{"metrics": {"<metric>@<bits>bit": v, "retrained_<metric>@<bits>bit": v, ...},
        "curves": {"bits": [32, 8, 4], "<metric>": [...], "retrained_<metric>": [...]}}``;
        32 stands for the unrounded model.
    """
    levels = [32, *bits]
    rows: dict[str, list[float]] = {}
    metrics: dict[str, float] = {}
    for who, m in (("", model), ("retrained_", retrained)):
        if m is None:
            continue
        for b in levels:
            values = evaluate(m if b == 32 else quantize_weights(m, b, group_size))
            for key, v in values.items():
                metrics[f"{who}{key}@{b}bit"] = float(v)
                rows.setdefault(f"{who}{key}", []).append(float(v))
    return {"metrics": metrics, "curves": {"bits": levels, **rows}}


def quantize_classifier(model: nn.Module, forget, *, retain=None, test=None,
                        retrained: nn.Module | None = None, bits: Iterable[int] = (8, 4),
                        group_size: int = GROUP) -> dict[str, Any]:
    """:func:`quantization_attack` of a classifier: accuracy on the forget, retain and test
    loaders (those given), and ``forget_acc_gap@<bits>bit``: the model's forget accuracy minus
    the retrained model's at that precision."""
    from obliviate.evaluate.utility import accuracy, predict

    loaders = {"forget_acc": forget, "retain_acc": retain, "test_acc": test}

    def evaluate(m: nn.Module) -> dict[str, float]:
        return {k: accuracy(*predict(m, v)) for k, v in loaders.items() if v is not None}

    out = quantization_attack(model, evaluate, retrained=retrained, bits=bits,
                              group_size=group_size)
    _gaps(out["metrics"], "forget_acc", [32, *bits])
    return out


def quantize_lm(model: nn.Module, sc: Any, *, retrained: nn.Module | None = None,
                bits: Iterable[int] = (8, 4), group_size: int = GROUP,
                cache: dict | None = None) -> dict[str, Any]:
    """:func:`quantization_attack` of a causal LM on a TOFU scenario: forget prob, ROUGE-L,
    truth-ratio score, extraction strength and model utility at each precision, and forget
    quality against the retain-only model rounded to the same precision. ``cache``: a dict
    kept across calls with the same scenario and retrained model (it is evaluated once)."""
    from obliviate.llm.evaluate import evaluate_lm

    keys = ("forget_prob", "forget_rouge", "forget_truth_ratio", "forget_es", "model_utility")
    levels = [32, *bits]
    refs = {}
    if retrained is not None:
        for b in levels:
            key = ("quantize_lm", b, group_size)
            if cache is not None and key in cache:
                refs[b] = cache[key]
                continue
            rounded = retrained if b == 32 else quantize_weights(retrained, b, group_size)
            refs[b] = evaluate_lm(rounded, sc)
            if cache is not None:
                cache[key] = refs[b]
    values: dict[int, dict[str, float]] = {}
    for b in levels:
        m = model if b == 32 else quantize_weights(model, b, group_size)
        metrics, _ = evaluate_lm(m, sc, refs[b][1] if refs else None)
        values[b] = metrics
    out_metrics: dict[str, float] = {}
    curves: dict[str, Any] = {"bits": levels}
    for key in (*keys, "forget_quality"):
        if key in values[32]:
            curves[key] = [float(values[b][key]) for b in levels]
            out_metrics.update({f"{key}@{b}bit": float(values[b][key]) for b in levels})
    for key in keys:
        if refs:
            curves[f"retrained_{key}"] = [float(refs[b][0][key]) for b in levels]
            out_metrics.update({f"retrained_{key}@{b}bit": float(refs[b][0][key])
                                for b in levels})
    _gaps(out_metrics, "forget_prob", levels)
    return {"metrics": out_metrics, "curves": curves}


def _gaps(metrics: dict[str, float], key: str, levels: list[int]) -> None:
    for b in levels:
        if f"retrained_{key}@{b}bit" in metrics:
            metrics[f"{key}_gap@{b}bit"] = metrics[f"{key}@{b}bit"] - metrics[f"retrained_{key}@{b}bit"]
