"""SatImp: gradient ascent reweighted by saturation and importance of each token (Yang et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import nll
from obliviate.llm.losses import satimp as satimp_loss
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class SatImpConfig:
    """Defaults: OpenUnlearning ``configs/trainer/SatImp.yaml`` (beta1 5, beta2 1, forget
    weight 0.1, retain weight 1, lr 1e-5, 5 epochs) and its README (effective batch 16)."""

    beta1: float = param(5.0, ge=0, help="exponent of p (saturation weight)")
    beta2: float = param(1.0, ge=0, help="exponent of 1 - p (importance weight)")
    forget_coeff: float = param(0.1, gt=0, help="weight of the reweighted ascent (gamma)")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL (alpha)")
    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.0, ge=0, help="AdamW weight decay")


@register_lm_method("satimp", family="gradient", needs_retain=True,
                    reference="none",
                    paper="Yang et al. 2025, Exploring Criteria of Loss Reweighting (SatImp)")
def satimp(model: nn.Module, data: LMUnlearnData, cfg: SatImpConfig) -> nn.Module:
    """Minimise -mean_t p_t^beta1 (1 - p_t)^beta2 * NLL_t on forget tokens + retain NLL.

    The weight vanishes both on tokens already forgotten (p near 0) and on tokens the model is
    sure of (p near 1, often the template words shared with retained answers), so the ascent
    lands on the tokens in between.

    References:
        Yang, Wang, Huang, Liu, Zhang, Han, "Exploring Criteria of Loss Reweighting to Enhance
        LLM Unlearning", ICML 2025 (arXiv 2505.11953); OpenUnlearning ``compute_satimp_loss``.

    Fidelity:
        - Follows: the weight p^beta1 (1 - p)^beta2 with the gradient stopped, the mean over
          labelled tokens, the retain NLL, the yaml's defaults (its class defaults swap the
          forget and retain weights; the yaml, which runs, wins).
        - Departs: batches as in every LM method here (whole forget batches beside cycled
          retain batches).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        return (cfg.forget_coeff * satimp_loss(m, forget, cfg.beta1, cfg.beta2)
                + cfg.retain_coeff * nll(m, retain))

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="satimp")
