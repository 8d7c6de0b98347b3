"""NegGrad: gradient ascent on the forget set."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class NegGradConfig:
    """Defaults: Unlearn-Sparse's GA (5 epochs, SGD lr 1e-4, momentum 0.9, wd 5e-4)."""

    epochs: int = param(5, ge=1, help="epochs over the forget set")
    lr: float = param(1e-4, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")


@register_method("neggrad", family="gradient", needs_retain=False,
                 paper="Golatkar et al. 2020; Jia et al. 2023 (GA baseline)",
                 default=True)
def neggrad(model: nn.Module, data: UnlearnData, cfg: NegGradConfig) -> nn.Module:
    """Gradient ascent: maximise the cross-entropy on the forget set, nothing else.

    Needs no retain data and is the cheapest method; utility can collapse when run too long.

    References:
        Golatkar, Achille, Soatto, "Eternal Sunshine of the Spotless Net", CVPR 2020;
        Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023 (defaults).
    """
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)

    def ascent(m: nn.Module, batch) -> object:
        return -cross_entropy_loss(m, batch)

    return run_loop(model, lambda epoch: data.forget, ascent, optimizer, cfg.epochs,
                    owner="neggrad")
