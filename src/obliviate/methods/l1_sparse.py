"""l1-sparse: fine-tune on the retain set with an l1 penalty whose weight decays linearly to 0."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.losses import l1_norm
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class L1SparseConfig:
    """Defaults: the Unlearn-Sparse code (``unlearn/FT.py::FT_l1``, ``arg_parser.py``, README).

    10 epochs of SGD lr 0.01, momentum 0.9, weight decay 5e-4; ``no_l1_epochs`` 0. The repo
    leaves alpha to the command line (``--alpha ${alpha}``; its parser default 0.2 belongs to
    the Fisher/IU methods); 1e-4 is the value independent runs of the authors' code pass.
    """

    alpha: float = param(1e-4, ge=0, help="initial weight of the l1 penalty on all parameters")
    epochs: int = param(10, ge=1, help="epochs over the retain set")
    no_l1_epochs: int = param(0, ge=0, help="final epochs trained without the penalty")
    lr: float = param(0.01, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")

    def __post_init__(self) -> None:
        if self.no_l1_epochs >= self.epochs:
            raise ConfigError(
                f"The 'no_l1_epochs' parameter of l1-sparse must be below epochs ({self.epochs}). "
                f"Got {self.no_l1_epochs} instead; use finetune for training without the penalty."
            )


def l1_weight(cfg: L1SparseConfig, epoch: int) -> float:
    """alpha_t = alpha * (1 - t / (E - no_l1_epochs)) for epoch t (0-based), then 0.

    As the reference's ``FT_iter``: constant within an epoch, linear in t, reaching 0 at
    t = E - no_l1_epochs (so with no_l1_epochs=0 the last epoch still uses alpha / E).
    """
    decay_epochs = cfg.epochs - cfg.no_l1_epochs
    return cfg.alpha * (1 - epoch / decay_epochs) if epoch < decay_epochs else 0.0


@register_method("l1-sparse", family="gradient", needs_retain=True,
                 paper="Jia et al. 2023, Model Sparsity Can Simplify Machine Unlearning")
def l1_sparse(model: nn.Module, data: UnlearnData, cfg: L1SparseConfig) -> nn.Module:
    """Minimise retain cross-entropy + alpha_t * ||theta||_1 with alpha_t decaying linearly.

    The l1 term pulls the model toward a sparse solution early on, which the paper shows
    shrinks the gap to retraining; its weight falls to 0 so the end is plain fine-tuning.

    References:
        Jia, Liu, Ram, Yao, Liu, Liu, Sharma, Liu, "Model Sparsity Can Simplify Machine
        Unlearning", NeurIPS 2023 (``Unlearn-Sparse/unlearn/FT.py::FT_l1``).
    """
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)

    def batches(epoch: int):
        weight = l1_weight(cfg, epoch)
        return ((weight, batch) for batch in data.retain)

    def loss(m: nn.Module, weighted) -> torch.Tensor:
        weight, batch = weighted
        return cross_entropy_loss(m, batch) + weight * l1_norm(m)

    return run_loop(model, batches, loss, optimizer, cfg.epochs, owner="l1-sparse")
