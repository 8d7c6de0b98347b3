"""The collapse rule: a run whose utility falls near chance, or far below the original's.

A tuned learning rate used with another recipe, or a chaotic method (gradient ascent), can leave
a model at chance on some seeds while the mean over seeds still looks like a result; the bench
flags such rows in their status (rule in :func:`collapse_flag`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from obliviate.errors import ConfigError, DataError

NEAR_CHANCE = 0.2  # keeps under a fifth of the original's accuracy above chance
FAR_BELOW = 0.5  # keeps under half of it


@dataclass(frozen=True)
class Collapse:
    """The collapse verdict of one row.

    Attributes:
        level: "ok", "degraded" (far below the original) or "collapsed" (near chance).
        reason: One line naming the metric, the seed or run and the values; "" when ok.
    """

    level: str
    reason: str = ""

    @property
    def flagged(self) -> bool:
        return self.level != "ok"


def collapse_flag(metrics: Mapping[str, Sequence[float]],
                  original_metrics: Mapping[str, Sequence[float]],
                  chance: Mapping[str, float] | None = None, *, num_classes: int | None = None,
                  near_chance: float = NEAR_CHANCE, far_below: float = FAR_BELOW,
                  unit: str = "seed", index: Sequence[int] | None = None) -> Collapse:
    """Flag utility near chance or far below the original's.

    Rule, for each utility metric m given (RA and TA; FA is meant to fall) and each seed (or
    run) i: with c the chance accuracy of m and o_i the original's value in the same seed, the
    retained share of the original's margin over chance is q_i = (m_i - c) / (o_i - c).
    "collapsed" if some q_i < ``near_chance`` (0.2: e.g. on digits, c ~ 0.1, o ~ 0.99, an
    accuracy under ~0.28), else "degraded" if some q_i < ``far_below`` (0.5: under ~0.54).
    A seed whose original is itself within 0.05 of chance is skipped (no margin to lose).
    Any seed counts, not the mean: one seed at chance is a collapse even if others are fine.

    Args:
        metrics: Per metric, the row's values per seed (or per run).
        original_metrics: Per metric, the original model's values, one per seed, or one value
            for all.
        chance: Per metric, the chance accuracy, e.g. the majority-class share of the retain
            (RA) and test (TA) labels; default ``1 / num_classes`` for every metric.
        num_classes: Used when ``chance`` does not give a metric.
        near_chance, far_below: The two thresholds on q.
        unit, index: How the reason names a value: "{unit} {index[i]}" (default index i).

    Raises:
        ConfigError: If neither ``chance`` nor ``num_classes`` gives a metric's chance level.
    """
    worst: tuple[float, str] | None = None
    for name, values in metrics.items():
        if name not in original_metrics:
            continue
        c = (chance or {}).get(name)
        if c is None:
            if not num_classes:
                raise ConfigError(f"collapse_flag needs the chance level of {name}; pass chance= "
                                  f"or num_classes=.")
            c = 1.0 / num_classes
        v = np.asarray(values, np.float64).ravel()
        o = np.broadcast_to(np.asarray(original_metrics[name], np.float64).ravel(), v.shape) \
            if np.size(original_metrics[name]) in (1, v.size) else None
        if o is None:
            raise DataError(f"{name}: {v.size} values but {np.size(original_metrics[name])} "
                            "original values; pass one per seed or one for all.")
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(o - c > 0.05, (v - c) / (o - c), np.inf)
        q = np.where(np.isnan(v), np.inf, q)
        if q.size and (worst is None or q.min() < worst[0]):
            i = int(np.argmin(q))
            label = index[i] if index is not None else i
            worst = (float(q[i]), f"{name} {v[i]:.3f} at {unit} {label} (original {o[i]:.3f}, "
                                  f"chance {c:.3f})")
    if worst is None or worst[0] >= far_below:
        return Collapse("ok")
    if worst[0] < near_chance:
        return Collapse("collapsed", f"collapsed: {worst[1]}, near chance")
    return Collapse("degraded", f"degraded: {worst[1]}, under half the original's margin "
                                "over chance")


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent label (chance for a collapsed model)."""
    y = np.asarray(labels).ravel()
    if y.size == 0:
        return math.nan
    return float(np.unique(y, return_counts=True)[1].max() / y.size)
