"""Wall time of a piece of work that can be trusted at any size.

A run of a few milliseconds is dominated by first-call costs (imports, lazy kernel set-up,
allocator warm-up) and timer noise, so its single wall time says little; the runtime cut-off
compares such times. :func:`timed` keeps the first run's result; when that run took under
``min_total_s`` it counts as a warm-up, and further runs are timed until they add up to
``min_total_s`` (at most ``max_runs`` of them), reporting their median.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from obliviate.errors import ConfigError

T = TypeVar("T")


def timed(fn: Callable[[], T], *, warmup: bool = True, min_total_s: float = 1.0,
          max_runs: int = 3) -> tuple[T, float]:
    """``(result, seconds)``: ``fn()``'s first result, and the median time of warm runs.

    Args:
        fn: the work, called without arguments. It must be repeatable (the same seed gives the
            same work); the repeats' results are discarded.
        warmup: whether the first call is a warm-up, left out of the median when it took under
            ``min_total_s`` (a first call that long is the measurement, as is).
        min_total_s: time more runs until the timed ones add up to this many seconds.
        max_runs: the most timed runs besides the first call.

    Returns:
        The first call's result, and its time when it took at least ``min_total_s``; otherwise
        the median over the first call (unless ``warmup``) and the runs after it.

    Example:
        >>> result, seconds = timed(lambda: sum(range(1000)))
    """
    if min_total_s < 0 or max_runs < 1:
        raise ConfigError(f"timed needs min_total_s >= 0 and max_runs >= 1; got {min_total_s} "
                          f"and {max_runs}.")
    result, first = _once(fn)
    if first >= min_total_s:
        return result, first
    times = [] if warmup else [first]
    while not times or (sum(times) < min_total_s and len(times) < max_runs + (not warmup)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return result, float(statistics.median(times))


def timed_mean(fn: Callable[[], T], *, repeats: int = 3,
               clock: Callable[[], float] = time.perf_counter) -> tuple[T, float]:
    """``(result, seconds)``: the time of ``fn()`` as the challenge's N runs are timed.

    The first call is a warm-up (its result is kept), then ``repeats`` calls are timed once
    each and averaged, as the N runs' single warm calls are averaged (:func:`timed_warm_once`):
    a reference timed this way and a method that does the same work read a time ratio of 1 up
    to noise. It costs ``repeats + 1`` calls at any size. ``clock``: wall time by default;
    ``time.process_time`` gives this process's CPU seconds (:func:`obliviate.tune.tune`).
    """
    if repeats < 1:
        raise ConfigError(f"timed_mean needs repeats >= 1; got {repeats}.")
    result, _ = _once(fn, clock)
    return result, float(statistics.fmean(_once(fn, clock)[1] for _ in range(repeats)))


def _once(fn: Callable[[], T], clock: Callable[[], float] = time.perf_counter) -> tuple[T, float]:
    start = clock()
    result = fn()
    return result, clock() - start


_WARM: set[Hashable] = set()  # the keys :func:`timed_warm_once` has warmed up in this process


def timed_warm_once(key: Hashable, fn: Callable[[], T]) -> tuple[T, float]:
    """:func:`timed` for the first call with ``key`` in this process, then one timed call.

    For many runs of the same work whose times are averaged (the challenge protocol's N
    unlearning runs): the first-call costs are paid once per process and method, and the mean
    over the runs does what the repeats do for a single run, at a quarter of the cost.
    """
    if key in _WARM:
        start = time.perf_counter()
        result = fn()
        return result, time.perf_counter() - start
    out = timed(fn)
    _WARM.add(key)
    return out
