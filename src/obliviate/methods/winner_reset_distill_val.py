"""6th prize, NeurIPS 2023 unlearning challenge (Euclid team, Democritus University of Thrace,
with Athena Research Center): reset the first and the last layer, distil the original on the
validation set, then train on the retain set with labels and distillation ("KDE" in
DeepUnlearn's naming).

Source: the team's page ("weight resetting and distillation", 6th of the 7 prize winners:
euclid.ee.duth.gr/machine-unlearning, and pefraimi.github.io's machine-unlearning page, as the
shared reference challenge-protocol.md records), and DeepUnlearn's reimplementation of the
team's Kaggle notebook "Unlearning by resetting layers (7th on private LB)" (Cadet et al. 2024,
github.com/xcadet/deepunlearn, ``munl/unlearning/kgltop6.py``). The page gives the idea only;
every detail below is the notebook's as DeepUnlearn reproduces it, unless marked otherwise.

Item by item:

- Teacher: a frozen copy of the original. Reset: the first layer (ResNet-18's ``conv1``) and
  the classifier (``fc``) get fresh default initial values. Here "first" and "last" are the
  model's first and last convolution or Linear layer in registration order, so any chain of
  layers works (a departure in naming only: on ResNet-18 these are the same two layers). The
  fresh values are drawn from the run's generator, so the N runs differ in them.
- Warm-up: ``warmup_epochs`` (3) epochs on the validation set, loss KL(teacher || student) on
  softmax at temperature 5 (no T^2 factor), SGD lr 9e-4, momentum 0.9, weight decay 5e-4. The
  validation set is data the original never trained on, so the reset layers are re-fitted to
  the original's behaviour without touching the forget set. Without a validation loader (the
  library's ``unlearn`` without ``val=``) the warm-up reads the retain set: a departure.
- Retain phase: ``retain_epochs`` (3) epochs on the retain set, loss = soft cross-entropy
  against the teacher's softmax at temperature 5 + cross-entropy on the labels + the same KL,
  SGD lr 1e-3, momentum 0.9, weight decay 5e-4, cosine annealing over the epochs. The soft
  cross-entropy and the KL differ by the teacher's entropy, a constant, so together they weigh
  distillation twice; kept as the notebook has it.
- Batch size: the loaders' (64 in the notebook).

References:
    Triantafillou et al., "Are we making progress in unlearning? Findings from the first
    NeurIPS unlearning competition", arXiv 2406.09073 (2024); Cadet et al., "Deep Unlearn:
    Benchmarking Machine Unlearning", arXiv 2410.01276 (2024); Hinton et al., "Distilling the
    Knowledge in a Neural Network", arXiv 1503.02531 (2015).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.batches import forward
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import reinit_parameters
from obliviate.methods.losses import distill_kl, soft_cross_entropy, teacher_logits
from obliviate.methods.winners_common import weight_layers
from obliviate.train import make_optimizer, make_scheduler, model_device, run_loop, to_device
from obliviate.unlearning import UnlearnData, register_method

PAPER = ("Euclid team (DUTH) and Athena RC, NeurIPS 2023 unlearning challenge 6th prize, as "
         "DeepUnlearn's KDE (kgltop6)")


@dataclass(frozen=True)
class WinnerResetDistillValConfig:
    """Defaults: the notebook's, via DeepUnlearn (see the module docstring)."""

    temperature: float = param(5.0, gt=0, help="softmax temperature of the distillation")
    warmup_epochs: int = param(3, ge=0, help="epochs distilling the original on validation data")
    warmup_lr: float = param(9e-4, gt=0, help="SGD learning rate of the warm-up")
    retain_epochs: int = param(3, ge=1, help="epochs on the retain set (labels + distillation)")
    lr: float = param(1e-3, gt=0, help="SGD learning rate of the retain phase (cosine)")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum of both phases")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay of both phases")


def first_and_last_layers(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The first and the last convolution or Linear layer (ResNet-18: ``conv1`` and ``fc``)."""
    layers = weight_layers(model)
    if len(layers) < 2:
        raise ConfigError("winner-reset-distill-val resets the first and the last layer; this "
                          "model has fewer than two convolution or Linear layers. Use a method "
                          "that works on any model (e.g. finetune).")
    return layers[0], layers[-1]


@register_method("winner-reset-distill-val", family="distillation", needs_retain=True,
                 paper=PAPER, tasks=("classification",),
                 check=lambda model, cfg: first_and_last_layers(model))
def winner_reset_distill_val(model: nn.Module, data: UnlearnData,
                             cfg: WinnerResetDistillValConfig) -> nn.Module:
    """Reset the first and last layers, distil the original on validation data, then train on
    the retain set with labels and distillation.

    References:
        Cadet et al., arXiv 2410.01276 (2024), KDE (``kgltop6``); Triantafillou et al., arXiv
        2406.09073 (2024).
    """
    teacher = copy.deepcopy(model).eval()
    for layer in first_and_last_layers(model):
        reinit_parameters(layer, data.generator)
    device, t = model_device(model), cfg.temperature

    def kl(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return distill_kl(student, target, t) / (t * t)  # the notebook has no T^2

    def warmup_loss(m: nn.Module, batch) -> torch.Tensor:
        x, _ = to_device(batch, device)
        with torch.no_grad():
            target = teacher_logits(teacher, x)
        return kl(forward(m, x), target)

    def retain_loss(m: nn.Module, batch) -> torch.Tensor:
        x, y = to_device(batch, device)
        with torch.no_grad():
            target = teacher_logits(teacher, x)
        out = forward(m, x)
        soft = soft_cross_entropy(out / t, F.softmax(target / t, dim=1))
        return soft + F.cross_entropy(out, y) + kl(out, target)

    warm = data.val if data.val is not None else data.retain
    if cfg.warmup_epochs:
        optimizer = make_optimizer(model.parameters(), "sgd", cfg.warmup_lr, cfg.momentum,
                                   cfg.weight_decay)
        run_loop(model, lambda _: warm, warmup_loss, optimizer, cfg.warmup_epochs,
                 owner="winner-reset-distill-val")
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    return run_loop(model, lambda _: data.retain, retain_loss, optimizer, cfg.retain_epochs,
                    scheduler=make_scheduler(optimizer, "cosine", cfg.retain_epochs),
                    owner="winner-reset-distill-val")
