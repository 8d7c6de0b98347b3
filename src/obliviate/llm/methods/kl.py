"""Gradient ascent with a KL term that keeps retain predictions close to the original's."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import gradient_ascent, kl_to_reference
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class KLConfig:
    """Defaults: TOFU ``config/forget.yaml`` (lr 1e-5, 5 epochs, AdamW wd 0.01)."""

    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")
    kl_coeff: float = param(1.0, ge=0, help="weight of the retain KL")


@register_lm_method("kl", family="distillation", needs_retain=True,
                    reference="distribution",
                    reference_on=("retain",),
                    paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs")
def kl(model: nn.Module, data: LMUnlearnData, cfg: KLConfig) -> nn.Module:
    """Minimise -NLL(forget) + kl_coeff * KL(p_original || p_model) on retain tokens.

    References:
        Maini et al., "TOFU: A Task of Fictitious Unlearning for LLMs", 2024 (the ``KL`` loss of
        its ``dataloader.py``).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        return gradient_ascent(m, forget) + cfg.kl_coeff * kl_to_reference(m, data.reference,
                                                                           retain)

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="kl")
