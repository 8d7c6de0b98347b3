"""Many unlearning runs of one method, each stored as it finishes (challenge, U-LiRA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from obliviate.errors import TrainingDivergedError

if TYPE_CHECKING:
    from obliviate.bench.runner import BenchRun, Job
    from obliviate.bench.store import ResultStore


def repeated_runs(
    run: BenchRun,
    store: ResultStore,
    job: Job,
    n: int,
    run_one: Callable[[int], tuple[dict[str, np.ndarray], float]],
    *,
    protocol: str,
    config: dict,
    say: Callable[[str], None],
    step: Callable[[], None],
) -> tuple[list[dict[str, np.ndarray]], list[float]] | None:
    """Run ``run_one(i)`` for i < n unless stored; return every run's arrays and times.

    ``run_one`` returns named float64 arrays (e.g. logits) and the seconds its unlearning took
    (evaluation excluded); both are stored with the run, so a killed bench resumes at the first
    unfinished run. Returns None when ``job`` is already finished, or when a run diverged (the
    job is then recorded as failed and the bench goes on).
    """
    if store.is_done(job.key):
        for _ in range(n):
            step()
        return None
    outputs, times = [], []
    try:
        for i in range(n):
            key = f"{job.key}-run{i}"
            if not store.is_done(key):
                say(f"seed {job.seed}: {job.method} run {i + 1}/{n}")
                arrays, wall = run_one(i)
                store.save(key, kind="run", method=job.method, seed=job.seed,
                           scenario=run.rb.scenario.name, protocol=protocol, config=config,
                           metrics={"run": i}, wall_s=wall,
                           examples={k: np.asarray(v, dtype=np.float64)
                                     for k, v in arrays.items()})
            times.append(float(store.run(key)["wall_s"]))
            outputs.append(store.arrays(key))
            step()
    except TrainingDivergedError as exc:
        run.fail(store, job, exc, protocol, config)
        return None
    return outputs, times
