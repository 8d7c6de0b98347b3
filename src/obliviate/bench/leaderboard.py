"""The leaderboard: per-method mean, spread and confidence interval over seeds, references first.

The table is generic: each job's stored metrics, averaged over seeds, rows ranked as the
protocol's spec says and statuses set by its flags. Whatever a protocol wants in a row (gaps to
retrain, ratios, verdicts) its driver stores with the job; a driver that stores bootstrap
replicates (``NAME_boot``) gives its columns intervals that include the noise of the models and
examples, not only the spread over seeds. A row whose utility (the spec's ``utility`` columns)
fell near chance or far below the original's is flagged in its status
(:func:`obliviate.evaluate.collapse.collapse_flag`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obliviate.bench.spec import REFERENCE_ROWS, ProtocolSpec
from obliviate.bench.store import ResultStore, atomic_write_text
from obliviate.evaluate.collapse import chance_accuracy, collapse_flag
from obliviate.evaluate.intervals import LEVEL, combine_seeds, seed_interval

NOOP_METRICS = ("RA", "FA", "TA")
CHANCE_MARGIN = 0.05  # collapse_flag skips an original this close to chance
BOOT = "_boot"  # a stored per-seed array NAME_boot holds NAME's bootstrap replicates


def interval_columns(name: str, values: Sequence[float], boots: Sequence[np.ndarray | None],
                     bounds: tuple[float, float] = (-np.inf, np.inf), level: float = LEVEL
                     ) -> tuple[float, float]:
    """``NAME_lo``, ``NAME_hi`` of a row from its per-seed values and bootstrap replicates.

    With replicates for every seed, the seeds' bootstrap standard errors combined (the noise of
    N models and the examples, given the seeds' originals); with 2+ seeds also Student t over
    seeds (which adds the seed-to-seed variation), and then the hull of the two, so the
    interval speaks for both. Without replicates, t over seeds alone (NaN with one seed).
    Wall times get none: they measure the machine's load. Clipped to ``bounds``.
    """
    if name.startswith("time_"):
        return np.nan, np.nan
    _, lo, hi = seed_interval(values, level)
    if boots and all(b is not None and b.size > 1 for b in boots):
        ses = [float(np.nanstd(b, ddof=1)) for b in boots]
        _, b_lo, b_hi = combine_seeds(values, ses, level)
        if len(values) < 2 or np.isnan(lo):
            lo, hi = b_lo, b_hi
        elif not np.isnan(b_lo):
            lo, hi = min(lo, b_lo), max(hi, b_hi)
    if np.isnan(lo) or np.isnan(hi):
        return np.nan, np.nan
    return float(max(lo, bounds[0])), float(min(hi, bounds[1]))


def row_collapse(utility: Sequence[str], seeds: Sequence[int], values: Sequence[dict],
                 runs: Sequence[dict[str, np.ndarray]], originals: dict[int, dict[str, float]],
                 chance: dict[str, float] | None) -> str:
    """A row's collapse text ("" when fine): each seed's utility metrics, and each run's where
    runs are stored (``RA_runs``, ``TA_runs``), against that seed's original."""
    if not chance or not utility:
        return ""
    found = ""
    for seed, vals, arrs in zip(seeds, values, runs, strict=True):
        orig = originals.get(seed)
        if not orig:
            continue
        for metrics, unit in (({m: [vals[m]] for m in utility if m in vals}, "seed"),
                              ({m: arrs[f"{m}_runs"] for m in utility if f"{m}_runs" in arrs},
                               f"seed {seed}, run")):
            flag = collapse_flag(metrics, {m: [orig[m]] for m in metrics if m in orig}, chance,
                                 unit=unit, index=[seed] if unit == "seed" else None)
            if flag.level == "collapsed":
                return flag.reason
            found = found or flag.reason
    return found


def row_noop(seeds: Sequence[int], values: Sequence[dict],
             originals: dict[int, dict[str, float]]) -> str:
    """``no-op: ...`` when the row's RA, FA and TA (those stored, at least two) equal the
    original's in every seed: the method returned the model as it was (or nearly so)."""
    same: list[str] = []
    for seed, vals in zip(seeds, values, strict=True):
        orig = originals.get(seed)
        keys = [m for m in NOOP_METRICS if m in vals and m in (orig or {})]
        if len(keys) < 2 or any(abs(vals[m] - orig[m]) > 1e-12 for m in keys):
            return ""
        same = keys
    return (f"no-op: {', '.join(same)} identical to the original's on every seed; raise the "
            f"method's lr or epochs (or calibrate it)") if same else ""


def near_chance(utility: Sequence[str], row: dict[str, Any],
                chance: dict[str, float] | None) -> str:
    """``near chance: ...`` for a reference row whose utility is itself within 0.05 of chance:
    the methods below it cannot be judged against it."""
    for m in utility:
        value, c = row.get(m), (chance or {}).get(m)
        if value is not None and c is not None and not np.isnan(value) \
                and value - c < CHANCE_MARGIN:
            return (f"near chance: {m} {value:.3f} (chance {c:.3f}); this reference learnt "
                    f"nothing, so no method is judged against it: train it longer or check "
                    f"the model's eval mode (BatchNorm statistics)")
    return ""


UTILITY_TERMS = ("prob", "rouge", "truth_ratio")


