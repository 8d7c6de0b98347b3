"""NPO plus the retain NLL (the NPO authors' default ``npo_grad_diff``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import nll, npo
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class NPOGDConfig:
    """Defaults: NPO's ``TOFU/config/forget.yaml`` (beta 0.1, both coefficients 1, lr 1e-5)."""

    beta: float = param(0.1, gt=0, help="inverse temperature of the preference loss")
    npo_coeff: float = param(1.0, gt=0, help="weight of the NPO loss")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL")
    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(10, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")


@register_lm_method("npo+gd", family="gradient", needs_retain=True,
                    reference="sequence",
                    paper="Zhang et al. 2024, Negative Preference Optimization")
def npo_gd(model: nn.Module, data: LMUnlearnData, cfg: NPOGDConfig) -> nn.Module:
    """Minimise npo_coeff * L_NPO(forget) + retain_coeff * NLL(retain).

    References:
        Zhang, Lin, Bai, Mei, "Negative Preference Optimization: From Catastrophic Collapse to
        Effective Unlearning", COLM 2024.
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        return (cfg.npo_coeff * npo(m, data.reference, forget, cfg.beta)
                + cfg.retain_coeff * nll(m, retain))

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="npo+gd")
