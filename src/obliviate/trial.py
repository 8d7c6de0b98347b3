"""One setting's results in a tuning sweep: what :mod:`obliviate.tune` (classifiers) and
:mod:`obliviate.tune_lm` (language models) both return per grid point."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trial:
    """One setting's results, averaged over the seeds (``per_seed`` holds each seed's).

    ``setting`` is the grid point as given (``lr_scale`` included); ``overrides`` the method
    parameters it stands for. ``diverged``: the error of a run whose loss became non-finite (the
    setting then scores 0 and its metrics are NaN), else None.
    """

    setting: dict[str, Any]
    overrides: dict[str, Any]
    score: float
    F: float
    RA_ratio: float
    VA_ratio: float
    time_ratio: float
    over_cutoff: bool
    per_seed: list[dict[str, float]] = field(default_factory=list)
    diverged: str | None = None
