"""Many unlearning runs of one method, each stored as it finishes (challenge, U-LiRA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from obliviate.bench.store import ResultStore


def repeated_runs(
    store: ResultStore,
    parent_key: str,
    n: int,
    run_one: Callable[[int], tuple[dict[str, np.ndarray], float]],
    *,
    method: str,
    seed: int,
    scenario: str,
    protocol: str,
    config: dict,
    say: Callable[[str], None],
    step: Callable[[], None],
) -> tuple[list[dict[str, np.ndarray]], list[float]]:
    """Run ``run_one(i)`` for i < n unless stored; return every run's arrays and times.

    ``run_one`` returns named float64 arrays (e.g. logits) and the seconds its unlearning took
    (evaluation excluded); both are stored with the run, so a killed bench resumes at the first
    unfinished run. Errors propagate to the caller.
    """
    outputs, times = [], []
    for i in range(n):
        key = f"{parent_key}-run{i}"
        if not store.is_done(key):
            say(f"seed {seed}: {method} run {i + 1}/{n}")
            arrays, wall = run_one(i)
            store.save(key, kind="run", method=method, seed=seed, scenario=scenario,
                       protocol=protocol, config=config, metrics={"run": i}, wall_s=wall,
                       examples={k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()},
                       status="done")
        row = store.run(key)
        times.append(float(row["wall_s"]))
        outputs.append(store.arrays(key))
        step()
    return outputs, times
