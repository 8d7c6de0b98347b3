"""CF-k: catastrophic forgetting of the last k layers (fine-tune only them on the retain set)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.methods.common import last_layers, lr_decay, restore, train_only
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


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
                 paper="Goel et al. 2023, Towards Adversarial Evaluations for Inexact Unlearning",
                 tasks=("classification",),
                 check=lambda model, cfg: last_layers(model, cfg.k, "cf-k"))
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
