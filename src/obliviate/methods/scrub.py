"""SCRUB: alternate max-steps away from the teacher on forget and min-steps toward it on retain."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.batches import forward
from obliviate.config import param
from obliviate.methods.common import interleave, lr_decay
from obliviate.methods.losses import distill_kl, teacher_logits
from obliviate.train import make_optimizer, model_device, run_loop, to_device
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class ScrubConfig:
    """Defaults: SCRUB's large-scale setting (``large_scale_unlearning.ipynb``, CIFAR-10).

    SGD lr 5e-4, momentum 0.9, weight decay 5e-4; 3 epochs, the first 2 with a max-pass;
    T=4, gamma 0.99, alpha 0.001; lr x0.1 after epochs 3, 5 and 9 (1-based, so none of them
    falls within the default 3 epochs).
    """

    epochs: int = param(3, ge=1, help="epochs (each: optional max-pass, then a min-pass)")
    msteps: int = param(2, ge=0, help="how many of the first epochs start with a max-pass")
    lr: float = param(5e-4, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")
    temperature: float = param(4.0, gt=0, help="distillation temperature kd_T")
    gamma: float = param(0.99, ge=0, help="weight of retain cross-entropy in the min-step")
    alpha: float = param(0.001, ge=0, help="weight of retain KL to the teacher in the min-step")
    milestones: tuple[int, ...] = param((3, 5, 9), ge=0,
                                        help="1-based epochs after which the lr is x0.1")


@register_method("scrub", family="distillation", needs_retain=True,
                 paper="Kurmanji et al. 2023, Towards Unbounded Machine Unlearning",
                 tasks=("classification",))
def scrub(model: nn.Module, data: UnlearnData, cfg: ScrubConfig) -> nn.Module:
    """Maximise KL(teacher || student) on forget, minimise gamma*CE + alpha*KL on retain.

    The teacher is a frozen copy of the original model; the student starts from it. As in the
    authors' loop, epoch e (1-based) runs one full pass over the forget set maximising the KL
    when e <= msteps, then one full pass over the retain set minimising; one SGD optimizer
    serves both passes.

    References:
        Kurmanji, Triantafillou, Hayes, Triantafillou, "Towards Unbounded Machine Unlearning",
        NeurIPS 2023 (``large_scale_unlearning.ipynb`` and ``helper/loops.py::train_distill``).
    """
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    device = model_device(model)
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    # the notebook's loop counts epochs from 1 when it calls adjust_learning_rate
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_decay(cfg.milestones, first_epoch=1))

    def batches(epoch: int):
        if epoch < cfg.msteps:
            return interleave(("max", data.forget), ("min", data.retain))
        return interleave(("min", data.retain))

    def loss(m: nn.Module, tagged) -> torch.Tensor:
        split, batch = tagged
        x, y = to_device(batch, device)
        logits = forward(m, x)
        kl = distill_kl(logits, teacher_logits(teacher, x), cfg.temperature)
        if split == "max":
            return -kl
        return cfg.gamma * F.cross_entropy(logits, y) + cfg.alpha * kl

    return run_loop(model, batches, loss, optimizer, cfg.epochs, scheduler=scheduler,
                    owner="scrub")
