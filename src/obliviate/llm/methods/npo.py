"""Negative preference optimisation on the forget answers (Zhang et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import npo as npo_loss
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class NPOConfig:
    """Defaults: the NPO authors' ``TOFU/config/forget.yaml`` (beta 0.1, lr 1e-5, 10 epochs)."""

    beta: float = param(0.1, gt=0, help="inverse temperature of the preference loss")
    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(10, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget pairs per step (4 x 4 accumulation)")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")


@register_lm_method("npo", family="gradient", needs_retain=False,
                    reference="sequence",
                    paper="Zhang et al. 2024, Negative Preference Optimization")
def npo(model: nn.Module, data: LMUnlearnData, cfg: NPOConfig) -> nn.Module:
    """Minimise -(2/beta) E log sigmoid(-beta log(pi_theta(y_f) / pi_ref(y_f))).

    A bounded form of gradient ascent: the push on an answer fades once its likelihood has
    fallen below the reference model's, so collapse is much slower than with GA.

    References:
        Zhang, Lin, Bai, Mei, "Negative Preference Optimization: From Catastrophic Collapse to
        Effective Unlearning", COLM 2024.
    """
    return data.loop(model, data.pairs(cfg.batch_size),
                     lambda m, pair: npo_loss(m, data.reference, pair[0], cfg.beta),
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="npo")
