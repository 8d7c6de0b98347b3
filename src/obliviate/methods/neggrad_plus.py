"""NegGrad+: descent on retain and ascent on forget, weighted by alpha."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.methods.common import cycle
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class NegGradPlusConfig:
    """Defaults: SCRUB's small-scale notebook (alpha 0.95, 10 epochs, SGD lr 0.01, wd 0)."""

    alpha: float = param(0.95, gt=0, lt=1, help="weight of the retain loss; 1-alpha on forget")
    epochs: int = param(10, ge=1, help="epochs over the retain set")
    lr: float = param(0.01, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(0.0, ge=0, help="L2 weight decay")


@register_method("neggrad+", family="gradient", needs_retain=True,
                 paper="Kurmanji et al. 2023, Towards Unbounded Machine Unlearning",
                 default=True)
def neggrad_plus(model: nn.Module, data: UnlearnData, cfg: NegGradPlusConfig) -> nn.Module:
    """Minimise alpha * CE(retain batch) - (1 - alpha) * CE(forget batch) on paired batches.

    Each retain batch is paired with the next forget batch; the forget loader is cycled.

    References:
        Kurmanji, Triantafillou, Hayes, Triantafillou, "Towards Unbounded Machine Unlearning",
        NeurIPS 2023 (``train_negrad`` in the SCRUB code).
    """
    forget = cycle(data.forget)
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)

    def loss(m: nn.Module, retain_batch) -> object:
        forget_batch = next(forget)
        return (cfg.alpha * cross_entropy_loss(m, retain_batch)
                - (1 - cfg.alpha) * cross_entropy_loss(m, forget_batch))

    return run_loop(model, lambda epoch: data.retain, loss, optimizer, cfg.epochs,
                    owner="neggrad+")
