"""The DP-SGD original as a bench entry: privacy by design, no unlearning step."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from obliviate.batches import concat_tensors
from obliviate.config import param
from obliviate.dp import DPRecipe, fit_private
from obliviate.methods.common import reinit_parameters
from obliviate.timing import untimed
from obliviate.train import Recipe
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class DPOriginalConfig:
    """Clipping norm 1 and the RDP accountant are Opacus's usual choices; epsilon 8, delta 1e-5."""

    epsilon: float = param(8.0, gt=0, help="target epsilon of the original's training")
    delta: float = param(1e-5, gt=0, lt=1, help="target delta")
    max_grad_norm: float = param(1.0, gt=0, help="per-example clipping norm C")
    epochs: int | None = param(None, ge=1, help="epochs (None: the recipe's)")
    lr: float | None = param(None, gt=0, help="learning rate (None: the recipe's)")
    batch_size: int | None = param(None, ge=1, help="expected lot size (None: the recipe's)")


@register_method("dp-original", family="by-design", needs_retain=True,
                 paper="Abadi et al., Deep Learning with Differential Privacy, CCS 2016")
def dp_original(model: nn.Module, data: UnlearnData, cfg: DPOriginalConfig) -> nn.Module:
    """The original trained with DP-SGD on the full training set; nothing is unlearned after.

    A DP-trained model is (epsilon, delta)-indistinguishable from one trained without any single
    example, so it needs no unlearning step: this entry scores what that guarantee buys against
    the retrained models, and what it costs in accuracy. The model (``model``'s architecture,
    re-initialised) is trained on the forget and retain sets together with the original recipe
    under DP-SGD; that training replaces the original's and is not timed.

    References:
        Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang, "Deep Learning with
        Differential Privacy", ACM CCS 2016.
    """
    recipe = data.recipe or Recipe()
    recipe = replace(recipe, **{k: getattr(cfg, k) for k in ("epochs", "lr", "batch_size")
                                if getattr(cfg, k) is not None})
    dp = DPRecipe(epsilon=cfg.epsilon, delta=cfg.delta, max_grad_norm=cfg.max_grad_norm)
    x, y = concat_tensors([b for loader in (data.forget, data.retain) for b in loader],
                          "dp-original")
    with untimed():
        reinit_parameters(model, data.generator)
        result = fit_private(model, x, y, recipe, dp, data.seed(), owner="dp-original")
    return result.model
