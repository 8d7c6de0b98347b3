"""7th prize, NeurIPS 2023 unlearning challenge: reset the classifier, then epochs that each
train a random subset of the layers after adding Gaussian noise to some of them, then a few
epochs of plain fine-tuning ("RNI" in DeepUnlearn's naming).

Source: DeepUnlearn's reimplementation of the entry's notebook (Cadet et al. 2024,
github.com/xcadet/deepunlearn, ``munl/unlearning/kgltop7.py``; "hyper parameters were copied as
provided in the notebook"). The team's Kaggle write-up could not be read from here (it is not in
the stored pages); every detail below is the notebook's as DeepUnlearn reproduces it unless
marked otherwise.

Item by item:

- Reset: the classifier (the last Linear layer; ResNet-18's ``fc``) gets fresh default initial
  values, from the run's generator.
- Epochs 1 .. ``epochs - fine_epochs`` (5 of 9): each draws ``layers`` (9) parameter tensors at
  random among the weights and biases of non-normalisation layers; those, with every
  normalisation parameter, are trained for one epoch of cross-entropy on the retain set, the
  others frozen (SGD lr 2e-4, momentum 0.9, weight decay 5e-4, a fresh optimizer per epoch).
  From epoch ``reset_epochs + 1`` on (the first epoch only re-fits the reset classifier's
  surroundings), ``round_down(noise_ratio x layers)`` (6) of the drawn tensors, those not drawn
  in an earlier epoch, first get N(0, 0.04^2) noise added. Normalisation parameters are told
  apart by their module's type here, by "bn" in their name in the notebook (ResNet-18's names).
- The last ``fine_epochs`` (4) epochs train everything, no noise, SGD momentum 0.9, weight
  decay 5e-4, lr 2e-4 except the last epoch's 1e-3: the notebook's per-epoch list
  (2e-4, 2e-4, 2e-4, 1e-3, ...) read for 4 fine epochs; here ``fine_lr`` and ``last_fine_lr``.
- Counts are absolute, as in the notebook (ResNet-18 has 62 parameter tensors, so 9 is about a
  seventh); a smaller model has them capped at what it has, so on a six-tensor CNN every
  tensor trains in every epoch and noise reaches all of them in the second epoch. A scenario
  that wants the ResNet proportion sets ``layers`` in its method defaults.
- The notebook's per-epoch validation accuracy is printing only; left out.

References:
    Triantafillou et al., "Are we making progress in unlearning? Findings from the first
    NeurIPS unlearning competition", arXiv 2406.09073 (2024); Cadet et al., "Deep Unlearn:
    Benchmarking Machine Unlearning", arXiv 2410.01276 (2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import reinit_parameters
from obliviate.methods.winners_common import gaussian_like, weight_layers
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method

PAPER = "NeurIPS 2023 unlearning challenge 7th prize, as DeepUnlearn's RNI (kgltop7)"
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@dataclass(frozen=True)
class WinnerRandomNoiseLayersConfig:
    """Defaults: the notebook's, via DeepUnlearn (see the module docstring)."""

    epochs: int = param(9, ge=1, help="epochs in all (selection epochs, then fine epochs)")
    fine_epochs: int = param(4, ge=0, help="last epochs that train every parameter")
    reset_epochs: int = param(1, ge=0, help="first selection epochs without noise")
    layers: int = param(9, ge=1, help="parameter tensors drawn for training per selection epoch")
    noise_ratio: float = param(0.7, ge=0, le=1, help="share of the drawn tensors given noise")
    noise_std: float = param(0.04, ge=0, help="std of the Gaussian noise added")
    lr: float = param(2e-4, gt=0, help="SGD learning rate of the selection epochs")
    fine_lr: float = param(2e-4, gt=0, help="SGD learning rate of the fine epochs but the last")
    last_fine_lr: float = param(1e-3, gt=0, help="SGD learning rate of the last fine epoch")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")

    def __post_init__(self):
        if self.fine_epochs > self.epochs:
            raise ConfigError(f"fine_epochs ({self.fine_epochs}) cannot exceed epochs "
                              f"({self.epochs}); lower fine_epochs or raise epochs.")


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(parameters of normalisation layers, every other parameter), in registration order."""
    norm_ids = {id(p) for m in model.modules() if isinstance(m, NORMS)
                for p in m.parameters(recurse=False)}
    params = list(model.parameters())
    return ([p for p in params if id(p) in norm_ids], [p for p in params if id(p) not in norm_ids])


def classifier(model: nn.Module) -> nn.Module:
    layers = [m for m in weight_layers(model) if isinstance(m, nn.Linear)]
    if not layers:
        raise ConfigError("winner-random-noise-layers resets the classifier (the last Linear "
                          "layer); this model has none. Use e.g. finetune.")
    return layers[-1]


@register_method("winner-random-noise-layers", family="gradient", needs_retain=True,
                 paper=PAPER, tasks=("classification",),
                 check=lambda model, cfg: classifier(model))
def winner_random_noise_layers(model: nn.Module, data: UnlearnData,
                               cfg: WinnerRandomNoiseLayersConfig) -> nn.Module:
    """Reset the classifier; train random layer subsets, some given noise first; fine-tune.

    References:
        Cadet et al., arXiv 2410.01276 (2024), RNI (``kgltop7``); Triantafillou et al., arXiv
        2406.09073 (2024).
    """
    reinit_parameters(classifier(model), data.generator)
    norms, others = split_parameters(model)
    drawn_before: set[int] = set()
    selecting = cfg.epochs - cfg.fine_epochs
    try:
        for epoch in range(cfg.epochs):
            if epoch < selecting:
                order = torch.randperm(len(others), generator=data.generator)
                drawn = [others[i] for i in order[:min(cfg.layers, len(others))].tolist()]
                if epoch >= cfg.reset_epochs:
                    count = min(int(cfg.noise_ratio * cfg.layers), len(drawn))
                    pick = torch.randperm(len(drawn), generator=data.generator)[:count]
                    with torch.no_grad():
                        for p in (drawn[i] for i in sorted(pick.tolist())):
                            if id(p) not in drawn_before:
                                p.add_(gaussian_like(p, cfg.noise_std, data.generator))
                drawn_before |= {id(p) for p in drawn}
                trained, lr = norms + drawn, cfg.lr
            else:
                trained = norms + others
                lr = cfg.last_fine_lr if epoch == cfg.epochs - 1 else cfg.fine_lr
            chosen = {id(p) for p in trained}
            for p in model.parameters():
                p.requires_grad_(id(p) in chosen)
            optimizer = make_optimizer(trained, "sgd", lr, cfg.momentum, cfg.weight_decay)
            run_loop(model, lambda _: data.retain, cross_entropy_loss, optimizer, 1,
                     owner="winner-random-noise-layers")
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return model.eval()
