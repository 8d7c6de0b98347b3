"""WGA: weighted gradient ascent, each forget token weighted by its probability (Wang et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import nll
from obliviate.llm.losses import wga as wga_loss
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class WGAConfig:
    """Defaults: OpenUnlearning ``configs/trainer/WGA.yaml`` (beta 1, forget and retain
    weights 1, lr 1e-5, 5 epochs) and its README (effective batch 16); weight decay 0 as in
    its ``finetune.yaml``."""

    beta: float = param(1.0, ge=0, help="exponent of the token-probability weight")
    forget_coeff: float = param(1.0, gt=0, help="weight of the weighted ascent (gamma)")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL (alpha)")
    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.0, ge=0, help="AdamW weight decay")


@register_lm_method("wga", family="gradient", needs_retain=True,
                    reference="none",
                    paper="Wang et al. 2025, Rethinking LLM Unlearning Objectives (WGA)")
def wga(model: nn.Module, data: LMUnlearnData, cfg: WGAConfig) -> nn.Module:
    """Minimise -mean_t p_t^beta * NLL_t on forget tokens (p_t detached) + retain NLL.

    Weighting by the token's own probability spends the ascent on tokens the model still
    predicts and lets it fade on tokens already forgotten, which bounds GA's collapse.

    References:
        Wang, Zhou, Zhou, Shin, Han, Weinberger, "Rethinking LLM Unlearning Objectives: A
        Gradient Perspective and Go Beyond", ICLR 2025 (arXiv 2502.19301); OpenUnlearning
        ``compute_wga_loss``.

    Fidelity:
        - Follows: the weight exp(-NLL)^beta with the gradient stopped, the mean over
          labelled tokens, the retain NLL, the defaults.
        - Departs: nothing in the loss; batches are whole forget batches beside cycled retain
          batches, as in every LM method here (OpenUnlearning pairs each forget example with a
          random retain one).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        return cfg.forget_coeff * wga_loss(m, forget, cfg.beta) + cfg.retain_coeff * nll(m, retain)

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="wga")
