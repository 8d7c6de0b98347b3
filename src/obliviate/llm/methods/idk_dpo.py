"""Preference optimisation: prefer a refusal to the true answer on forget questions (DPO)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import dpo, nll
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class IdkDPOConfig:
    """Defaults: TOFU ``config/forget.yaml`` (``dpo`` loss, beta 0.1, lr 1e-5, 5 epochs)."""

    beta: float = param(0.1, gt=0, help="DPO inverse temperature")
    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL (0: DPO alone)")


@register_lm_method("idk-dpo", family="gradient", needs_retain=True, needs_refusals=True,
                    reference="sequence",
                    reference_on=("forget", "forget_idk"),
                    paper="Rafailov et al. 2023, DPO; used for unlearning in TOFU (Maini et al. 2024)")
def idk_dpo(model: nn.Module, data: LMUnlearnData, cfg: IdkDPOConfig) -> nn.Module:
    """Minimise -log sigmoid(beta (log-ratio(refusal) - log-ratio(true answer))) + retain NLL.

    Log-ratios are against the frozen original model.

    References:
        Rafailov et al., "Direct Preference Optimization", NeurIPS 2023; Maini et al., "TOFU",
        2024 (the ``dpo`` forget loss).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        out = dpo(m, data.reference, forget[3:6], forget[:3], cfg.beta)
        if cfg.retain_coeff:
            out = out + cfg.retain_coeff * nll(m, retain)
        return out

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="idk-dpo")
