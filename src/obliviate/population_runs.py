"""Populations of unlearning runs: M runs of one gradient method from one original, at once.

The challenge protocol runs a method N times from the same original, each run with its own
seed. For a method that is plain training on the retain set (``finetune``), the N runs are N
copies of one model that differ only by their data order (and dropout masks), so they train as a
population exactly as the retrained references do (:mod:`obliviate.population`): weights stacked
on a leading axis, one wide or ``vmap`` step for all. Member i starts from the original's weights
(not a fresh initialisation) and follows ``unlearn(original, ..., seed=seeds[i])`` step for step:
its retain order is the one a shuffling loader re-seeded by :func:`unlearn` draws
(:func:`obliviate.unlearning.retain_order_seed`), iterated once per epoch, and its dropout
stream is the global RNG's that :func:`unlearn` seeds with ``seeds[i]``. So member i equals the
single run up to float rounding.

A model that cannot be vectorised (the population's ``loop`` mode) or a configuration outside
what is implemented here gives a reason (a str) instead; the caller then runs the method one
run at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from obliviate.population import Population, _plan, _train_vectorised
from obliviate.train import Recipe
from obliviate.unlearning import retain_order_seed


def train_runs(original: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe,
               seeds: Sequence[int], *, chunk_size: int | None = None) -> Population | str:
    """The M runs from ``original`` trained on (x, y) by cross-entropy under ``recipe`` (its
    optimizer, lr, momentum, weight decay, batch size and per-epoch schedule), run i seeded by
    ``seeds[i]`` as :func:`obliviate.unlearning.unlearn` seeds it; or why they cannot be.

    ``chunk_size`` bounds how many members train at once (memory).
    """
    if not seeds:
        return "no runs were asked for"
    if any(not p.requires_grad for p in original.parameters()):
        return "the original has frozen parameters"
    if getattr(original, "objective", None) is not None:
        return "the model trains with its own objective, not cross-entropy"
    device = next(original.parameters()).device
    x, y = x.to(device), y.to(device)
    members = torch.arange(len(x))
    size = chunk_size or len(seeds)
    parts = []
    for start in range(0, len(seeds), size):
        chunk = [int(s) for s in seeds[start:start + size]]
        models = [copy.deepcopy(original).train() for _ in chunk]
        plan = _plan(models, x[:8], chunk[0], "auto")
        if isinstance(plan, str):
            return plan
        pop = Population.from_models(models, mode=plan.mode)
        _train_vectorised(pop, plan, x, y, [members] * len(chunk), chunk, recipe, device,
                          order_seeds=[retain_order_seed(s) for s in chunk])
        parts.append(pop)
    return Population.concatenate(parts)
