"""Train a population of same-architecture models at once with ``torch.func``.

Membership-inference shadow models and many retrained references are M copies of one
architecture, each with its own seed and its own subset of the training set. Rather than M runs
of the reference loop, their weights are stacked along a leading axis and every step computes all
M gradients with one ``vmap``. Model i follows :func:`obliviate.train.train_model` on
``x[masks[i]]`` step for step: the same initial weights, the same batches in the same order, and
the same SGD (or Adam) update and per-epoch schedule, written as stacked tensor operations.
Models with fewer members take fewer real steps; their padded steps change nothing.

Any ``nn.Module`` classifier trains this way, in one of three modes (``Population.mode``):

- ``"wide"``: a plain chain of Conv2d/ReLU/MaxPool2d/Flatten/Linear layers, written out as one
  wide network (:mod:`obliviate.population_wide`), the fastest on CPU;
- ``"vmap"``: any other model ``vmap`` can trace. BatchNorm keeps per-model running statistics,
  updated in train mode as the loop updates them (and read in eval mode by :meth:`predict`).
  Dropout layers (``nn.Dropout``, ``Dropout1d/2d/3d``) draw model i's masks from a generator
  seeded with ``seeds[i]``, in the loop's order and shapes, so each model's stream is its own,
  independent of the other models and of ``chunk_size``, and on CPU it is the very stream the
  loop draws from the global RNG. Where BatchNorm or Dropout is present, the models whose last
  batch of an epoch is short take that step in a group of their own, so batch statistics and
  mask shapes are the loop's;
- ``"loop"``: the fallback where ``vmap`` cannot trace the model (data-dependent control flow,
  as Hugging Face attention masks; random operations other than dropout layers; a dropout
  layer called twice in one forward) or where the population's logits on a probe batch differ
  from the model's own forward: each model is trained by the reference loop itself. It is
  announced with a warning (once per model and process) and recorded in ``Population.mode``
  and ``Population.note``.

So on CPU model i equals ``train_model(..., seed=seeds[i])`` on its members up to float
rounding in every mode, dropout included (the masks are bit-identical; see the tests).

Example:
    >>> import torch, obliviate as ob
    >>> sc = ob.load_scenario("digits", model="mlp", recipe={"epochs": 1})
    >>> s = sc.splits
    >>> masks = torch.rand(4, len(s.y_train), generator=torch.Generator().manual_seed(0)) < 0.5
    >>> pop = train_population(sc.model_name, sc.input_shape, sc.num_classes, s.x_train,
    ...                        s.y_train, masks, seeds=[0, 1, 2, 3], recipe=sc.recipe)
    >>> predict_population(pop, s.x_test).shape
    (4, 359, 10)
    >>> len(pop.models()), pop.mode
    (4, 'vmap')
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import grad, stack_module_state, vmap
from torch.nn import functional as F

from obliviate.batches import forward, functional_forward
from obliviate.errors import ConfigError, DataError, TrainingDivergedError, first_sentence
from obliviate.models import build_model
from obliviate.population_wide import wide_loss, wide_predict
from obliviate.train import Recipe, make_optimizer, make_scheduler, resolve_device, train_model

Tensors = dict[str, torch.Tensor]
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which make_optimizer uses
MODES = ("auto", "wide", "vmap", "loop")
_ANNOUNCED: set[str] = set()  # models whose loop fallback was announced in this process
# element-wise dropout, or one draw per (example, channel) as F.dropout1d/2d/3d make it
DROPOUTS: dict[type, bool] = {nn.Dropout: False, nn.Dropout1d: True, nn.Dropout2d: True,
                              nn.Dropout3d: True}


@dataclass
class Population:
    """M models of one architecture: a weightless skeleton and weights stacked on axis 0.

    ``mode`` says how it was trained ("wide", "vmap" or "loop", see the module docstring) and
    ``note`` why the loop was used, when it was.
    """

    skeleton: nn.Module  # on the meta device; functional_call supplies the weights
    params: Tensors
    buffers: Tensors
    mode: str = "vmap"
    note: str = ""

    @classmethod
    def from_models(cls, models: Sequence[nn.Module], *, mode: str = "vmap",
                    note: str = "") -> Population:
        """Stack the weights of ``models`` (same architecture, same device)."""
        if len(models) == 0:
            raise DataError("A population needs at least one model; got an empty list.")
        params, buffers = stack_module_state(list(models))
        detach = lambda d: {k: v.detach() for k, v in d.items()}  # noqa: E731
        return cls(copy.deepcopy(models[0]).to("meta"), detach(params), detach(buffers), mode,
                   note)

    @classmethod
    def concatenate(cls, parts: Sequence[Population]) -> Population:
        """One population of the chunks ``parts``, in order (the first's skeleton and mode)."""
        cat = lambda attr: {k: torch.cat([getattr(p, attr)[k] for p in parts])  # noqa: E731
                            for k in getattr(parts[0], attr)}
        return cls(parts[0].skeleton, cat("params"), cat("buffers"), parts[0].mode,
                   parts[0].note)

    def __len__(self) -> int:
        return len(next(iter(self.params.values())))

    def _state(self, i: int) -> Tensors:
        return {k: v[i] for k, v in {**self.params, **self.buffers}.items()}

    def state_dicts(self) -> list[Tensors]:
        """One state dict per model, in order, as ``model.state_dict()`` would give it."""
        keys = self.skeleton.state_dict().keys()
        return [{k: v.clone() for k, v in self._state(i).items() if k in keys}
                for i in range(len(self))]

    def models(self) -> list[nn.Module]:
        """The models as ordinary modules in eval mode, as :func:`train_model` returns them."""
        out = []
        for i in range(len(self)):
            model = copy.deepcopy(self.skeleton)
            for name, t in self._state(i).items():  # non-persistent buffers included
                owner, _, attr = name.rpartition(".")
                module = model.get_submodule(owner)
                if attr in module._parameters:
                    module._parameters[attr] = nn.Parameter(t.clone(),
                                                            requires_grad=t.is_floating_point())
                else:
                    module._buffers[attr] = t.clone()
            out.append(model.eval())
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits shaped (M, n, classes) of every model on every row of ``x``, in eval mode:
        one wide forward where the model is a plain chain of layers
        (:func:`obliviate.population_wide.wide_predict`), else ``vmap``, else model by model."""
        self.skeleton.eval()
        device = next(iter(self.params.values())).device
        if self.mode != "loop" and not self.buffers:
            wide = wide_predict(self.skeleton, self.params, x.to(device), batch_size)
            if wide is not None:
                return wide
        chunks = [x[i:i + batch_size].to(device) for i in range(0, len(x), batch_size)]
        if self.mode != "loop":
            forward = vmap(lambda p, b, xb: functional_forward(self.skeleton, (p, b), xb),
                           in_dims=(0, 0, None))
            try:
                return torch.cat([forward(self.params, self.buffers, c) for c in chunks], dim=1)
            except (RuntimeError, NotImplementedError):
                pass  # a population loaded from the cache does not know it was looped
        per_model = [torch.cat([functional_forward(
            self.skeleton, ({k: v[i] for k, v in self.params.items()},
                            {k: v[i] for k, v in self.buffers.items()}), c) for c in chunks])
            for i in range(len(self))]
        return torch.stack(per_model)


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
    mode: str = "auto",
) -> Population:
    """Train model i on ``x[masks[i]]`` from ``seeds[i]``, for all M models at once.

    Args:
        model_name: a registered model or ``module:factory``, built as
            ``build_model(model_name, ..., seed=seeds[i])``.
        input_shape: the shape of one example, without the batch dimension.
        num_classes: number of classes.
        x: training inputs (n, *input_shape).
        y: integer labels (n,).
        masks: bool (M, n); row i selects the examples model i trains on.
        seeds: M seeds; seed i fixes model i's initial weights, its data order and its dropout
            masks, as in :func:`obliviate.train.train_model`.
        recipe: the training recipe shared by all models.
        device: where to train (``"auto"``: the GPU when there is one).
        chunk_size: train at most this many models at a time, to bound memory.
        model_options: data-given model sizes (a scenario's ``model_options``).
        mode: ``"auto"`` (wide, else vmap, else the loop), or one of ``"wide"``, ``"vmap"``,
            ``"loop"`` to insist (a mode the model cannot take is a ConfigError).

    Returns:
        The trained :class:`Population`; ``.models()`` gives the list of modules and ``.mode``
        the way it was trained.
    """
    masks = _check_inputs(x, y, masks, seeds, chunk_size)
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}. Got {mode!r} instead.")
    size = chunk_size or len(seeds)
    parts = [
        _train_chunk(model_name, input_shape, num_classes, x, y, masks[i:i + size],
                     [int(s) for s in seeds[i:i + size]], recipe, resolve_device(device),
                     model_options or {}, mode)
        for i in range(0, len(seeds), size)
    ]
    first = parts[0]
    if first.mode == "loop" and mode == "auto" and model_name not in _ANNOUNCED:
        _ANNOUNCED.add(model_name)  # once per model and process: a bench trains several
        warnings.warn(f"population of '{model_name}': {first.note}; each of the {len(seeds)} "
                      f"models was trained by the reference loop instead (slower, same result).",
                      stacklevel=2)
    return Population.concatenate(parts)


def _train_chunk(model_name, input_shape, num_classes, x, y, masks, seeds, recipe, device,
                 options, mode) -> Population:
    models = [build_model(model_name, input_shape, num_classes, seed=s, **options).to(device)
              for s in seeds]
    members = [torch.nonzero(m).flatten() for m in masks]
    plan = None if mode == "loop" else _plan(models, x[members[0][:8]].to(device), seeds[0],
                                             mode)
    if plan is None or isinstance(plan, str):
        if mode in ("wide", "vmap"):
            raise ConfigError(f"population: the model cannot be trained in {mode} mode ({plan});"
                              f" use mode='auto' or 'loop'.")
        trained = [train_model(model_name, input_shape, num_classes, x[m], y[m], recipe, s,
                               owner="population", device=device, model_options=options)[0]
                   for m, s in zip(masks, seeds, strict=True)]
        return Population.from_models(trained, mode="loop", note=plan or "asked for")
    pop = Population.from_models(models, mode=plan.mode)
    _train_vectorised(pop, plan, x.to(device), y.to(device), members, seeds, recipe, device)
    return pop


# ---------------------------------------------------------------------------- the plan
class _GivenNoise(nn.Module):
    """Dropout whose mask, already divided by 1 - p, arrives as the buffer ``noise``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("noise", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.noise if self.training else x


@dataclass(frozen=True)
class _Site:
    """One dropout call of a forward pass: its noise buffer, rate and per-example shape."""

    name: str
    p: float
    shape: tuple[int, ...]

    def draw(self, rows: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        """The loop's noise for a batch of ``rows``: F.dropout's bernoulli_(1 - p) / (1 - p)."""
        shape = (rows, *self.shape)
        if self.p == 0 or self.p == 1:  # F.dropout draws nothing for these
            return torch.full(shape, float(self.p == 0), dtype=dtype)
        return torch.empty(shape, dtype=dtype).bernoulli_(1 - self.p, generator=generator) \
            .div_(1 - self.p)


@dataclass
class _Plan:
    """How a chunk is vectorised: its training skeleton, gradient function and dropout sites."""

    mode: str  # "wide" or "vmap"
    grads: object  # (params, buffers, noise, xb, yb, wb) -> (grads, new buffers)
    sites: list[_Site]
    exact: bool  # BatchNorm or dropout: short batches are taken at their own length


def _plan(models: list[nn.Module], x_probe: torch.Tensor, seed: int, mode: str
          ) -> _Plan | str:
    """The fastest vectorised form that computes these models, or why there is none."""
    sites = _dropout_sites(models[0], x_probe)
    if isinstance(sites, str):
        return sites
    stacked = Population.from_models(models[:2])
    if not sites and mode in ("auto", "wide"):
        wide = wide_loss(stacked.skeleton, stacked.params, x_probe)
        if wide is not None:
            return _Plan("wide", _wide_grads(wide), [], exact=False)
    if mode == "wide":
        return "not a plain chain of Conv2d, ReLU, MaxPool2d, Flatten and Linear layers"
    train_skeleton = _with_given_noise(stacked.skeleton, sites)
    batch_stats = bool(sites) or any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                     for m in models[0].modules())
    plan = _Plan("vmap", _vmap_grads(train_skeleton), sites, exact=batch_stats)
    try:
        problem = _disagreement(models[0], stacked, train_skeleton, plan, x_probe, seed)
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as exc:
        problem = f"vmap cannot trace it ({type(exc).__name__}: {first_sentence(str(exc))})"
    return problem or plan


def _dropout_sites(model: nn.Module, x_probe: torch.Tensor) -> list[_Site] | str:
    """The dropout calls of one train-mode forward, in order, or why they cannot be given."""
    probe = copy.deepcopy(model).train()
    found = {n: m for n, m in probe.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd)}
    odd = [type(m).__name__ for m in found.values() if type(m) not in DROPOUTS]
    if odd:
        return f"its {odd[0]} layer draws noise this population does not reproduce"
    calls: list[tuple[str, tuple[int, ...]]] = []
    hooks = [m.register_forward_pre_hook(
        lambda _m, args, name=name: calls.append((name, tuple(args[0].shape))))
        for name, m in found.items()]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            forward(probe, x_probe)
    except Exception as exc:  # noqa: BLE001  the loop will report a real error itself
        return f"its train-mode forward failed on a probe batch ({type(exc).__name__})"
    finally:
        for h in hooks:
            h.remove()
    names = [n for n, _ in calls]
    if len(set(names)) != len(names):
        return "a dropout layer runs more than once in one forward"
    return [_Site(f"{n}.noise", float(found[n].p),
                  (shape[1], *(1,) * (len(shape) - 2)) if DROPOUTS[type(found[n])]
                  else shape[1:]) for n, shape in calls]


def _with_given_noise(skeleton: nn.Module, sites: list[_Site]) -> nn.Module:
    """A copy of ``skeleton`` whose dropout layers take their noise as a buffer."""
    out = copy.deepcopy(skeleton)
    for site in sites:
        owner, _, attr = site.name.removesuffix(".noise").rpartition(".")
        setattr(out.get_submodule(owner), attr, _GivenNoise())
    return out.train()


def _noise(sites: list[_Site], generators: list[torch.Generator], rows: int,
           dtype: torch.dtype, device: torch.device) -> Tensors:
    """Each model's noise for one step, model by model in the loop's draw order, stacked."""
    drawn = [[site.draw(rows, g, dtype) for site in sites] for g in generators]
    return {site.name: torch.stack([d[k] for d in drawn]).to(device)
            for k, site in enumerate(sites)}


def _disagreement(model: nn.Module, stacked: Population, train_skeleton: nn.Module, plan: _Plan,
                  x_probe: torch.Tensor, seed: int) -> str:
    """Compare the population's logits with the model's own forward, in train and eval mode.

    Train mode uses the first model's dropout stream (the loop's, from ``seed``) and its batch
    statistics; the gradient function is run once on the probe too. '' when they agree.
    """
    params = {k: v[:1] for k, v in stacked.params.items()}
    buffers = {k: v[:1].clone() for k, v in stacked.buffers.items()}
    dtype = next(iter(params.values())).dtype
    noise = _noise(plan.sites, [torch.Generator().manual_seed(seed)], len(x_probe), dtype,
                   x_probe.device)
    with torch.no_grad():
        mine = vmap(lambda p, b, n: functional_forward(train_skeleton, (p, {**b, **n}), x_probe)
                    )(params, {k: v.clone() for k, v in buffers.items()}, noise)[0]
        own_model = copy.deepcopy(model).train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            own = forward(own_model, x_probe)
        stacked.skeleton.eval()
        mine_eval = vmap(lambda p, b: functional_forward(stacked.skeleton, (p, b), x_probe)
                         )(params, buffers)[0]
        own_eval = forward(copy.deepcopy(model).eval(), x_probe)
    y_probe = torch.zeros((1, len(x_probe)), dtype=torch.long, device=x_probe.device)
    plan.grads(params, buffers, noise, x_probe[None], y_probe,
               torch.ones(y_probe.shape, dtype=dtype, device=x_probe.device))
    for what, a, b in (("train", mine, own), ("eval", mine_eval, own_eval)):
        if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
            return f"its {what}-mode logits under vmap differ from its own forward"
    return ""


def _vmap_grads(train_skeleton: nn.Module):
    """Per-model gradients and updated buffers of the (masked) mean cross-entropy."""

    def loss(params, buffers, noise, xb, yb, wb):
        state = {**{k: v.clone() for k, v in buffers.items()}, **noise}  # BN updates the clones
        logits = functional_forward(train_skeleton, (params, state), xb)
        per_example = F.cross_entropy(logits, yb, reduction="none")
        return (per_example * wb).sum() / wb.sum().clamp(min=1), \
            {k: state[k] for k in buffers}

    return vmap(grad(loss, has_aux=True))


def _wide_grads(wide):
    wide_grad = grad(wide)

    def grads(params, buffers, noise, xb, yb, wb):
        # channels-last and transposed gradients come back strided; the in-place update is far
        # faster on contiguous ones
        return {k: g.contiguous() for k, g in wide_grad(params, xb, yb, wb).items()}, buffers

    return grads


# ---------------------------------------------------------------------------- training
def _train_vectorised(pop: Population, plan: _Plan, x, y, members, seeds, recipe, device,
                      order_seeds=None):
    """Train ``pop`` in place; ``order_seeds`` (default ``seeds``) seed the loaders' orders."""
    params, buffers, bs = pop.params, pop.buffers, recipe.batch_size
    generators = [torch.Generator().manual_seed(s)  # the loaders' generators
                  for s in (seeds if order_seeds is None else order_seeds)]
    dropout_generators = [torch.Generator().manual_seed(s) for s in seeds]  # the global RNG's
    sizes = torch.tensor([len(m) for m in members])
    real_steps = [math.ceil(n / bs) for n in sizes.tolist()]
    state = _init_state(list(params.values()), recipe)
    tensors = [*params.values(), *(t for ts in state.values() for t in ts)]
    update = _adam_update if recipe.optimizer == "adam" else _sgd_update
    dtype = next(iter(params.values())).dtype
    for epoch, lr in enumerate(_epoch_lrs(recipe)):
        order, weight = _epoch_order(members, generators, max(real_steps) * bs)
        order, weight = order.to(device), weight.to(device, dtype)
        for step in range(max(real_steps)):
            lengths = (sizes - step * bs).clamp(0, bs)
            if plan.exact:
                grads = _grouped_step(plan, params, buffers, x, y, order, lengths, step * bs,
                                      dropout_generators, dtype, device)
            else:
                cols = slice(step * bs, (step + 1) * bs)
                grads, _ = plan.grads(params, buffers, {}, x[order[:, cols]], y[order[:, cols]],
                                      weight[:, cols])
            # A model whose members ran out this epoch sees an all-padding batch: its weights and
            # optimizer state are put back as they were, so that step never happened for it.
            frozen = (lengths == 0).to(device)
            saved = [t[frozen] for t in tensors] if step >= min(real_steps) else []
            update(list(params.values()), list(grads.values()), state, recipe, lr)
            for t, rows in zip(tensors, saved, strict=False):
                t[frozen] = rows
        _check_finite(params, seeds, epoch)


def _grouped_step(plan, params, buffers, x, y, order, lengths, start, dropout_generators, dtype,
                  device) -> Tensors:
    """One step where every model takes exactly its own batch length (BatchNorm, dropout).

    Models sharing a length are one vmap call; usually all of them share the full batch size.
    Their buffers (running statistics) are updated in place; the others' are left alone.
    """
    m = len(lengths)
    grads = None
    for length in sorted(set(lengths.tolist()) - {0}):
        idx = torch.nonzero(lengths == length).flatten()
        cols = order[idx.to(order.device), start:start + length]
        noise = _noise(plan.sites, [dropout_generators[i] for i in idx.tolist()], length, dtype,
                       device)
        ones = torch.ones(cols.shape, dtype=dtype, device=device)
        if len(idx) == m:
            grads, new = plan.grads(params, buffers, noise, x[cols], y[cols], ones)
            for k, v in new.items():
                buffers[k].copy_(v)
            continue
        sub = idx.to(device)
        g, new = plan.grads({k: v[sub] for k, v in params.items()},
                            {k: v[sub] for k, v in buffers.items()}, noise, x[cols], y[cols], ones)
        if grads is None:
            grads = {k: torch.zeros_like(v) for k, v in params.items()}
        for k, v in g.items():
            grads[k][sub] = v
        for k, v in new.items():
            buffers[k][sub] = v
    return grads if grads is not None else {k: torch.zeros_like(v) for k, v in params.items()}


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
        order[i, :len(idx)] = idx.cpu()[perm]
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
        return {"m": zeros(), "v": zeros(), "step": [torch.zeros(len(params[0]),
                                                                 device=params[0].device)]}
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
        denom = (v.sqrt() / bias2_sqrt.to(p.dtype).view(per_model)).add_(ADAM_EPS)
        p.sub_(step_size.to(p.dtype).view(per_model) * m / denom)


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
