"""Where each training example lives in SISA: its shard, its slice, and the epoch schedule.

Bourtoule et al. split the training set into S disjoint shards and each shard into R disjoint
slices; shard s is trained on slice 1, then on slices 1..2, and so on, with a checkpoint after
each. An example in slice r of shard s can then be unlearned by reloading the checkpoint from
before slice r and training shard s again from there without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
            raise ConfigError(f"SISA needs at least one shard and one slice (--shards and "
                              f"--slices must be >= 1). Got shards={shards}, slices={slices} "
                              f"instead.")
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


def check_ids(ids, n: int) -> np.ndarray:
    """Validate training indices: integers in [0, n), no repeats; returns them sorted."""
    ids = np.asarray(ids).ravel()
    if ids.size == 0:
        raise DataError("The deletion request holds no training indices; give at least one id.")
    if not np.issubdtype(ids.dtype, np.integer):  # floats, strings, or ints too big for int64
        values = ids.tolist()
        bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, int)), None)
        if bad is not None:
            raise DataError(f"Training indices must be integers. Got {bad!r} "
                            f"({type(bad).__name__}) instead.")
        ids = np.array([v if 0 <= v < n else -1 for v in values], dtype=np.int64)
        if (ids < 0).any():
            raise DataError(f"Training index {values[int(np.argmax(ids < 0))]} is out of range: "
                            f"the training set has {n} examples (valid ids 0..{n - 1}).")
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise DataError(f"Training index {int(bad[0])} is out of range: the training set has {n} "
                        f"examples (valid ids 0..{n - 1}).")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"Training index {int(uniq[counts > 1][0])} appears twice in one "
                        f"request; list each id once.")
    return uniq.astype(np.int64)


def read_index_file(path: Path, *, option: str, n: int | None = None) -> np.ndarray:
    """The integers of a text file, one per line (blank lines and ``# comments`` ignored).

    Args:
        path: the file given to ``--{option}``.
        n: for training indices, the size of the training set: each value must lie in
            [0, n) and occur once. Without it (group ids) any 64-bit integer is accepted.

    Raises:
        DataError: a missing or unreadable file, a line that is not an integer, an index out
            of range or listed twice; the message names the line.
    """
    noun = "training index" if n is not None else "group id"
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"The --{option} file {path} does not exist; give a text file with one "
                        f"{noun} per line.") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise DataError(f"Cannot read the --{option} file {path} ({why}); give a text file with "
                        f"one {noun} per line.") from None
    values: list[int] = []
    seen: dict[int, int] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{path}, line {number}"
        try:
            value = int(text)
        except ValueError:
            raise DataError(f"{where}: {text[:40]!r} is not an integer; write one {noun} per "
                            f"line.") from None
        if n is not None and not 0 <= value < n:
            raise DataError(f"{where}: training index {text[:40]} is out of range: the training "
                            f"set has {n} examples (valid ids 0..{n - 1}).")
        if not -(2**63) <= value < 2**63:
            raise DataError(f"{where}: {text[:40]} is too large for a {noun}; group ids must "
                            f"fit in 64 bits.")
        if n is not None and value in seen:
            raise DataError(f"{where}: training index {value} is listed twice (also on line "
                            f"{seen[value]}); list each id once.")
        seen[value] = number
        values.append(value)
    return np.asarray(values, dtype=np.int64)
