"""Random labels: relabel the forget set at random and fine-tune on it and the retain set."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.batches import split_batch
from obliviate.config import param
from obliviate.methods.common import interleave, random_labels
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class RandomLabelConfig:
    """Defaults: the SalUn code's RL (10 epochs, SGD lr 0.01, momentum 0.9, wd 5e-4)."""

    epochs: int = param(10, ge=1, help="epochs (each: forget pass, then retain pass)")
    lr: float = param(0.01, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")
    exclude_true: bool = param(False, help="draw labels from the other classes only (amnesiac)")


@register_method("random-label", family="gradient", needs_retain=True,
                 paper="Golatkar et al. 2020; Fan et al. 2024 (SalUn code, RL)",
                 tasks=("classification",), default=True)
def random_label(model: nn.Module, data: UnlearnData, cfg: RandomLabelConfig) -> nn.Module:
    """Fine-tune on the forget set with fresh random labels, then on the retain set, each epoch.

    As in the SalUn code's CIFAR-10 branch: one pass over the forget set with labels drawn anew
    (uniform over all classes), then one pass over the retain set, every epoch.

    References:
        Golatkar, Achille, Soatto, CVPR 2020; Fan et al., "SalUn: Empowering Machine
        Unlearning via Gradient-based Weight Saliency", ICLR 2024 (``unlearn/RL.py``).
    """
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)

    def batches(epoch: int):
        return interleave(("forget", data.forget), ("retain", data.retain))

    def loss(m: nn.Module, tagged) -> object:
        tag, batch = tagged
        x, y = split_batch(batch)
        if tag == "forget":
            y = random_labels(y, data.num_classes, data.generator, exclude_true=cfg.exclude_true)
        return cross_entropy_loss(m, (x, y))

    return run_loop(model, batches, loss, optimizer, cfg.epochs, owner="random-label")
