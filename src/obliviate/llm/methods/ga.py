"""Gradient ascent on the forget answers (TOFU's ``grad_ascent``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import gradient_ascent
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class GAConfig:
    """Defaults: TOFU ``config/forget.yaml`` (lr 1e-5, 5 epochs, AdamW wd 0.01)."""

    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")


@register_lm_method("ga", family="gradient", needs_retain=False,
                    reference="none",
                    paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs")
def ga(model: nn.Module, data: LMUnlearnData, cfg: GAConfig) -> nn.Module:
    """Maximise the NLL of the forget answers.

    References:
        Maini, Feng, Schwarzschild, Lipton, Kolter, "TOFU: A Task of Fictitious Unlearning for
        LLMs", 2024 (the gradient-ascent baseline).
    """
    return data.loop(model, data.pairs(cfg.batch_size),
                     lambda m, pair: gradient_ascent(m, pair[0]),
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="ga")
