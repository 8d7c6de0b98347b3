"""The leaderboard: per-method mean and spread over seeds, the retrained model beside them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obliviate.bench.store import ResultStore, atomic_write_text
from obliviate.evaluate.audit import METRICS, SCENARIO_METRICS
from obliviate.evaluate.collapse import chance_accuracy, collapse_flag
from obliviate.evaluate.intervals import LEVEL, combine_seeds, seed_interval
from obliviate.evaluate.tasks import all_metric_infos, gap_metrics

REFERENCE_ROWS = ("original", "retrain (reference)")
BOOT = "_boot"  # a stored per-seed array NAME_boot holds NAME's bootstrap replicates
UNIT = {"RA", "FA", "TA", "MIA", "F", "F_ceiling", "ASR", "attack_acc", "attack_acc_at_0", "auc",
        "tpr_1pct", "tpr_01pct"}  # in [0, 1]
POSITIVE = {"F_ratio", "score", "RA_ratio", "TA_ratio", "avg_gap"}
UTILITY = ("RA", "TA")  # what collapse_flag checks


def _reference_gaps(store: ResultStore, jobs: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Gaps of each seed's original to that seed's retrained model."""
    by_seed: dict[int, dict[str, dict[str, float]]] = {}
    for job in jobs:
        if job.kind in ("original", "retrain"):
            by_seed.setdefault(job.seed, {})[job.kind] = store.metrics(job.key)
    out = {}
    for job in jobs:
        if job.kind == "original":
            pair = by_seed.get(job.seed, {})
            keys = gap_metrics(pair.get("original", {}))
            if all(m in pair.get(k, {}) for k in ("original", "retrain") for m in keys):
                gaps = {f"{m}_gap": pair["original"][m] - pair["retrain"][m] for m in keys}
                gaps["avg_gap"] = float(np.mean([abs(v) for v in gaps.values()]))
                out[job.key] = gaps
    return out


def _bounds(name: str) -> tuple[float, float]:
    if name in UNIT:
        return 0.0, 1.0
    return (0.0, np.inf) if name in POSITIVE else (-np.inf, np.inf)


def interval_columns(name: str, values: Sequence[float], boots: Sequence[np.ndarray | None],
                     level: float = LEVEL) -> tuple[float, float]:
    """``NAME_lo``, ``NAME_hi`` of a row from its per-seed values and bootstrap replicates.

    With replicates for every seed, the seeds' bootstrap standard errors combined (the noise of
    N models and the examples, given the seeds' originals); with 2+ seeds also Student t over
    seeds (which adds the seed-to-seed variation), and then the hull of the two, so the
    interval speaks for both. Without replicates, t over seeds alone (NaN with one seed).
    Wall times get none: they measure the machine's load. Clipped to the metric's range.
    """
    if name.startswith("time_"):
        return np.nan, np.nan
    lo_hi = _bounds(name)
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
    return float(max(lo, lo_hi[0])), float(min(hi, lo_hi[1]))


def row_collapse(seeds: Sequence[int], values: Sequence[dict[str, float]],
                 runs: Sequence[dict[str, np.ndarray]],
                 originals: dict[int, dict[str, float]], chance: dict[str, float] | None) -> str:
    """A row's collapse text ("" when fine): each seed's RA and TA, and each run's where runs
    are stored (``RA_runs``, ``TA_runs``), against that seed's original (``collapse_flag``)."""
    if not chance:
        return ""
    found = ""
    for seed, vals, arrs in zip(seeds, values, runs, strict=True):
        orig = originals.get(seed)
        if not orig:
            continue
        for metrics, unit in (({m: [vals[m]] for m in UTILITY if m in vals}, "seed"),
                              ({m: arrs[f"{m}_runs"] for m in UTILITY if f"{m}_runs" in arrs},
                               f"seed {seed}, run")):
            flag = collapse_flag(metrics, {m: [orig[m]] for m in metrics if m in orig}, chance,
                                 unit=unit, index=[seed] if unit == "seed" else None)
            if flag.level == "collapsed":
                return flag.reason
            found = found or flag.reason
    return found


