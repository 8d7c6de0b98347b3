"""UNDIAL: self-distillation towards the original's distribution with the answer token's logit
lowered (Dong et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import nll
from obliviate.llm.losses import undial as undial_loss
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class UNDIALConfig:
    """Defaults: OpenUnlearning ``configs/trainer/UNDIAL.yaml`` (beta 10, forget weight 1,
    retain weight 0, lr 1e-4, 10 epochs, effective batch 8 x 4 = 32, weight decay 0)."""

    beta: float = param(10.0, gt=0, help="how far each answer token's logit is lowered")
    forget_coeff: float = param(1.0, gt=0, help="weight of the distillation loss (gamma)")
    retain_coeff: float = param(0.0, ge=0, help="weight of the retain NLL (alpha; 0: none)")
    lr: float = param(1e-4, gt=0, help="AdamW learning rate")
    epochs: int = param(10, ge=1, help="epochs over the forget set")
    batch_size: int = param(32, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.0, ge=0, help="AdamW weight decay")


@register_lm_method("undial", family="distillation", needs_retain=False,
                    reference="distribution",
                    paper="Dong et al. 2025, UNDIAL: Self-Distillation with Adjusted Logits")
def undial(model: nn.Module, data: LMUnlearnData, cfg: UNDIALConfig) -> nn.Module:
    """Minimise CE(softmax(z_ref - beta * onehot(y)), p_theta) on forget tokens (+ retain NLL).

    The target is the frozen original's next-token distribution with the true token's logit
    lowered by ``beta``: the model is taught to keep every alternative as the original ranked
    it, so the push on an answer is bounded (it stops once the token is improbable), unlike
    gradient ascent.

    References:
        Dong, Lin, Belkin, Huerta, Vulic, "UNDIAL: Self-Distillation with Adjusted Logits for
        Robust Unlearning in Large Language Models", NAACL 2025 (arXiv 2402.10052);
        OpenUnlearning ``compute_undial_loss``.

    Fidelity:
        - Follows: the adjusted-logit target, its softmax, the cross-entropy to it, the frozen
          original as teacher, the defaults (beta 10, no retain loss, lr 1e-4, 10 epochs).
        - Departs: the loss is averaged over answer tokens only. OpenUnlearning averages over
          every position, question and padding included, and lowers the last vocabulary
          entry where the label is -100 (an indexing side effect); on tofu-mini's short
          answers that would put most of the loss on the prompt.
        - Departs: full fine-tuning; the paper tunes a LoRA adapter of rank 8
          (``scenario.lora_rank=8`` gives that).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        out = cfg.forget_coeff * undial_loss(m, data.reference, forget, cfg.beta)
        if cfg.retain_coeff and retain is not None:
            out = out + cfg.retain_coeff * nll(m, retain)
        return out

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="undial")
