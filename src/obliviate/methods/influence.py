"""Influence unlearning (IU): one Newton-like step with a WoodFisher inverse-Hessian product."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad, vmap

from obliviate.batches import forward, functional_forward, take, unsqueeze
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import PerExample
from obliviate.methods.memory import (
    MIB,
    activation_bytes,
    announce,
    budget_bytes,
    chunk_size,
    chunks,
    gradient_bytes,
)
from obliviate.train import model_device, to_device
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class InfluenceConfig:
    """Defaults: the Unlearn-Sparse code (``unlearn/Wfisher.py``: N = 1000 WoodFisher samples,
    which is also the damping) and its README's IU command (``--alpha 0.2``, the arg_parser
    default; the paper searches alpha per setting)."""

    alpha: float = param(0.2, gt=0, help="step size: theta <- theta + alpha * H^-1 v")
    num_samples: int = param(1000, ge=1,
                             help="N: retain examples in the WoodFisher recursion, and its damping")
    memory_mb: float = param(0.0, ge=0, help="memory budget (MiB) of the per-example "
                                             "gradients; 0: half the available memory")


def summed_gradient(model: nn.Module, loader: Iterable, params: list[nn.Parameter]):
    """(sum over examples of grad CE as one flat vector, number of examples)."""
    total = torch.zeros(sum(p.numel() for p in params), device=model_device(model),
                        dtype=params[0].dtype)
    count = 0
    for batch in loader:
        x, y = to_device(batch, total.device)
        grads = torch.autograd.grad(F.cross_entropy(forward(model, x), y, reduction="sum"),
                                    params, allow_unused=True)
        total += torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                            for g, p in zip(grads, params, strict=True)])
        count += len(y)
    return total, count


def per_example_gradients(model: nn.Module, loader: Iterable, limit: int,
                          memory_mb: float = 0.0) -> Iterator[torch.Tensor]:
    """Flat gradients of CE on each of the first ``limit`` examples, a chunk at a time.

    ``vmap`` over ``torch.func.grad`` replaces the authors' batch-size-1 backward passes, over
    chunks of each batch sized to the memory budget (:mod:`obliviate.methods.memory`); where
    ``vmap`` cannot trace the model (Hugging Face attention masks), those backward passes give
    the same gradients.
    """
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def loss(theta, x, y):
        logits = functional_forward(model, (theta, frozen, buffers), unsqueeze(x))
        return F.cross_entropy(logits, y.unsqueeze(0))

    def vectorised(x, y) -> torch.Tensor:
        grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
        return torch.cat([g.flatten(start_dim=1) for g in grads.values()], dim=1)

    def looped(x, y) -> torch.Tensor:
        trainable = [p for p in model.parameters() if p.requires_grad]
        rows = []
        for i in range(len(y)):
            logits = forward(model, take(x, slice(i, i + 1)))
            grads = torch.autograd.grad(F.cross_entropy(logits, y[i:i + 1]), trainable,
                                        allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                                   for g, p in zip(grads, trainable, strict=True)]))
        return torch.stack(rows)

    per = PerExample("influence")
    seen, size = 0, 0
    for batch in loader:
        x, y = to_device(batch, model_device(model))
        x, y = take(x, slice(0, limit - seen)), y[: limit - seen]
        if not size:  # sized once, from the first batch
            per_row = gradient_bytes(params, activation_bytes(model, take(x, slice(0, 1))))
            budget = budget_bytes(memory_mb)
            size = chunk_size(per_row, budget)
            if not size:
                announce("influence", f"one example's gradient (about {per_row / MIB:.0f} MiB) "
                         f"exceeds the memory budget ({budget / MIB:.0f} MiB; set memory_mb)",
                         "computing one example at a time, which may still run out of memory")
                size = 1
        for part_x, part_y in chunks(x, y, size):
            yield per(vectorised, looped, part_x, part_y)
        seen += len(y)
        if seen >= limit:
            return


def woodfisher(v: torch.Tensor, sample_grads: Iterable[torch.Tensor],
               damping: float) -> torch.Tensor:
    """The Unlearn-Sparse ``woodfisher`` recursion for H^-1 v, with H = I + sum g g^T / N.

    The first gradient seeds o; each later gradient g updates
    k <- k - (k.g / (N + o.g)) o and o <- o - (o.g / (N + o.g)) o, starting from k = v.
    With o standing in for H^-1 g, this is exact Sherman-Morrison only when all gradients
    agree; it is kept as the authors wrote it. (Their loop stops after index N + 1, so it
    reads N + 2 gradients; here exactly ``num_samples`` are read.)
    """
    k = v.clone()
    o = None
    for chunk in sample_grads:
        for g in chunk:
            if o is None:
                o = g.clone()
                continue
            tmp = torch.dot(o, g)
            k -= (torch.dot(k, g) / (damping + tmp)) * o
            o -= (tmp / (damping + tmp)) * o
    return k


@register_method("influence", family="second-order", needs_retain=True,
                 paper="Jia et al. 2023 (IU via WoodFisher); Koh & Liang 2017",
                 tasks=("classification",))
def influence(model: nn.Module, data: UnlearnData, cfg: InfluenceConfig) -> nn.Module:
    """Take one step theta <- theta + alpha * H^-1 (g_f - g_r) that removes D_f's influence.

    As the Unlearn-Sparse ``Wfisher``: with n_f, n_r the forget and retain sizes and sums of
    per-example cross-entropy gradients, g_f = sum_f / (n_f + n_r) and
    g_r = sum_r * n_f / ((n_f + n_r) * n_r); H^-1 (g_f - g_r) is approximated by the WoodFisher
    recursion over the per-example gradients of the first ``num_samples`` retain examples the
    loader yields, with damping ``num_samples``. Eval mode throughout; no training.

    References:
        Koh & Liang, "Understanding Black-box Predictions via Influence Functions", ICML 2017;
        Singh & Alistarh, "WoodFisher", NeurIPS 2020; Jia et al., "Model Sparsity Can Simplify
        Machine Unlearning", NeurIPS 2023 (code: ``Unlearn-Sparse/unlearn/Wfisher.py``).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("influence needs a model with trainable parameters; none require grad.")
    was_training = model.training
    model.eval()
    sum_f, n_f = summed_gradient(model, data.forget, params)
    sum_r, n_r = summed_gradient(model, data.retain, params)
    if n_f == 0 or n_r == 0:
        raise ConfigError("influence needs non-empty forget and retain loaders.")
    v = sum_f / (n_f + n_r) - sum_r * n_f / ((n_f + n_r) * n_r)
    step = woodfisher(v, per_example_gradients(model, data.retain, cfg.num_samples,
                                                     cfg.memory_mb),
                      damping=float(cfg.num_samples))
    with torch.no_grad():
        for p, piece in zip(params, step.split([p.numel() for p in params]), strict=True):
            p.add_(cfg.alpha * piece.view_as(p))
    model.train(was_training)
    return model
