"""Certified removal as a bench method: a certified logistic head on frozen features."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from obliviate.batches import forward, inputs_to, split_batch
from obliviate.certified import CertifiedLogisticRegression
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.models.logreg import UnitNormLinear
from obliviate.timing import untimed
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class CertifiedRemovalConfig:
    """Defaults from the authors' README (MNIST): lam 1e-3, sigma 10; epsilon 1, delta 1e-4."""

    lam: float = param(1e-3, gt=0, help="L2 strength lambda (objective: lam*n/2*|w|^2)")
    sigma: float = param(10.0, gt=0, help="std of the objective perturbation b")
    epsilon: float = param(1.0, gt=0, help="certified removal epsilon")
    delta: float = param(1e-4, gt=0, lt=1, help="certified removal delta")
    batch_size: int | None = param(None, ge=1, help="removals per Newton step (None: one step)")


def _last_linear(model: nn.Module) -> str:
    """The dotted name of the model's last nn.Linear."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = name
    if found is None:
        raise ConfigError("certified-removal needs a model whose last layer is an nn.Linear "
                          "(it becomes the certified logistic head).")
    return found


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)


def _features(model: nn.Module, head: nn.Linear, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of ``head`` (the frozen network's features) and labels for every batch."""
    captured, labels = [], []
    hook = head.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
    device = head.weight.device
    try:
        model.eval()
        with torch.no_grad():
            for batch in loader:
                x, y = split_batch(batch)
                forward(model, inputs_to(x, device))
                labels.append(y)
    finally:
        hook.remove()
    return torch.cat(captured).flatten(1).cpu(), torch.cat(labels).cpu()


@register_method("certified-removal", family="certified", needs_retain=True,
                 paper="Guo et al., Certified Data Removal from Machine Learning Models, "
                       "ICML 2020")
def certified_removal(model: nn.Module, data: UnlearnData, cfg: CertifiedRemovalConfig
                      ) -> nn.Module:
    """Newton-step removal from a noise-perturbed logistic head, within a certified budget.

    The network up to its last linear layer is a frozen feature extractor (the paper's setting;
    for ``logreg`` the features are the inputs). The last layer becomes a one-vs-rest logistic
    regression on unit-norm features, trained on the full training set with objective
    perturbation; that training is the deployment's original training and is not timed. The
    forget set is then removed by one Newton step (or steps of ``batch_size``), and the model
    retrained from scratch if the gradient-residual bound would pass sigma*epsilon/c. The
    returned model's head holds the ``certificate`` (budget, used, retrains).

    References:
        Guo, Goldstein, Hannun, van der Maaten, "Certified Data Removal from Machine Learning
        Models", ICML 2020.
    """
    name = _last_linear(model)
    head = model.get_submodule(name)
    with untimed():
        xf, yf = _features(model, head, data.forget)
        xr, yr = _features(model, head, data.retain)
        clf = CertifiedLogisticRegression(cfg.lam, cfg.sigma, cfg.epsilon, cfg.delta,
                                          generator=data.generator)
        clf.fit(torch.cat([xf, xr]), torch.cat([yf, yr]), data.num_classes)
    clf.remove(np.arange(len(yf)), batch_size=cfg.batch_size)
    out = copy.deepcopy(model)
    _replace(out, name, UnitNormLinear(clf.weight, clf.certificate, dtype=head.weight.dtype)
             .to(head.weight.device))
    return out
