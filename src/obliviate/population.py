"""Train a population of same-architecture models at once with ``torch.func``.

Membership-inference shadow models and many retrained references are M copies of one
architecture, each with its own seed and its own subset of the training set. Rather than M runs
of the reference loop, their weights are stacked along a leading axis and every step computes all
M gradients with one ``vmap``. Model i follows :func:`obliviate.train.train_model` on
``x[masks[i]]`` step for step: the same initial weights, the same batches in the same order, and
the same SGD (or Adam) update and per-epoch schedule, written as stacked tensor operations.
Models with fewer members take fewer real steps; their padded steps change nothing.

Example:
    >>> import torch, obliviate as ob
    >>> sc = ob.load_scenario("digits", model="mlp", recipe={"epochs": 1})
    >>> s = sc.splits
    >>> masks = torch.rand(4, len(s.y_train), generator=torch.Generator().manual_seed(0)) < 0.5
    >>> pop = train_population(sc.model_name, sc.input_shape, sc.num_classes, s.x_train,
    ...                        s.y_train, masks, seeds=[0, 1, 2, 3], recipe=sc.recipe)
    >>> predict_population(pop, s.x_test).shape
    (4, 359, 10)
    >>> len(pop.models())
    4
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.nn import functional as F

from obliviate.errors import ConfigError, DataError, TrainingDivergedError
from obliviate.models import build_model
from obliviate.population_wide import wide_loss
from obliviate.train import Recipe, make_optimizer, make_scheduler

Tensors = dict[str, torch.Tensor]
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which make_optimizer uses


@dataclass
class Population:
    """M models of one architecture: a weightless skeleton and weights stacked on axis 0."""

    skeleton: nn.Module  # on the meta device; functional_call supplies the weights
    params: Tensors
    buffers: Tensors

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> Population:
        """Stack the weights of ``models`` (same architecture, same device)."""
        if len(models) == 0:
            raise DataError("A population needs at least one model; got an empty list.")
        params, buffers = stack_module_state(list(models))
        detach = lambda d: {k: v.detach() for k, v in d.items()}  # noqa: E731
        return cls(copy.deepcopy(models[0]).to("meta"), detach(params), detach(buffers))

    def __len__(self) -> int:
        return len(next(iter(self.params.values())))

    def state_dicts(self) -> list[Tensors]:
        """One state dict per model, in order, as ``model.state_dict()`` would give it."""
        stacked = {**self.params, **self.buffers}
        return [{k: v[i].clone() for k, v in stacked.items()} for i in range(len(self))]

    def models(self) -> list[nn.Module]:
        """The models as ordinary modules in eval mode, as :func:`train_model` returns them."""
        out = []
        for state in self.state_dicts():
            model = copy.deepcopy(self.skeleton)
            model.load_state_dict(state, assign=True)
            out.append(model.eval())
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits shaped (M, n, classes) of every model on every row of ``x``, in eval mode."""
        self.skeleton.eval()
        device = next(iter(self.params.values())).device
        forward = vmap(lambda p, b, xb: functional_call(self.skeleton, (p, b), (xb,)),
                       in_dims=(0, 0, None))
        chunks = [forward(self.params, self.buffers, x[i:i + batch_size].to(device))
                  for i in range(0, len(x), batch_size)]
        return torch.cat(chunks, dim=1)


def predict_population(
    models: Population | Sequence[nn.Module], x: torch.Tensor, batch_size: int = 1024
) -> np.ndarray:
    """Float64 logits (M, n, classes) of a population or a list of same-architecture models."""
    population = models if isinstance(models, Population) else Population.from_models(models)
    return population.predict(x, batch_size).double().cpu().numpy()


