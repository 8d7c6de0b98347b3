"""EU-k: exact unlearning of the last k layers (re-initialise them, train only them on retain)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import last_layers, lr_decay, reinit_parameters, restore, train_only
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class EUkConfig:
    """Defaults: SCRUB's reimplementation (``small_scale_unlearning.ipynb``, EU-k cell).

    As many epochs as the original training (``args.euk_epochs = training_epochs``), plain SGD
    (no momentum, no weight decay) at lr 0.01, lr x0.1 after epochs 10, 15 and 20.
    """

    k: int = param(1, ge=1, help="layers with parameters to reset and train, from the output")
    epochs: int | None = param(None, ge=1,
                               help="epochs over the retain set (None: the original recipe's)")
    lr: float = param(0.01, gt=0, help="SGD learning rate")
    momentum: float = param(0.0, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(0.0, ge=0, help="L2 weight decay")
    milestones: tuple[int, ...] = param((10, 15, 20), ge=0,
                                        help="epochs after which the lr is multiplied by 0.1")


def resettable_last_layers(model: nn.Module, cfg: EUkConfig) -> list[nn.Module]:
    """The last k layers, refused when one of them cannot redraw its weights."""
    layers = last_layers(model, cfg.k, "eu-k")
    for layer in layers:
        if not callable(getattr(layer, "reset_parameters", None)):
            raise ConfigError(
                f"eu-k cannot re-initialise layer {type(layer).__name__}: it has no "
                f"reset_parameters() method. Give it one, or lower 'k' to skip it."
            )
    return layers


@register_method("eu-k", family="gradient", needs_retain=True,
                 paper="Goel et al. 2023, Towards Adversarial Evaluations for Inexact Unlearning",
                 tasks=("classification",), check=resettable_last_layers)
def eu_k(model: nn.Module, data: UnlearnData, cfg: EUkConfig) -> nn.Module:
    """Re-initialise the last k layers and minimise retain cross-entropy over them alone.

    The earlier layers are kept frozen as the original trained them; the last k never see the
    forget set again, so they are exactly unlearned given the frozen features. Layers are
    modules with parameters of their own, counted from the output (see ``cf_k.last_layers``);
    each is reset with its ``reset_parameters()`` from the run's generator (SCRUB's code copies
    them from the original run's initial checkpoint, which a trained model does not carry).

    References:
        Goel, Prabhu, Sanyal, Lim, Torr, Kumaraguru, "Towards Adversarial Evaluations for
        Inexact Machine Unlearning", arXiv 2201.06640 (2022/23); EU-k as reimplemented by
        Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023.
    """
    layers = resettable_last_layers(model, cfg)
    epochs = cfg.epochs or (data.recipe.epochs if data.recipe is not None else None)
    if epochs is None:
        raise ConfigError(
            "eu-k trains for as many epochs as the original training, which is unknown here. "
            "Pass recipe=<the training Recipe> to unlearn, or set epochs=<int>."
        )
    for layer in layers:
        reinit_parameters(layer, data.generator)
    flags = train_only(model, layers)
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_decay(cfg.milestones))
    try:
        run_loop(model, lambda epoch: data.retain, cross_entropy_loss, optimizer, epochs,
                 scheduler=scheduler, owner="eu-k")
    finally:
        restore(flags)
    return model
