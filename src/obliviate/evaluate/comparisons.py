"""Paired comparisons: which rows are statistically indistinguishable from the best and retrain.

* With bootstrap replicates drawn on the same resamples for every row (the drivers share one set
  of draws per seed, :mod:`obliviate.evaluate.intervals`): a paired bootstrap z-test, the
  difference of the two estimates over the standard deviation of the paired replicate
  differences, two-sided against the normal.
* With per-seed values: a paired t-test over seeds (scipy ``ttest_rel``); seeds share their
  original and references across rows, so differences are paired by seed.
* Holm's step-down correction over the methods compared, family-wise error ``alpha`` (0.05),
  separately for "vs the best" and "vs retrain". A method is "indistinguishable" when its
  Holm-adjusted p-value is above ``alpha``: the data do not show it differs, which is weaker
  than showing it is equal.

References:
    Holm, "A simple sequentially rejective multiple test procedure", Scandinavian Journal of
    Statistics 6 (1979); Efron and Tibshirani, "An Introduction to the Bootstrap" (1993), ch. 16.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from obliviate.errors import ConfigError

ALPHA = 0.05


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m, running = order.size, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_p_value(a: np.ndarray, b: np.ndarray, *, kind: str, diff: float | None = None
                   ) -> float:
    """Two-sided p-value of "a and b are equal", from paired draws.

    ``kind="bootstrap"``: ``a``, ``b`` are replicates on the same resamples; z = ``diff`` (the
    difference of the estimates) / sd(a - b). ``kind="seeds"``: per-seed values; paired t-test
    (scipy ``ttest_rel``), NaN under 2 seeds.
    """
    from scipy import stats  # here, not at the top: scipy.stats costs a second at CLI start

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if kind == "seeds":
        if a.size < 2:
            return math.nan
        d = a - b
        if np.all(d == d[0]):
            return 1.0 if d[0] == 0 else 0.0
        return float(stats.ttest_rel(a, b).pvalue)
    if kind != "bootstrap":
        raise ConfigError(f"kind must be 'bootstrap' or 'seeds', got {kind!r}.")
    if a.size < 2:
        return math.nan
    d = float(np.mean(a - b)) if diff is None else float(diff)
    sd = float(np.std(a - b, ddof=1))
    if sd == 0:
        return 1.0 if d == 0 else 0.0
    return float(2 * stats.norm.sf(abs(d) / sd))


@dataclass(frozen=True)
class Verdict:
    """One method against the best one or against retrain.

    Attributes:
        method, against: The two rows compared.
        difference: ``method - against`` on the compared metric.
        p_value: Unadjusted two-sided p-value; ``p_holm``: Holm-adjusted within its family.
        indistinguishable: ``p_holm > alpha`` (False when untestable, see ``p_value`` NaN).
    """

    method: str
    against: str
    difference: float
    p_value: float
    p_holm: float
    indistinguishable: bool


def paired_comparison(estimates: Mapping[str, float], draws: Mapping[str, np.ndarray], *,
                      higher_is_better: bool, kind: str, reference: str | None = None,
                      candidates: Sequence[str] | None = None, alpha: float = ALPHA
                      ) -> dict[str, list[Verdict]]:
    """Which methods are statistically indistinguishable from the best one and from retrain.

    Args:
        estimates: Each row's value of the compared metric (the protocol's ranking metric).
        draws: Each row's paired draws: bootstrap replicates on shared resamples
            (``kind="bootstrap"``) or per-seed values in seed order (``kind="seeds"``).
        higher_is_better: Direction of the metric.
        kind: "bootstrap" (paired bootstrap z-test) or "seeds" (paired t-test over seeds).
        reference: The retrain row; None skips "vs retrain".
        candidates: Rows that compete for "best" and are tested (default: every row with draws
            except ``reference``).
        alpha: Family-wise error rate of each family after Holm's correction.

    Returns:
        ``{"best": [...], "reference": [...]}``: one :class:`Verdict` per candidate other than
        the best (vs best) and per candidate (vs reference).
    """
    names = [m for m in (candidates if candidates is not None else draws)
             if m != reference and m in draws and math.isfinite(estimates.get(m, math.nan))]
    out: dict[str, list[Verdict]] = {"best": [], "reference": []}
    if not names:
        return out
    sign = 1.0 if higher_is_better else -1.0
    best = max(names, key=lambda m: sign * estimates[m])

    def family(pairs: list[tuple[str, str]]) -> list[Verdict]:
        diffs = [estimates[m] - estimates[o] for m, o in pairs]
        ps = [paired_p_value(draws[m], draws[o], kind=kind, diff=d)
              for (m, o), d in zip(pairs, diffs, strict=True)]
        adj = holm(ps)
        return [Verdict(m, o, float(d), float(p), float(q), bool(q > alpha))
                for (m, o), d, p, q in zip(pairs, diffs, ps, adj, strict=True)]

    out["best"] = family([(m, best) for m in names if m != best])
    if reference is not None and reference in draws and reference in estimates:
        out["reference"] = family([(m, reference) for m in names])
    return out
