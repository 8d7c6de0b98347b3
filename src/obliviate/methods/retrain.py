"""Retrain from scratch on the retain set: exact unlearning and the gold standard."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from obliviate.config import param
from obliviate.methods.common import reinit_parameters
from obliviate.train import Recipe, fit
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class RetrainConfig:
    """Every field left at None takes the original training recipe's value."""

    epochs: int | None = param(None, ge=1, help="training epochs (None: the original recipe's)")
    lr: float | None = param(None, gt=0, help="learning rate (None: the original recipe's)")
    optimizer: str | None = param(None, choices=(None, "sgd", "adam"),
                                  help="optimizer (None: the original recipe's)")


@register_method("retrain", family="exact", needs_retain=True,
                 paper="the exact baseline (e.g. Bourtoule et al. 2021)",
                 default=True)
def retrain(model: nn.Module, data: UnlearnData, cfg: RetrainConfig) -> nn.Module:
    """Re-initialise every layer and train on the retain set with the original recipe.

    The result never saw the forget set, so it is exactly unlearned; every approximate method
    is compared with it.

    References:
        Bourtoule et al., "Machine Unlearning", IEEE S&P 2021 (retraining as the exact baseline).
    """
    recipe = data.recipe or Recipe()
    recipe = replace(recipe, **{k: v for k, v in vars(cfg).items() if v is not None})
    reinit_parameters(model, data.generator)
    return fit(model, lambda epoch: data.retain, recipe, owner="retrain")
