"""Gradient difference: ascend on forget answers, descend on retain answers (TOFU ``grad_diff``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import gradient_ascent, nll
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class GradDiffConfig:
    """Defaults: TOFU ``config/forget.yaml`` (lr 1e-5, 5 epochs, AdamW wd 0.01)."""

    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL")


@register_lm_method("grad-diff", family="gradient", needs_retain=True,
                    reference="none",
                    paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs")
def grad_diff(model: nn.Module, data: LMUnlearnData, cfg: GradDiffConfig) -> nn.Module:
    """Minimise -NLL(forget) + retain_coeff * NLL(retain) on paired batches.

    References:
        Maini et al., "TOFU: A Task of Fictitious Unlearning for LLMs", 2024; Liu et al.,
        "Continual Learning and Private Unlearning", 2022 (gradient difference).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        return gradient_ascent(m, forget) + cfg.retain_coeff * nll(m, retain)

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="grad-diff")
