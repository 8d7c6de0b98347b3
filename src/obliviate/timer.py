"""Run times that small data cannot distort: a warm-up, then the median of repeated runs.

On small data one unlearning run or one retraining takes milliseconds, and the first call in a
process also pays for imports, allocator growth and kernel selection; a single measurement then
decides a runtime cut-off by noise. :func:`timed` runs the function once untimed, then times it
once, and where that run took under ``min_total_s`` repeats it until the runs add up to
``min_total_s`` (at most ``max_runs`` runs), reporting their median. Work a method marks with
:func:`obliviate.timing.untimed` is left out of every run, as :func:`~obliviate.timing.stopwatch`
does.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TypeVar

from obliviate.errors import ConfigError
from obliviate.timing import stopwatch

T = TypeVar("T")


def timed(fn: Callable[[], T], *, warmup: bool = True, min_total_s: float = 1.0,
          max_runs: int = 25) -> tuple[T, float]:
    """``(result, seconds)`` of ``fn()``: the median wall time of repeated runs after a warm-up.

    Args:
        fn: the work to time, called without arguments; it should give the same result each
            call (an unlearning run from a fixed seed does).
        warmup: call ``fn`` once, untimed, before the timed runs.
        min_total_s: repeat until the timed runs add up to this many seconds; a first run
            at least this long is the measurement.
        max_runs: the most timed runs.

    Returns:
        The result of the first timed run, and the median of the runs' seconds (each less its
        :func:`~obliviate.timing.untimed` blocks).

    Example:
        >>> model, seconds = timed(lambda: ob.unlearn(original, forget, retain, method="finetune"))
    """
    if min_total_s < 0 or max_runs < 1:
        raise ConfigError(f"timed needs min_total_s >= 0 and max_runs >= 1; got {min_total_s} "
                          f"and {max_runs}.")
    if warmup:
        fn()
    result, times = None, []
    while not times or (sum(times) < min_total_s and len(times) < max_runs):
        with stopwatch() as watch:
            out = fn()
        if not times:
            result = out
        times.append(watch.seconds)
    return result, float(statistics.median(times))
