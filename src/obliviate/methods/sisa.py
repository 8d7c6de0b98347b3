"""SISA as a bench method: a sharded ensemble prepared on the training set, then exact deletion."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from obliviate.config import param
from obliviate.methods.common import canonical_rows, locate_rows, row_digests, rows
from obliviate.sisa.ensemble import AGGREGATIONS, SisaEnsemble
from obliviate.sisa.plan import ShardPlan
from obliviate.sisa.training import State, reinit_factory, train_shard
from obliviate.train import Recipe
from obliviate.unlearning import Prepared, PrepareData, UnlearnData, register_method


@dataclass(frozen=True)
class SisaConfig:
    """The authors' code uses R = 1..16 slices and S up to 20 shards; 4 x 1 is a small default."""

    shards: int = param(4, ge=1, help="number of shards S (one constituent model each)")
    slices: int = param(1, ge=1, help="slices R per shard (a checkpoint after each)")
    aggregation: str = param("mean", choices=AGGREGATIONS,
                             help="mean softmax, or majority vote of labels (authors' default)")
    epochs: int | None = param(None, ge=1, help="epochs E per shard (None: the recipe's)")
    fresh_seeds: bool = param(True, help="retrain the deleted slices from fresh random seeds "
                              "(each deletion an independent draw); False: the deployment's "
                              "seeds, bit-identical to training without the forget set")


def _recipe(recipe: Recipe | None, cfg: SisaConfig) -> Recipe:
    recipe = recipe or Recipe()
    return replace(recipe, epochs=cfg.epochs) if cfg.epochs is not None else recipe


def _key(shard: int, slice_: int, name: str) -> str:
    return f"ckpt.{shard}.{slice_}.{name}"


def prepare_sisa(model: nn.Module, data: PrepareData, cfg: SisaConfig) -> Prepared:
    """Train the deployment: S shards of ``model``'s architecture, a checkpoint per slice.

    The rows are put in a canonical order (by digest), so the deployment depends on the training
    set, not on the order a loader gives it. Returns the rows, the plan's seed and every
    checkpoint.
    """
    x, y = canonical_rows(data.train, "sisa")
    seed = data.seed()
    plan = ShardPlan.build(len(y), cfg.shards, cfg.slices, seed)
    state: Prepared = {"x": x, "y": y, "seed": torch.tensor(seed, dtype=torch.int64)}

    def keep(shard: int, slice_: int, weights: State) -> None:
        state.update({_key(shard, slice_, k): v for k, v in weights.items()})

    factory = reinit_factory(model)
    for s in range(plan.shards):
        train_shard(factory, x, y, plan, s, _recipe(data.recipe, cfg), seed,
                    deleted=np.empty(0, dtype=np.int64), on_checkpoint=keep)
    return state


def _checkpoint(prepared: Prepared, shard: int, slice_: int) -> State:
    prefix = f"ckpt.{shard}.{slice_}."
    return {k[len(prefix):]: v for k, v in prepared.items() if k.startswith(prefix)}


@register_method("sisa", family="exact", needs_retain=True,
                 paper="Bourtoule et al., Machine Unlearning, IEEE S&P 2021",
                 tasks=("classification",), prepare=prepare_sisa)
def sisa(model: nn.Module, data: UnlearnData, cfg: SisaConfig) -> nn.Module:
    """Exact deletion from a sharded, sliced ensemble: retrain only the shards that held the data.

    The deployment (the prepare phase, :func:`prepare_sisa`) is an ensemble of S copies of
    ``model``'s architecture, each trained on its own shard of the full training set slice by
    slice with a checkpoint after each slice; that is the deployment's original training, done
    once and not part of the deletion's time. The deletion (this function) finds the forget
    rows in the deployment's training set and trains each shard that held one again from the
    checkpoint before its earliest such slice, without the forget set. The returned ensemble
    outputs log-probabilities (mean softmax or vote).

    Fidelity notes:
        - Follows the authors' ``sisa.py`` plan (random disjoint shards, cumulative slices, the
          epoch schedule of :func:`obliviate.sisa.plan.epochs_per_slice`).
        - Departs: with ``fresh_seeds`` (the default) the retrained slices draw new random
          seeds from the run, so that repeated deletions from one deployment are independent
          draws of "trained without the data" (the challenge protocol compares distributions
          over runs); ``fresh_seeds=False`` reuses the deployment's seeds, which makes a
          deletion bit-identical to training the shard without the forget set
          (:class:`obliviate.sisa.SisaModel` always does that).

    References:
        Bourtoule, Chandrasekaran, Choquette-Choo, Jia, Travers, Zhang, Lie, Papernot, "Machine
        Unlearning", IEEE S&P 2021.
    """
    prepared = data.prepared
    x, y, seed = prepared["x"], prepared["y"], int(prepared["seed"])
    xf, yf = rows(data.forget, "sisa")
    forget_ids = locate_rows(xf, yf, row_digests(x, y), "sisa").numpy()
    plan = ShardPlan.build(len(y), cfg.shards, cfg.slices, seed)
    factory = reinit_factory(model)
    recipe = _recipe(data.recipe, cfg)
    first = plan.locate(forget_ids)
    members = []
    for s in range(plan.shards):
        if s in first:
            start = first[s]
            m = train_shard(factory, x, y, plan, s, recipe,
                            data.seed() if cfg.fresh_seeds else seed, deleted=forget_ids,
                            start_slice=start,
                            start_state=_checkpoint(prepared, s, start - 1) if start else None)
        else:
            m = factory(0)
            m.load_state_dict(_checkpoint(prepared, s, plan.slices - 1))
        members.append(m.eval())
    return SisaEnsemble(members, cfg.aggregation)
