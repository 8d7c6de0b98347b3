"""Selective Synaptic Dampening: shrink the weights far more important to D_f than to D."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.batches import forward
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.train import model_device, to_device
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class SSDConfig:
    """Defaults: the SSD code's ResNet18 settings (``forget_*_main.py``: dampening lambda 1,
    selection alpha 10; ``ssd_tuning`` fixes exponent 1 and the bound 1 on the factor)."""

    dampening_constant: float = param(1.0, gt=0,
                                      help="lambda: a selected weight is scaled by "
                                           "min(lambda * imp_D / imp_f, 1)")
    selection_weighting: float = param(10.0, gt=0,
                                       help="alpha: select a weight when imp_f > alpha * imp_D")


def importances(model: nn.Module, loaders: Iterable[Iterable]) -> dict[str, torch.Tensor]:
    """Mean over minibatches of the squared gradient of the batch-mean cross-entropy.

    ``calc_importance`` in the SSD code (a diagonal-Fisher proxy); every batch of every loader
    counts once. The model is in eval mode, as ``ssd_tuning`` leaves it.
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    device = model_device(model)
    n_batches = 0
    for loader in loaders:
        for batch in loader:
            x, y = to_device(batch, device)
            grads = torch.autograd.grad(F.cross_entropy(forward(model, x), y), list(params.values()),
                                        allow_unused=True)
            for name, g in zip(params, grads, strict=True):
                if g is not None:
                    total[name] += g.detach() ** 2
            n_batches += 1
    if n_batches == 0:
        raise ConfigError("ssd got an empty loader; pass a forget set with at least one batch.")
    return {name: t / n_batches for name, t in total.items()}


@torch.no_grad()
def dampen(model: nn.Module, imp_full: dict[str, torch.Tensor], imp_forget: dict[str, torch.Tensor],
           dampening: float, selection: float) -> nn.Module:
    """theta <- theta * min(lambda * imp_D / imp_f, 1) where imp_f > alpha * imp_D; else kept."""
    for name, p in model.named_parameters():
        if name not in imp_full:
            continue
        full, forget = imp_full[name], imp_forget[name]
        selected = forget > selection * full  # implies forget > 0, so the ratio below is finite
        ratio = dampening * full / torch.where(selected, forget, torch.ones_like(forget))
        p.mul_(torch.where(selected, ratio.clamp(max=1.0), torch.ones_like(ratio)))
    return model


def dampen_forget_specific(model: nn.Module, forget: Iterable, retain: Iterable,
                           dampening: float, selection: float) -> nn.Module:
    """Importances on D_f and on D = D_f + D_r (the forget loader, then the retain loader), in
    eval mode, then :func:`dampen`; the model's train/eval mode is put back."""
    was_training = model.training
    model.eval()
    imp_forget = importances(model, [forget])
    imp_full = importances(model, [forget, retain])
    dampen(model, imp_full, imp_forget, dampening, selection)
    model.train(was_training)
    return model


@register_method("ssd", family="editing", needs_retain=True,
                 paper="Foster, Schoepf, Brintrup 2024, Selective Synaptic Dampening",
                 tasks=("classification",))
def ssd(model: nn.Module, data: UnlearnData, cfg: SSDConfig) -> nn.Module:
    """Dampen, without any training, the weights whose importance to D_f dwarfs that to D.

    Importances are mean squared minibatch gradients on the full training set D (here the forget
    loader followed by the retain loader, since D = D_f + D_r) and on D_f. Every weight with
    imp_f > alpha * imp_D is multiplied by min(lambda * imp_D / imp_f, 1); all others keep their
    exact value. Both loaders should share a batch size, as the authors' do: squared minibatch
    gradients shrink as batches grow.

    References:
        Foster, Schoepf, Brintrup, "Fast Machine Unlearning Without Retraining Through Selective
        Synaptic Dampening", AAAI 2024 (code: ``ssd.py``, ``forget_random_strategies.py``).
    """
    return dampen_forget_specific(model, data.forget, data.retain, cfg.dampening_constant,
                                  cfg.selection_weighting)
