"""Fine-tune the forget questions towards refusals ("I don't know."), keeping retain answers."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import nll
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class IdkConfig:
    """Defaults: TOFU ``config/forget.yaml`` (``idk`` loss; lr 1e-5, 5 epochs, AdamW wd 0.01)."""

    lr: float = param(1e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(5, ge=1, help="epochs over the forget set")
    batch_size: int = param(16, ge=1, help="forget (and retain) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL")


@register_lm_method("idk", family="gradient", needs_retain=True, needs_refusals=True,
                    reference="none",
                    paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs")
def idk(model: nn.Module, data: LMUnlearnData, cfg: IdkConfig) -> nn.Module:
    """Minimise NLL(refusal | forget question) + retain_coeff * NLL(retain).

    References:
        Maini et al., "TOFU: A Task of Fictitious Unlearning for LLMs", 2024 (``idk`` loss,
        refusals from its ``idontknow.jsonl``; ours come from a short built-in list).
    """

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        return nll(m, forget[3:6]) + cfg.retain_coeff * nll(m, retain)

    return data.loop(model, data.pairs(cfg.batch_size), loss,
                     adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs, owner="idk")