def zero_utility(row: dict[str, Any]) -> str:
    """``model utility 0: ...`` naming the terms at 0 in a language-model row whose
    ``model_utility`` (a harmonic mean, 0 when any term is) is 0; "" otherwise."""
    if row.get("model_utility") != 0:
        return ""
    zero = [f"{s}_{t}" for s in ("retain", "world", "real") for t in UTILITY_TERMS
            if row.get(f"{s}_{t}") is not None and row[f"{s}_{t}"] <= 0]
    if not zero:
        return ""
    return (f"model utility 0 because {', '.join(zero)} = 0 (the harmonic mean is 0 when any "
            f"term is; a ROUGE of 0 means the model never answers those questions in the "
            f"reference's words, e.g. real authors it was never taught)")


def build_leaderboard(store: ResultStore, jobs: Sequence[Any], spec: ProtocolSpec, *,
                      chance: dict[str, float] | None = None,
                      notes: dict[str, str] | None = None, level: float = LEVEL
                      ) -> pd.DataFrame:
    """One row per method: references first, then methods ranked by the spec's ranking column.

    Every metric gets a ``NAME`` (mean over seeds), ``NAME_std`` (spread) and ``NAME_lo`` /
    ``NAME_hi`` (its ``level`` confidence interval, :func:`interval_columns`) column.
    ``status`` is ``ok``, ``incomplete``, ``failed: ...``, the status of a spec flag set on any
    seed, and/or ``collapsed: ...`` / ``degraded: ...`` (with ``chance``, the chance accuracy of
    the spec's utility columns), ``no-op: ...`` (RA, FA, TA equal to the original's in every
    seed), or, on a reference row, ``near chance: ...`` (that reference is itself within 0.05
    of chance; methods are not judged against it); ``notes`` adds a remark per method (e.g. tuned defaults used
    with another recipe).
    """
    records: dict[str, list[dict[str, float]]] = {}
    arrays: dict[str, list[dict[str, np.ndarray]]] = {}
    seeds: dict[str, list[int]] = {}
    originals: dict[int, dict[str, float]] = {}
    status: dict[str, str] = {}
    order: list[str] = []
    names: list[str] = []
    for job in jobs:
        if job.method not in order:
            order.append(job.method)
        run = store.run(job.key)
        if run is None:
            status.setdefault(job.method, "incomplete")
            continue
        if run["status"] != "done":
            status[job.method] = f"failed: {run['error']}"
            continue
        values = store.metrics(job.key)
        if job.kind == "original":
            originals[job.seed] = values
        for flag in spec.flags:
            if values.get(flag.metric) and not status.get(job.method, "").startswith("failed"):
                status[job.method] = flag.status
        names += [n for n in values if n not in names]
        records.setdefault(job.method, []).append(values)
        arrays.setdefault(job.method, []).append(
            {k: v for k, v in store.arrays(job.key).items()
             if k.endswith(BOOT) or k.endswith("_runs")})
        seeds.setdefault(job.method, []).append(job.seed)
    rows = []
    for method in order:
        vals = records.get(method, [])
        boots = arrays.get(method, [])
        row: dict[str, Any] = {"method": method, "seeds": len(vals),
                               "status": status.get(method, "ok")}
        for name in names:
            keep = [i for i, v in enumerate(vals) if v.get(name) is not None]
            xs = np.array([vals[i][name] for i in keep], dtype=float)
            column = spec.column(name)
            bounds = column.bounds if column is not None else (-np.inf, np.inf)
            row[name] = float(np.mean(xs)) if xs.size else np.nan
            row[f"{name}_std"] = float(np.std(xs)) if xs.size > 1 else (0.0 if xs.size else np.nan)
            row[f"{name}_lo"], row[f"{name}_hi"] = interval_columns(
                name, xs, [boots[i].get(name + BOOT) for i in keep], bounds, level) \
                if xs.size else (np.nan, np.nan)
        if not row["status"].startswith(("failed", "incomplete")):
            flag = near_chance(spec.utility, row, chance) if method in REFERENCE_ROWS else ""
            if not flag and method != "original":
                flag = row_collapse(spec.utility, seeds.get(method, []), vals, boots,
                                    originals, chance)
            if not flag and method not in REFERENCE_ROWS:
                flag = row_noop(seeds.get(method, []), vals, originals)
            flag = "; ".join(t for t in (flag, zero_utility(row)) if t)
            extra = [t for t in (flag, (notes or {}).get(method, "")) if t]
            if extra:
                row["status"] = "; ".join(extra if row["status"] == "ok" else
                                          [row["status"], *extra])
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    refs = board[board["method"].isin(REFERENCE_ROWS)]
    rest = board[~board["method"].isin(REFERENCE_ROWS)]
    sort_by = spec.ranking[0]
    if sort_by in rest:
        rest = rest.sort_values(sort_by, ascending=spec.ascending, kind="stable",
                                na_position="last")
    return pd.concat([refs, rest], ignore_index=True)


def chance_levels(scenario: Any) -> dict[str, float] | None:
    """Chance accuracy of RA and TA: the majority-class share of the retain and test labels
    (what a model that collapsed onto one class scores); None outside classification."""
    if scenario.task != "classification":
        return None
    return {"RA": chance_accuracy(scenario.y_retain.numpy()),
            "TA": chance_accuracy(scenario.splits.y_test.numpy())}


def write_leaderboard(board: pd.DataFrame, out: Path) -> Path:
    path = Path(out) / "leaderboard.csv"
    atomic_write_text(path, board.to_csv(index=False, float_format="%.6g"))
    return path
