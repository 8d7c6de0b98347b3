"""SimNPO: reference-free, length-normalised NPO plus the retain NLL (Fan et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import nll
from obliviate.llm.losses import simnpo as simnpo_loss
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class SimNPOConfig:
    """Defaults: Unlearn-Simple ``TOFU/config/forget.yaml`` for forget05 (beta 2.5, gamma 0,
    npo_coeff 0.1375, retain_coeff 1, lr 1e-5, 10 epochs, 1 x 4 accumulation)."""

    beta: float = param(2.5, gt=0, help="inverse temperature")
    gamma: float = param(0.0, ge=0, help="reward margin")
    npo_coeff: float = param(0.1375, gt=0, help="weight of the SimNPO loss")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL (0: SimNPO alone)")
    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(10, ge=1, help="epochs over the forget set")
    batch_size: int = param(4, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")


@register_lm_method("simnpo", family="gradient", needs_retain=True,
                    reference="none",
                    paper="Fan et al. 2024, Simplicity Prevails: Rethinking NPO for LLM Unlearning")
def simnpo(model: nn.Module, data: LMUnlearnData, cfg: SimNPOConfig) -> nn.Module:
    """Minimise npo_coeff * -(2/beta) E log sigmoid(beta (NLL/|y| - gamma)) + retain NLL.

    References:
        Fan, Liu, Lin, Jia, Zhang, Mei, Liu, "Simplicity Prevails: Rethinking Negative
        Preference Optimization for LLM Unlearning", 2024.
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        out = cfg.npo_coeff * simnpo_loss(m, forget, cfg.beta, cfg.gamma)
        if cfg.retain_coeff and retain is not None:
            out = out + cfg.retain_coeff * nll(m, retain)
        return out

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="simnpo")