def train_population(
    model_name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    x: torch.Tensor,
    y: torch.Tensor,
    masks: torch.Tensor,
    seeds: Sequence[int],
    recipe: Recipe,
    *,
    device: str | torch.device = "cpu",
    chunk_size: int | None = None,
    model_options: dict | None = None,
) -> Population:
    """Train model i on ``x[masks[i]]`` from ``seeds[i]``, for all M models at once.

    Args:
        model_name: a registered model, built as ``build_model(model_name, ..., seed=seeds[i])``.
        input_shape: the shape of one example, without the batch dimension.
        num_classes: number of classes.
        x: training inputs (n, *input_shape).
        y: integer labels (n,).
        masks: bool (M, n); row i selects the examples model i trains on.
        seeds: M seeds; seed i fixes model i's initial weights and its data order, as in
            :func:`obliviate.train.train_model`.
        recipe: the training recipe shared by all models.
        device: where to train.
        chunk_size: train at most this many models at a time, to bound memory.
        model_options: data-given model sizes (a scenario's ``model_options``).

    Returns:
        The trained :class:`Population`; ``.models()`` gives the list of modules.
    """
    masks = _check_inputs(x, y, masks, seeds, chunk_size)
    size = chunk_size or len(seeds)
    parts = [
        _train_chunk(model_name, input_shape, num_classes, x, y, masks[i:i + size],
                     [int(s) for s in seeds[i:i + size]], recipe, torch.device(device),
                     model_options or {})
        for i in range(0, len(seeds), size)
    ]
    cat = lambda attr: {k: torch.cat([getattr(p, attr)[k] for p in parts])  # noqa: E731
                        for k in getattr(parts[0], attr)}
    return Population(parts[0].skeleton, cat("params"), cat("buffers"))


def _train_chunk(model_name, input_shape, num_classes, x, y, masks, seeds, recipe, device,
                 options):
    pop = Population.from_models(
        [build_model(model_name, input_shape, num_classes, seed=s, **options).to(device)
         for s in seeds])
    params, buffers, bs = pop.params, pop.buffers, recipe.batch_size
    x, y = x.to(device), y.to(device)
    members = [torch.nonzero(m).flatten() for m in masks]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    real_steps = [math.ceil(len(m) / bs) for m in members]
    state = _init_state(list(params.values()), recipe)
    tensors = [*params.values(), *(t for ts in state.values() for t in ts)]
    update = _adam_update if recipe.optimizer == "adam" else _sgd_update
    pop.skeleton.train()
    grads_of = _gradient_function(pop.skeleton, params, x[members[0][:8]])
    for epoch, lr in enumerate(_epoch_lrs(recipe)):
        order, weight = _epoch_order(members, generators, max(real_steps) * bs)
        order, weight = order.to(device), weight.to(device)
        for step in range(max(real_steps)):
            cols = slice(step * bs, (step + 1) * bs)
            grads = grads_of(params, buffers, x[order[:, cols]], y[order[:, cols]], weight[:, cols])
            # A model whose members ran out this epoch sees an all-padding batch: its weights and
            # optimizer state are put back as they were, so that step never happened for it.
            frozen = torch.tensor([step >= r for r in real_steps], device=device)
            saved = [t[frozen] for t in tensors] if step >= min(real_steps) else []
            update(list(params.values()), list(grads.values()), state, recipe, lr)
            for t, rows in zip(tensors, saved, strict=False):
                t[frozen] = rows
        _check_finite(params, seeds, epoch)
    return pop


def _gradient_function(skeleton: nn.Module, params: Tensors, x_probe: torch.Tensor):
    """Per-model gradients ``(params, buffers, xb, yb, wb) -> grads``: wide form, else vmap."""
    wide = wide_loss(skeleton, params, x_probe)
    if wide is None:
        return vmap(grad(_masked_loss(skeleton)))
    wide_grad = grad(wide)

    def grads(params, buffers, xb, yb, wb):
        # channels-last and transposed gradients come back strided; the in-place update is far
        # faster on contiguous ones
        return {k: g.contiguous() for k, g in wide_grad(params, xb, yb, wb).items()}

    return grads


def _masked_loss(skeleton: nn.Module):
    """Cross-entropy averaged over the real (weight 1) examples of one model's padded batch."""

    def loss(params, buffers, xb, yb, wb):
        logits = functional_call(skeleton, (params, buffers), (xb,))
        per_example = F.cross_entropy(logits, yb, reduction="none")
        return (per_example * wb).sum() / wb.sum().clamp(min=1)

    return loss


def _epoch_order(members, generators, width):
    """Each model's batches for one epoch, as (M, width) example indices and 0/1 weights."""
    order = torch.zeros(len(members), width, dtype=torch.long)
    weight = torch.zeros(len(members), width)
    for i, (idx, gen) in enumerate(zip(members, generators, strict=True)):
        # train_model's DataLoader draws a worker base seed, then the sampler's permutation, then
        # (once exhausted) a second, unused one; drawing the same keeps the loop's data order.
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        perm = torch.randperm(len(idx), generator=gen)
        torch.randperm(len(idx), generator=gen)
        order[i, :len(idx)] = idx[perm]
        weight[i, :len(idx)] = 1.0
    return order, weight


