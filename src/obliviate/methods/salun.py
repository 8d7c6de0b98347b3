"""SalUn: random-label unlearning restricted to the weights most salient for the forget set."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.batches import forward
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import interleave, random_labels
from obliviate.train import make_optimizer, model_device, run_loop, to_device
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class SalUnConfig:
    """Defaults: the SalUn README's CIFAR-10 command (mask ``with_0.5.pt``, RL 10 epochs, SGD lr
    0.013) and its ``arg_parser.py`` (momentum 0.9, weight decay 5e-4; the lr milestones 91/136
    lie past epoch 10, so the rate is constant)."""

    mask_ratio: float = param(0.5, gt=0, le=1,
                              help="fraction of weights (by |forget gradient|) that may move")
    epochs: int = param(10, ge=1, help="epochs (each: forget pass, then retain pass)")
    lr: float = param(0.013, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay (on the salient weights only)")


def saliency_mask(model: nn.Module, forget: Iterable, ratio: float) -> dict[str, torch.Tensor]:
    """True for the top ``ratio`` of trainable weights by |sum over forget batches of grad CE|.

    As ``generate_mask.py``: gradients of the batch-mean loss summed over the forget loader in
    eval mode, then one global ranking over every parameter tensor (ties broken by position).
    The authors differentiate -CE; the sign is lost in the absolute value.
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ConfigError("salun needs a model with trainable parameters; none require grad.")
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    device = model_device(model)
    for batch in forget:
        x, y = to_device(batch, device)
        (-F.cross_entropy(forward(model, x), y)).backward()
    scores = torch.cat([
        (p.grad.abs() if p.grad is not None else torch.zeros_like(p)).flatten()
        for p in params.values()
    ])
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    top = torch.argsort(scores, descending=True, stable=True)[: int(scores.numel() * ratio)]
    flat = torch.zeros_like(scores, dtype=torch.bool)
    flat[top] = True
    pieces = flat.split([p.numel() for p in params.values()])
    return {name: m.view_as(p) for (name, p), m in zip(params.items(), pieces, strict=True)}


def masked_gradients(mask: dict[str, torch.Tensor],
                     weight_decay: float) -> Callable[[nn.Module], None]:
    """An ``after_backward`` hook: grad <- (grad + weight_decay * w) * mask.

    Weight decay is folded into the gradient *before* masking, so the optimizer runs with no
    decay of its own. Masked-out coordinates then see an exact zero gradient at every step, the
    SGD momentum buffer stays exactly zero there, and those weights never move: the same end
    state as the 2026 SalUn code, which lets SGD move them and then restores them to the
    original and zeroes their momentum (``_restore_masked_params`` in ``unlearn/RL.py``).
    """

    def hook(model: nn.Module) -> None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.grad is None or name not in mask:
                    continue
                grad = p.grad + weight_decay * p if weight_decay else p.grad
                p.grad = torch.where(mask[name], grad, torch.zeros_like(grad))

    return hook


@register_method("salun", family="saliency", needs_retain=True,
                 paper="Fan et al. 2024, SalUn: gradient-based weight saliency",
                 tasks=("classification",))
def salun(model: nn.Module, data: UnlearnData, cfg: SalUnConfig) -> nn.Module:
    """Random-label unlearning that updates only the weights most salient for the forget loss.

    1. Saliency mask: rank every weight by |gradient of the forget loss| (one pass over the
       forget set, eval mode) and keep the top ``mask_ratio`` of all weights, globally.
    2. Each epoch, one pass over the forget set with fresh uniform random labels, then one
       pass over the retain set, with SGD whose gradients are masked; weights outside the mask
       end exactly equal to the original's (weight decay and momentum cannot move them).

    References:
        Fan, Liu, Zhang, Wong, Wei, Liu, "SalUn: Empowering Machine Unlearning via
        Gradient-based Weight Saliency in Both Image Classification and Generation", ICLR 2024
        (code: ``Classification/generate_mask.py``, ``unlearn/RL.py``).
    """
    mask = saliency_mask(model, data.forget, cfg.mask_ratio)
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, weight_decay=0.0)

    def batches(epoch: int):
        return interleave(("forget", data.forget), ("retain", data.retain))

    def loss(m: nn.Module, tagged) -> torch.Tensor:
        tag, batch = tagged
        x, y = to_device(batch, model_device(m))
        if tag == "forget":
            y = random_labels(y, data.num_classes, data.generator)
        return F.cross_entropy(forward(m, x), y)

    return run_loop(model, batches, loss, optimizer, cfg.epochs, owner="salun",
                    after_backward=masked_gradients(mask, cfg.weight_decay))
