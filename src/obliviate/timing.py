"""Wall-clock timing of unlearning runs, with a way for a method to leave set-up work out.

Methods that guarantee forgetting by construction (SISA, certified removal, DP-SGD) train their
own model on the full training set before any deletion request arrives; in production that is
the original's training, paid once. A method wraps that work in :func:`untimed`, and the bench's
:func:`stopwatch` subtracts it, so the time a protocol reports is the deletion's alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_ACTIVE: list[Stopwatch] = []


@dataclass
class Stopwatch:
    """Seconds between start and stop, less every :func:`untimed` block run in between."""

    start: float = 0.0
    excluded: float = 0.0
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time a block; ``watch.seconds`` holds its wall time minus its untimed parts."""
    watch = Stopwatch(start=time.perf_counter())
    _ACTIVE.append(watch)
    try:
        yield watch
    finally:
        _ACTIVE.remove(watch)
        watch.seconds = time.perf_counter() - watch.start - watch.excluded


@contextmanager
def untimed() -> Iterator[None]:
    """Leave this block's wall time out of every running :func:`stopwatch`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        spent = time.perf_counter() - start
        for watch in _ACTIVE:
            watch.excluded += spent
