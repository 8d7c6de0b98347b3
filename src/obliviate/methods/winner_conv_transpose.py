"""5th prize, NeurIPS 2023 unlearning challenge: transpose every convolution kernel, then
fine-tune on the retain set ("CT", Convolution Transpose, in DeepUnlearn's naming).

Source: DeepUnlearn's reimplementation of the entry (Cadet et al. 2024,
github.com/xcadet/deepunlearn, ``munl/unlearning/kgltop5.py``, named "CT" in
``munl/settings.py``), which the DeepUnlearn paper ranks with MSG as the most consistent
performer across datasets, models and seeds. The team's own Kaggle write-up could not be read
from here (it is not in the stored pages); where it was silent or unknown this module follows
DeepUnlearn's code, and says so.

Item by item:

- Perturbation: every 2-D convolution's kernel is transposed in its two spatial axes
  (w[o, i, a, b] -> w[o, i, b, a]). Nothing is random: the N runs of one original differ only by
  the data order of the fine-tuning. As DeepUnlearn's code.
- Kernels that are not square 2-D ones cannot be transposed in place (the output shape would
  change); here they are flipped along their last spatial axis instead, the shape-keeping
  permutation nearest to a transpose. A model without convolutions has its hidden Linear layers
  stand in (see :func:`winners_common.conv_layers`), their input axis reversed. Both are
  departures for architectures the entry never met (it was written for ResNet-18, whose
  kernels are all square).
- Fine-tuning: ``epochs`` (3) epochs of cross-entropy on the retain set, SGD lr 0.001, momentum
  0.9, weight decay 5e-4, cosine annealing over the epochs: DeepUnlearn's defaults (its class
  constants "as provided by the authors"); batch 64 there is the retain loader's batch here.
- Class weights: DeepUnlearn's file defines a weighted loss but does not use it; left out.

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
from obliviate.methods.winners_common import conv_layers
from obliviate.train import cross_entropy_loss, make_optimizer, make_scheduler, run_loop
from obliviate.unlearning import UnlearnData, register_method

PAPER = ("NeurIPS 2023 unlearning challenge 5th prize, as DeepUnlearn's CT (Cadet et al. 2024, "
         "kgltop5)")


@dataclass(frozen=True)
class WinnerConvTransposeConfig:
    """Defaults: DeepUnlearn's (3 epochs, SGD 1e-3, momentum 0.9, wd 5e-4, cosine)."""

    epochs: int = param(3, ge=1, help="epochs of retain fine-tuning after the transpose")
    lr: float = param(0.001, gt=0, help="SGD learning rate (cosine-annealed over the epochs)")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")


@torch.no_grad()
def transpose_kernel(weight: torch.Tensor) -> None:
    """Transpose a square 2-D kernel's spatial axes in place; any other weight (1-D or 3-D
    kernels, non-square ones, a Linear layer's matrix) is flipped along its last axis."""
    square_2d = weight.dim() == 4 and weight.shape[2] == weight.shape[3]
    weight.copy_(weight.transpose(2, 3).clone() if square_2d else weight.flip(-1))


@register_method("winner-conv-transpose", family="gradient", needs_retain=True, paper=PAPER,
                 tasks=("classification",))
def winner_conv_transpose(model: nn.Module, data: UnlearnData,
                          cfg: WinnerConvTransposeConfig) -> nn.Module:
    """Transpose every convolution kernel, then fine-tune on the retain set.

    References:
        Cadet et al., "Deep Unlearn: Benchmarking Machine Unlearning", arXiv 2410.01276 (2024),
        CT; Triantafillou et al., arXiv 2406.09073 (2024).
    """
    for layer in conv_layers(model, "winner-conv-transpose"):
        transpose_kernel(layer.weight)
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    return run_loop(model, lambda _: data.retain, cross_entropy_loss, optimizer, cfg.epochs,
                    scheduler=make_scheduler(optimizer, "cosine", cfg.epochs),
                    owner="winner-conv-transpose")
