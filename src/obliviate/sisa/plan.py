"""Where each training example lives in SISA: its shard, its slice, and the epoch schedule.

Bourtoule et al. split the training set into S disjoint shards and each shard into R disjoint
slices; shard s is trained on slice 1, then on slices 1..2, and so on, with a checkpoint after
each. An example in slice r of shard s can then be unlearned by reloading the checkpoint from
before slice r and training shard s again from there without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.errors import ConfigError, DataError


def epochs_per_slice(epochs: int, slices: int) -> list[int]:
    """Epochs for each slice so that the whole shard costs about ``epochs`` epochs of training.

    As the authors' ``sisa.py``: slice r (0-based) trains for
    ``int((r+1)*a) - int(r*a)`` epochs, with ``a = 2R/(R+1) * E/R``; later slices, which cover
    more data, get no more epochs than earlier ones. Every slice trains at least one epoch.
    """
    avg = 2 * slices / (slices + 1) * epochs / slices
    return [max(1, int((r + 1) * avg) - int(r * avg)) for r in range(slices)]


@dataclass(frozen=True)
class ShardPlan:
    """A fixed assignment of n training indices to S shards of R slices each.

    Attributes:
        n: number of training examples.
        shards: S.
        slices: R.
        seed: seed of the random assignment.
        members: ``members[s][r]`` is the sorted array of training indices in slice r of shard s.
    """

    n: int
    shards: int
    slices: int
    seed: int
    members: tuple[tuple[np.ndarray, ...], ...]

    @classmethod
    def build(cls, n: int, shards: int, slices: int, seed: int = 0) -> ShardPlan:
        """Shuffle 0..n-1 with ``seed``, cut into S near-equal shards, each into R slices."""
        if shards < 1 or slices < 1:
            raise ConfigError(f"SISA needs at least one shard and one slice. Got shards={shards}, "
                              f"slices={slices}.")
        if n < shards * slices:
            raise ConfigError(
                f"SISA cannot cut {n} training examples into {shards} shards of {slices} slices "
                f"(at least one example each); use fewer shards or slices."
            )
        perm = np.random.default_rng(seed).permutation(n)
        members = tuple(tuple(np.sort(part) for part in np.array_split(shard, slices))
                        for shard in np.array_split(perm, shards))
        return cls(n, shards, slices, seed, members)

    def locate(self, ids: np.ndarray) -> dict[int, int]:
        """{shard: first slice touched} for the training indices ``ids``."""
        owner = self.owners()
        first: dict[int, int] = {}
        for i in np.asarray(ids, dtype=np.int64):
            s, r = (int(v) for v in owner[i])
            first[s] = min(first.get(s, r), r)
        return dict(sorted(first.items()))

    def owners(self) -> np.ndarray:
        """An (n, 2) array of (shard, slice) for every training index."""
        owner = np.empty((self.n, 2), dtype=np.int64)
        for s, shard in enumerate(self.members):
            for r, part in enumerate(shard):
                owner[part] = (s, r)
        return owner

    def shard_data(self, shard: int, upto_slice: int, deleted: np.ndarray) -> np.ndarray:
        """Training indices of slices 0..``upto_slice`` of ``shard``, minus ``deleted``."""
        idx = np.concatenate(self.members[shard][: upto_slice + 1])
        return np.sort(idx[~np.isin(idx, deleted)])

    def to_dict(self) -> dict:
        return {"n": self.n, "shards": self.shards, "slices": self.slices, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> ShardPlan:
        return cls.build(int(d["n"]), int(d["shards"]), int(d["slices"]), int(d["seed"]))


def check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    """Validate training indices: integers in [0, n), no repeats; returns them sorted."""
    ids = np.asarray(ids)
    if ids.size == 0:
        raise DataError("The deletion request holds no training indices; give at least one id.")
    if not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"Training indices must be integers. Got values of type {ids.dtype}.")
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise DataError(f"Training index {int(bad[0])} is out of range: the training set has {n} "
                        f"examples (valid ids 0..{n - 1}).")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"Training index {int(uniq[counts > 1][0])} appears twice in one "
                        f"request; list each id once.")
    return uniq.astype(np.int64)