def build_leaderboard(store: ResultStore, jobs: Sequence[Any], *, sort_by: str = "avg_gap",
                      ascending: bool = True, chance: dict[str, float] | None = None,
                      notes: dict[str, str] | None = None, level: float = LEVEL) -> pd.DataFrame:
    """One row per method: references first, then methods ranked by ``sort_by`` (mean over seeds).

    Every metric gets a ``NAME`` (mean), ``NAME_std`` (spread over seeds) and ``NAME_lo`` /
    ``NAME_hi`` (its ``level`` confidence interval, see :func:`interval_columns`) column. With
    ``chance`` (chance accuracy of RA and TA) a row whose utility collapsed is flagged in its
    status (:func:`obliviate.evaluate.collapse.collapse_flag`); ``notes`` adds a remark per
    method (e.g. tuned defaults used with another recipe).
    """
    ref_gaps = _reference_gaps(store, jobs)
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
        values.update(ref_gaps.get(job.key, {}))
        if job.kind == "original":
            values.setdefault("time_s", run["wall_s"])
            originals[job.seed] = values
        elif job.kind == "retrain" and "MIA" in values:
            values.update({"time_s": run["wall_s"], "time_ratio": 1.0, "avg_gap": 0.0,
                           **{f"{m}_gap": 0.0 for m in gap_metrics(values)}})
        if values.get("over_cutoff"):
            status[job.method] = "over the runtime cut-off: scores 0"
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
            row[name] = float(np.mean(xs)) if xs.size else np.nan
            row[f"{name}_std"] = float(np.std(xs)) if xs.size > 1 else (0.0 if xs.size else np.nan)
            row[f"{name}_lo"], row[f"{name}_hi"] = interval_columns(
                name, xs, [boots[i].get(name + BOOT) for i in keep], level) if xs.size \
                else (np.nan, np.nan)
        if row["status"] == "ok" or row["status"].startswith("over the runtime"):
            flag = "" if method == "original" else \
                row_collapse(seeds.get(method, []), vals, boots, originals, chance)
            extra = [t for t in (flag, (notes or {}).get(method, "")) if t]
            if extra:
                row["status"] = "; ".join(extra if row["status"] == "ok" else [row["status"],
                                                                              *extra])
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    refs = board[board["method"].isin(REFERENCE_ROWS)]
    rest = board[~board["method"].isin(REFERENCE_ROWS)]
    if sort_by in rest:
        rest = rest.sort_values(sort_by, ascending=ascending, kind="stable", na_position="last")
    return pd.concat([refs, rest], ignore_index=True)


def chance_levels(scenario: Any) -> dict[str, float] | None:
    """Chance accuracy of RA and TA: the majority-class share of the retain and test labels
    (what a model that collapsed onto one class scores); None outside classification."""
    if getattr(scenario, "task", "classification") != "classification":
        return None
    return {"RA": chance_accuracy(scenario.y_retain.numpy()),
            "TA": chance_accuracy(scenario.splits.y_test.numpy())}


def write_leaderboard(board: pd.DataFrame, out: Path) -> Path:
    path = Path(out) / "leaderboard.csv"
    atomic_write_text(path, board.to_csv(index=False, float_format="%.6g"))
    return path


STATISTICS = [
    "[lo, hi] (NAME_lo, NAME_hi in the CSV and JSON): 95% confidence interval; within a seed a "
    "bootstrap over models and examples (challenge, U-LiRA, the quick MIA), over seeds Student "
    "t; none for wall times or a single seed without a bootstrap",
    "status 'collapsed' / 'degraded': RA or TA of some seed (or run) kept under 20% / 50% of the "
    "original's accuracy above chance (the majority-class share)",
]


def legend(protocol: str = "quick", columns: Sequence[str] | None = None) -> str:
    """One line per metric: meaning, direction and ideal (of the ``columns`` shown, if given)."""
    if protocol == "tofu":
        from obliviate.llm.bench import LEGEND

        return LEGEND
    if protocol == "ulira":
        return "\n".join([
            "attack_acc: U-LiRA's best-threshold accuracy at telling a target's unlearned pool "
            "examples from never-trained ones; ideal: retrain's (about 0.5); lower is better",
            "attack_acc_at_0: the same at the fixed threshold 0 of the log likelihood ratio",
            "auc, tpr_1pct, tpr_01pct: ROC AUC and TPR at 1% / 0.1% FPR; ideal: retrain's",
            "TA: mean test accuracy of the unlearned models; time_s: mean run time",
            *STATISTICS,
        ])
    if protocol == "challenge":
        return "\n".join([
            "F: forgetting quality (challenge metric, mean of 2/2^n over forget examples); "
            "higher is better; ideal: the ceiling",
            "F_ratio: F / ceiling, where the ceiling is F of N retrained models against N other "
            "retrained models; ideal: 1",
            "score: F x RA_ratio x TA_ratio (0 when over the runtime cut-off); higher is better",
            "RA_ratio, TA_ratio: mean accuracy / the retrained models' mean; ideal: 1 or above",
            "FA: mean forget accuracy; time_ratio: mean run time / retrain time (cut-off 0.2 "
            "unless set)",
            *STATISTICS,
        ])
    infos = METRICS if columns is None else \
        {m: i for m, i in {**all_metric_infos(), **SCENARIO_METRICS}.items() if m in columns}
    lines = [f"{m}: {i.label}; {i.direction}; ideal: {i.ideal}" for m, i in infos.items()]
    lines.append("X_gap: metric - retrain's metric, same seed; ideal: 0")
    lines.append(f"avg_gap: mean |metric - retrain| over {', '.join(gap_metrics(infos))}; "
                 f"lower is better; ideal: 0")
    lines.append("time_ratio: wall time / retrain's training time; lower is better")
    return "\n".join([*lines, *STATISTICS])
