"""Prune-zero: zero the weights that matter most to the forget set relative to the retain set.

Saliency is per weight: ``score = |g_f| / (|g_r| + eps)`` with g_f and g_r the mean gradients
of the cross-entropy over the forget and the retain set at the original weights. The top
``fraction`` of all weight-matrix entries (parameters with two or more dimensions: Linear and
convolution kernels; biases and normalisation parameters are never pruned), ranked globally, are
set to exactly zero. An optional short retain fine-tune repairs utility; it keeps the pruned
weights at zero by masking their gradients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.train import (
    cross_entropy_loss,
    make_optimizer,
    make_scheduler,
    run_loop,
)
from obliviate.unlearning import UnlearnData, register_method

logger = logging.getLogger("obliviate.methods.prune_zero")


@dataclass(frozen=True)
class PruneZeroConfig:
    """Defaults are ours, not from a paper's code: 1% of weights zeroed, eps 1e-8, no repair
    (pure editing); the repair fine-tune, when asked for, uses SGD lr 0.01, momentum 0.9,
    wd 5e-4 as in the SalUn/l1-sparse FT baselines."""

    fraction: float = param(0.01, gt=0, lt=1, help="fraction of weight entries to zero")
    eps: float = param(1e-8, gt=0, help="added to |retain gradient| in the saliency ratio")
    repair_epochs: int = param(0, ge=0, help="retain fine-tune epochs after pruning (0: none)")
    lr: float = param(0.01, gt=0, help="SGD learning rate of the repair")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum of the repair")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay of the repair")


class Selection(NamedTuple):
    """The weights chosen for pruning: a boolean mask per parameter name, and counts."""

    masks: dict[str, torch.Tensor]
    zeroed: int
    total: int


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Weight matrices and kernels (two or more dimensions), by parameter name."""
    return {n: p for n, p in model.named_parameters() if p.dim() >= 2 and p.requires_grad}


def mean_gradients(model: nn.Module, loader: DataLoader, names: list[str]) -> list[torch.Tensor]:
    """Mean over batches of the cross-entropy gradient, in eval mode, for the named parameters."""
    params = dict(model.named_parameters())
    total = [torch.zeros_like(params[n]) for n in names]
    model.eval()
    batches = 0
    for batch in loader:
        grads = torch.autograd.grad(cross_entropy_loss(model, batch), [params[n] for n in names])
        for acc, g in zip(total, grads, strict=True):
            acc.add_(g.detach())
        batches += 1
    return [g / max(batches, 1) for g in total]


def check_prunable(model: nn.Module, cfg: object = None) -> dict[str, nn.Parameter]:
    """The prunable weights of ``model``; ConfigError when it has none."""
    params = prunable(model)
    if not params:
        raise ConfigError("prune-zero found no weight matrix or kernel (a trainable parameter "
                          "with two or more dimensions) to prune in the model.")
    return params


def select_weights(model: nn.Module, forget: DataLoader, retain: DataLoader,
                   fraction: float, eps: float = 1e-8) -> Selection:
    """The top ``fraction`` of weight entries by |g_forget| / (|g_retain| + eps), ranked globally.

    Exactly ``round(fraction * total)`` entries are chosen (ties broken by position).
    """
    params = check_prunable(model)
    names = list(params)
    g_forget = mean_gradients(model, forget, names)
    g_retain = mean_gradients(model, retain, names)
    scores = torch.cat([(gf.abs() / (gr.abs() + eps)).flatten()
                        for gf, gr in zip(g_forget, g_retain, strict=True)])
    k = round(fraction * scores.numel())
    chosen = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    chosen[torch.argsort(scores, descending=True, stable=True)[:k]] = True
    masks, start = {}, 0
    for n in names:
        size = params[n].numel()
        masks[n] = chosen[start:start + size].view_as(params[n])
        start += size
    return Selection(masks, k, scores.numel())


@register_method("prune-zero", family="editing", needs_retain=True,
                 paper="Saliency pruning for unlearning (cf. Fan et al. 2024; Foster et al. 2024)",
                 tasks=("classification",), check=check_prunable)
def prune_zero(model: nn.Module, data: UnlearnData, cfg: PruneZeroConfig) -> nn.Module:
    """Zero the weights whose forget-gradient most exceeds their retain-gradient, then repair.

    The count of zeroed weights is logged at INFO on ``obliviate.methods.prune_zero``; call
    :func:`select_weights` to get the masks themselves.

    References:
        Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency",
        ICLR 2024 (gradient saliency of the forget loss); Foster, Schoepf, Brintrup, "Fast
        Machine Unlearning Without Retraining Through Selective Synaptic Dampening", AAAI 2024
        (forget-to-retain importance ratio). Zeroing instead of fine-tuning or dampening is ours.
    """
    selection = select_weights(model, data.forget, data.retain, cfg.fraction, cfg.eps)
    logger.info("prune-zero zeroed %d of %d weights (%.3f%%)", selection.zeroed, selection.total,
                100 * selection.zeroed / selection.total)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in selection.masks.items():
            params[name].masked_fill_(mask, 0.0)
    if cfg.repair_epochs == 0:
        return model

    def keep_pruned(m: nn.Module) -> None:
        # zero gradient + zero weight: SGD's momentum and weight decay leave the entry at 0
        for name, mask in selection.masks.items():
            if params[name].grad is not None:
                params[name].grad.masked_fill_(mask, 0.0)

    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, "cosine", cfg.repair_epochs)
    return run_loop(model, lambda epoch: data.retain, cross_entropy_loss, optimizer,
                    cfg.repair_epochs, scheduler=scheduler, owner="prune-zero",
                    after_backward=keep_pruned)
