"""The DP-SGD original as a bench entry: privacy by design, no unlearning step."""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from obliviate.config import param
from obliviate.dp import DPRecipe, fit_private
from obliviate.methods.common import canonical_rows, reinit_parameters
from obliviate.train import Recipe
from obliviate.unlearning import Prepared, PrepareData, UnlearnData, register_method


@dataclass(frozen=True)
class DPOriginalConfig:
    """Clipping norm 1 and the RDP accountant are Opacus's usual choices; epsilon 8, delta 1e-5."""

    epsilon: float = param(8.0, gt=0, help="target epsilon of the original's training")
    delta: float = param(1e-5, gt=0, lt=1, help="target delta")
    max_grad_norm: float = param(1.0, gt=0, help="per-example clipping norm C")
    epochs: int | None = param(None, ge=1, help="epochs (None: the recipe's)")
    lr: float | None = param(None, gt=0, help="learning rate (None: the recipe's)")
    batch_size: int | None = param(None, ge=1, help="expected lot size (None: the recipe's)")


def prepare_dp(model: nn.Module, data: PrepareData, cfg: DPOriginalConfig) -> Prepared:
    """The deployment: ``model``'s architecture, re-initialised, trained with DP-SGD on every row."""
    recipe = data.recipe or Recipe()
    recipe = replace(recipe, **{k: getattr(cfg, k) for k in ("epochs", "lr", "batch_size")
                                if getattr(cfg, k) is not None})
    dp = DPRecipe(epsilon=cfg.epsilon, delta=cfg.delta, max_grad_norm=cfg.max_grad_norm)
    x, y = canonical_rows(data.train, "dp-original")
    reinit_parameters(model, data.generator)
    result = fit_private(model, x, y, recipe, dp, data.seed(), owner="dp-original")
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


@register_method("dp-original", family="by-design", needs_retain=True,
                 paper="Abadi et al., Deep Learning with Differential Privacy, CCS 2016",
                 tasks=("classification",), prepare=prepare_dp)
def dp_original(model: nn.Module, data: UnlearnData, cfg: DPOriginalConfig) -> nn.Module:
    """The original trained with DP-SGD on the full training set; nothing is unlearned after.

    A DP-trained model is (epsilon, delta)-indistinguishable from one trained without any single
    example, so it needs no unlearning step: this entry scores what that guarantee buys against
    the retrained models, and what it costs in accuracy. The deployment (the prepare phase,
    :func:`prepare_dp`) is ``model``'s architecture, re-initialised and trained on the forget
    and retain sets together with the original recipe under DP-SGD; that training replaces the
    original's and is not timed. The deletion returns it unchanged.

    Fidelity notes: DP-SGD through Opacus (per-example clipping, Gaussian noise, the RDP
    accountant) as :mod:`obliviate.dp` documents. The deletion does nothing, so under the
    challenge protocol, which holds the deployment fixed, every run is identical and F is 0
    by the peaky rule; U-LiRA, which prepares a deployment per shadow model, sees the noise.

    References:
        Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang, "Deep Learning with
        Differential Privacy", ACM CCS 2016.
    """
    model.load_state_dict(data.prepared)
    return model
