"""Training one SISA shard slice by slice, with the one training loop of :mod:`obliviate.train`.

Every random choice of slice r of shard s (the initial weights for r = 0, the data order) is
drawn from a seed that depends only on (seed, s, r). Training a shard again from the checkpoint
before slice r, without some examples, therefore gives bit for bit what training that shard
from scratch without them gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from obliviate.sisa.plan import ShardPlan, epochs_per_slice
from obliviate.train import Recipe, fit, tensor_loader

ModelFactory = Callable[[int], nn.Module]  # seed -> a freshly initialised model
State = dict[str, torch.Tensor]
OnCheckpoint = Callable[[int, int, State], None]  # (shard, slice, weights)


def slice_seed(seed: int, shard: int, slice_: int) -> int:
    """The seed of slice ``slice_`` of shard ``shard``: independent of every other slice."""
    return int(np.random.SeedSequence([seed, shard, slice_]).generate_state(1)[0] % (2**31 - 1))


def reinit_factory(template: nn.Module) -> ModelFactory:
    """A factory of copies of ``template`` with every layer's weights re-drawn from the seed."""
    import copy

    from obliviate.models import reset_parameters_from_seed

    def build(seed: int) -> nn.Module:
        return reset_parameters_from_seed(copy.deepcopy(template), seed)

    return build


def train_shard(
    factory: ModelFactory,
    x: torch.Tensor,
    y: torch.Tensor,
    plan: ShardPlan,
    shard: int,
    recipe: Recipe,
    seed: int,
    *,
    deleted: np.ndarray,
    start_slice: int = 0,
    start_state: State | None = None,
    on_checkpoint: OnCheckpoint | None = None,
) -> nn.Module:
    """Train ``shard`` on slices ``start_slice``..R-1 (cumulatively), skipping ``deleted``.

    Args:
        factory: builds the constituent model from a seed.
        x, y: the whole training set; the plan's indices point into it.
        start_slice: first slice to train; the model starts from ``start_state``, the weights
            checkpointed after slice ``start_slice - 1`` (fresh weights when it is 0).
        on_checkpoint: called with (shard, slice, weights) after each slice.

    Returns:
        The shard's model after its last slice.
    """
    model = factory(slice_seed(seed, shard, 0))
    if start_slice > 0:
        if start_state is None:
            raise ValueError("start_state is required when start_slice > 0")
        model.load_state_dict(start_state)
    schedule = epochs_per_slice(recipe.epochs, plan.slices)
    for r in range(start_slice, plan.slices):
        idx = plan.shard_data(shard, r, deleted)
        r_seed = slice_seed(seed, shard, r)
        if len(idx):  # a slice whose data were all deleted keeps the previous weights
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(r_seed)
                loader = tensor_loader(x[idx], y[idx], recipe.batch_size, shuffle=True,
                                       seed=r_seed)
                fit(model, lambda epoch, lo=loader: lo, replace(recipe, epochs=schedule[r]),
                    owner=f"sisa shard {shard} slice {r}")
        model.eval()
        if on_checkpoint is not None:
            on_checkpoint(shard, r, {k: v.detach().clone() for k, v in model.state_dict().items()})
    return model
