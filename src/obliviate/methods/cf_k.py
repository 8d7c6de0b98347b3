"""CF-k: catastrophic forgetting of the last k layers (fine-tune only them on the retain set)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


def last_layers(model: nn.Module, k: int, owner: str) -> list[nn.Module]:
    """The last ``k`` layers of ``model``, counted from the output.

    A layer is a module that holds parameters of its own (not only through its children), in
    the order ``model.modules()`` registers them; for the usual ``features`` + ``classifier``
    models, k=1 is the classifier. Works on any nn.Module, and says so when it cannot.
    """
    layers = [m for m in model.modules() if next(m.parameters(recurse=False), None) is not None]
    if k > len(layers):
        raise ConfigError(
            f"The 'k' parameter of {owner} must be at most the model's number of layers with "
            f"parameters ({len(layers)}). Got {k} instead."
        )
    return layers[-k:]


def lr_decay(milestones: Sequence[int], rate: float = 0.1):
    """The SCRUB code's step schedule: after each milestone epoch the lr is multiplied by rate.

    As its ``adjust_learning_rate``: epoch ``e`` (0-based) runs at ``rate ** #{m : e > m}``.
    """
    return lambda epoch: rate ** sum(epoch > m for m in milestones)


def train_only(model: nn.Module, layers: Sequence[nn.Module]) -> dict[nn.Parameter, bool]:
    """Freeze every parameter outside ``layers``; returns the old flags for :func:`restore`."""
    flags = {p: p.requires_grad for p in model.parameters()}
    keep = {id(p) for layer in layers for p in layer.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return flags


def restore(flags: dict[nn.Parameter, bool]) -> None:
    for p, flag in flags.items():
        p.requires_grad_(flag)


@dataclass(frozen=True)
class CFkConfig:
    """Defaults: SCRUB's reimplementation (``small_scale_unlearning.ipynb``, ``fk_fientune``).

    10 epochs of plain SGD (no momentum, no weight decay) at lr 0.01, lr x0.1 after epochs
    10, 15 and 20 (so constant for the default 10 epochs).
    """

    k: int = param(1, ge=1, help="layers with parameters to train, counted from the output")
    epochs: int = param(10, ge=1, help="epochs over the retain set")
    lr: float = param(0.01, gt=0, help="SGD learning rate")
    momentum: float = param(0.0, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(0.0, ge=0, help="L2 weight decay")
    milestones: tuple[int, ...] = param((10, 15, 20), ge=0,
                                        help="epochs after which the lr is multiplied by 0.1")


@register_method("cf-k", family="gradient", needs_retain=True,
                 paper="Goel et al. 2023, Towards Adversarial Evaluations for Inexact Unlearning")
def cf_k(model: nn.Module, data: UnlearnData, cfg: CFkConfig) -> nn.Module:
    """Minimise retain cross-entropy over the last k layers only; all others stay frozen.

    The forget set is never looked at: its traces fade from the trained layers by catastrophic
    forgetting. Layers are modules with parameters of their own, counted from the output (see
    :func:`last_layers`); SCRUB's code trains ResNet's ``layer4`` block instead. BatchNorm
    statistics of frozen layers still follow the retain batches in train mode.

    References:
        Goel, Prabhu, Sanyal, Lim, Torr, Kumaraguru, "Towards Adversarial Evaluations for
        Inexact Machine Unlearning", arXiv 2201.06640 (2022/23); CF-k as reimplemented by
        Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023.
    """
    flags = train_only(model, last_layers(model, cfg.k, "cf-k"))
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_decay(cfg.milestones))
    try:
        run_loop(model, lambda epoch: data.retain, cross_entropy_loss, optimizer, cfg.epochs,
                 scheduler=scheduler, owner="cf-k")
    finally:
        restore(flags)
    return model