def _epoch_lrs(recipe: Recipe) -> list[float]:
    """The learning rate of each epoch, read off the loop's own scheduler so the two agree."""
    dummy = nn.Parameter(torch.zeros(1))
    opt = make_optimizer([dummy], recipe.optimizer, recipe.lr, recipe.momentum,
                         recipe.weight_decay)
    scheduler = make_scheduler(opt, recipe.schedule, recipe.epochs)
    lrs = []
    for _ in range(recipe.epochs):
        lrs.append(float(opt.param_groups[0]["lr"]))
        opt.step()  # a no-op without gradients; keeps the scheduler's call-order check quiet
        if scheduler is not None:
            scheduler.step()
    return lrs


def _init_state(params: list[torch.Tensor], recipe: Recipe) -> dict[str, list[torch.Tensor]]:
    zeros = lambda: [torch.zeros_like(p) for p in params]  # noqa: E731
    if recipe.optimizer == "adam":
        return {"m": zeros(), "v": zeros(), "step": [torch.zeros(len(params[0]))]}
    return {"buf": zeros()} if recipe.momentum else {}


def _sgd_update(ps, gs, state, recipe, lr) -> None:
    """torch.optim.SGD in place: decay added to the gradient, momentum without dampening.

    A zero buffer on the first step gives ``buf = d`` exactly, as torch's first-step clone does.
    """
    torch._foreach_add_(gs, ps, alpha=recipe.weight_decay)
    if recipe.momentum:
        torch._foreach_mul_(state["buf"], recipe.momentum)
        torch._foreach_add_(state["buf"], gs)
        gs = state["buf"]
    torch._foreach_add_(ps, gs, alpha=-lr)


def _adam_update(ps, gs, state, recipe, lr) -> None:
    """torch.optim.Adam in place (L2 decay added to the gradient), with a step count per model."""
    (beta1, beta2), (step,) = ADAM_BETAS, state["step"]
    step += 1
    step_size = lr / (1 - beta1 ** step.double())
    bias2_sqrt = (1 - beta2 ** step.double()).sqrt()
    torch._foreach_add_(gs, ps, alpha=recipe.weight_decay)
    torch._foreach_lerp_(state["m"], gs, 1 - beta1)
    torch._foreach_mul_(state["v"], beta2)
    torch._foreach_addcmul_(state["v"], gs, gs, value=1 - beta2)
    for p, m, v in zip(ps, state["m"], state["v"], strict=True):
        per_model = (-1,) + (1,) * (p.dim() - 1)
        denom = (v.sqrt() / bias2_sqrt.float().view(per_model)).add_(ADAM_EPS)
        p.sub_(step_size.float().view(per_model) * m / denom)


def _check_finite(params: Tensors, seeds: list[int], epoch: int) -> None:
    finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in params.values()]).all(0)
    if not bool(finite.all()):
        bad = [seeds[i] for i in torch.nonzero(~finite).flatten().tolist()]
        raise TrainingDivergedError(
            f"population: the weights of the models with seeds {bad} became NaN or infinite in "
            f"epoch {epoch + 1}; no model was returned. Lower the learning rate or the epochs.")


def _check_inputs(x, y, masks, seeds, chunk_size) -> torch.Tensor:
    """Refuse inconsistent inputs before any model is built; returns the masks as a tensor."""
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} examples but y has {len(y)}; they must match.")
    masks = torch.as_tensor(masks)
    if masks.dtype != torch.bool or masks.dim() != 2 or masks.shape[1] != len(x):
        raise DataError(
            f"masks must be a bool tensor shaped (models, {len(x)}), one row per model over the "
            f"training examples. Got {masks.dtype} of shape {tuple(masks.shape)} instead.")
    if len(masks) == 0:
        raise DataError("masks has no rows; a population needs at least one model.")
    if len(seeds) != len(masks):
        raise ConfigError(
            f"seeds has {len(seeds)} entries but masks has {len(masks)} rows; give one seed per "
            f"model.")
    empty = torch.nonzero(~masks.any(1)).flatten().tolist()
    if empty:
        raise DataError(f"The masks of models {empty} select no examples; every model needs at "
                        f"least one member.")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ConfigError(f"chunk_size must be an int >= 1 or None. Got {chunk_size!r} instead.")
    return masks.cpu()
