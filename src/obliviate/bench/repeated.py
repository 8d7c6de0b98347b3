"""Many unlearning runs of one method, each stored as it finishes (challenge, U-LiRA)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from obliviate.bench.executors import Task
from obliviate.errors import TrainingDivergedError

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job
    from obliviate.bench.spec import Progress


def repeated_runs(
    kit: Kit,
    job: Job,
    n: int,
    make_task: Callable[[int], tuple[Callable[..., Any], tuple]],
    *,
    progress: Progress,
) -> tuple[list[dict[str, np.ndarray]], list[float]] | None:
    """Run the n unlearning runs of ``job`` on the bench's executor unless stored.

    ``make_task(i)`` gives a module-level function and its arguments; the function returns
    named float64 arrays (e.g. logits) and the seconds its unlearning took (evaluation
    excluded). Both are stored with the run as it comes back, so a killed bench resumes at the
    first unfinished run. Returns every run's arrays and times in run order; None when ``job``
    is already finished, or when a run failed (the job is then recorded as failed, the other
    runs are cancelled, and the bench goes on).
    """
    todo = _unfinished(kit, job, n, progress)
    if todo is None:
        return None
    parts = [f"run{i}" for i in range(n)]
    tasks = []
    for i in todo:
        fn, args = make_task(i)
        tasks.append(Task(fn, args, f"seed {job.seed}: {job.method} run {i + 1}/{n}", i))
    for out in kit.executor.map(tasks):
        if not out.ok:
            kit.fail(job, out.describe_error(), diverged=out.diverged)
            return None
        arrays, wall = out.value
        i = out.task.tag
        kit.record(job, {"run": i}, wall=wall, part=parts[i],
                   examples={k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
        progress.say(f"{out.task.label} done")
        progress.step()
    times = [float(kit.wall(job, part)) for part in parts]
    return [kit.arrays(job, part) for part in parts], times


def population_runs(
    kit: Kit,
    job: Job,
    n: int,
    chunk_size: int | None,
    train_chunk: Callable[[list[int]], tuple[Sequence[dict[str, np.ndarray]], float] | str],
    *,
    progress: Progress,
) -> tuple[list[dict[str, np.ndarray]], list[float]] | str | None:
    """:func:`repeated_runs` for a method that trains many runs at once (its ``population``
    capability): ``train_chunk(indices)`` gives those runs' named arrays in order and the
    seconds their training took (evaluation excluded), or a str saying why they cannot be
    trained together (nothing is stored; the caller falls back to :func:`repeated_runs`, which
    keeps the runs stored so far).

    The unfinished runs go in chunks of ``chunk_size`` (None: all at once); each run is stored
    as its chunk finishes, with the chunk's training seconds / its size (the amortised seconds
    of a run), so a killed bench resumes losing at most the chunk in flight. Returns every run's
    arrays and amortised seconds in run order; None when ``job`` is already finished or failed.
    """
    todo = _unfinished(kit, job, n, progress)
    if todo is None:
        return None
    parts = [f"run{i}" for i in range(n)]
    size = chunk_size or n
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        progress.say(f"seed {job.seed}: {job.method} runs {chunk[0] + 1}-{chunk[-1] + 1}/{n} "
                     f"as one population")
        try:
            out = train_chunk(chunk)
        except Exception as exc:  # noqa: BLE001  the job fails alone, as a run of repeated_runs
            kit.fail(job, exc)
            return None
        if isinstance(out, str):
            return out
        outputs, seconds = out
        wall = seconds / len(chunk)
        for i, arrays in zip(chunk, outputs, strict=True):
            kit.record(job, {"run": i}, wall=wall, part=parts[i],
                       examples={k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
            progress.step()
    times = [float(kit.wall(job, part)) for part in parts]
    return [kit.arrays(job, part) for part in parts], times


def _unfinished(kit: Kit, job: Job, n: int, progress: Progress) -> list[int] | None:
    """The indices of ``job``'s runs not stored yet (``progress`` steps once per stored run);
    None when ``job`` is settled."""
    if not kit.pending(job):
        for _ in range(n):
            progress.step()
        return None
    todo = []
    for i in range(n):
        if kit.done(job, f"run{i}"):
            progress.step()
        else:
            todo.append(i)
    return todo


def finite_outputs(method: str, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``outputs`` unchanged if every value is finite; else the run failed as a divergence.

    Weights can stay finite while logits overflow; such a run is the method's failure, recorded
    like a NaN loss, not a crash of the whole bench.
    """
    bad = [part for part, values in outputs.items() if not np.all(np.isfinite(values))]
    if bad:
        raise TrainingDivergedError(
            f"{method}: the unlearned model's outputs on {', '.join(bad)} are NaN or infinite; "
            f"lower the method's lr or epochs.")
    return outputs
