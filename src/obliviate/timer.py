"""Wall time of a piece of work that can be trusted at any size.

A run of a few milliseconds is dominated by first-call costs (lazy kernel set-up, allocator
warm-up) and timer noise, so its single wall time says little; the runtime cut-off compares
such times. :func:`timed` keeps the first run's result and, when that run took under
``min_seconds``, times ``repeats`` further runs (warm) and reports their median.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T], *, min_seconds: float = 1.0, repeats: int = 3
          ) -> tuple[T, float]:
    """``(fn(), seconds)``: the first call's result, and its time, or the median of ``repeats``
    warm calls when the first took under ``min_seconds``.

    ``fn`` must be repeatable (the same seed gives the same work); the repeats' results are
    discarded.

    Example:
        >>> result, seconds = timed(lambda: sum(range(1000)))
    """
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    if seconds >= min_seconds or repeats < 1:
        return result, seconds
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)
