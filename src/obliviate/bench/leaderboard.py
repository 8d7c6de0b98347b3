"""The leaderboard: per-method mean and spread over seeds, the retrained model beside them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obliviate.bench.store import ResultStore, atomic_write_text
from obliviate.evaluate.audit import METRICS, SCENARIO_METRICS
from obliviate.evaluate.tasks import all_metric_infos, gap_metrics

REFERENCE_ROWS = ("original", "retrain (reference)")


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


def build_leaderboard(store: ResultStore, jobs: Sequence[Any], *, sort_by: str = "avg_gap",
                      ascending: bool = True) -> pd.DataFrame:
    """One row per method: references first, then methods ranked by ``sort_by`` (mean over seeds).

    Every metric gets a ``NAME`` (mean) and ``NAME_std`` (spread over seeds) column.
    """
    ref_gaps = _reference_gaps(store, jobs)
    records: dict[str, list[dict[str, float]]] = {}
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
        elif job.kind == "retrain" and "MIA" in values:
            values.update({"time_s": run["wall_s"], "time_ratio": 1.0, "avg_gap": 0.0,
                           **{f"{m}_gap": 0.0 for m in gap_metrics(values)}})
        if values.get("over_cutoff"):
            status[job.method] = "over the runtime cut-off: scores 0"
        names += [n for n in values if n not in names]
        records.setdefault(job.method, []).append(values)
    rows = []
    for method in order:
        vals = records.get(method, [])
        row: dict[str, Any] = {"method": method, "seeds": len(vals),
                               "status": status.get(method, "ok")}
        for name in names:
            xs = np.array([v[name] for v in vals if v.get(name) is not None], dtype=float)
            row[name] = float(np.mean(xs)) if xs.size else np.nan
            row[f"{name}_std"] = float(np.std(xs)) if xs.size > 1 else (0.0 if xs.size else np.nan)
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    refs = board[board["method"].isin(REFERENCE_ROWS)]
    rest = board[~board["method"].isin(REFERENCE_ROWS)]
    if sort_by in rest:
        rest = rest.sort_values(sort_by, ascending=ascending, kind="stable", na_position="last")
    return pd.concat([refs, rest], ignore_index=True)


def write_leaderboard(board: pd.DataFrame, out: Path) -> Path:
    path = Path(out) / "leaderboard.csv"
    atomic_write_text(path, board.to_csv(index=False, float_format="%.6g"))
    return path


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
        ])
    infos = METRICS if columns is None else \
        {m: i for m, i in {**all_metric_infos(), **SCENARIO_METRICS}.items() if m in columns}
    lines = [f"{m}: {i.label}; {i.direction}; ideal: {i.ideal}" for m, i in infos.items()]
    lines.append("X_gap: metric - retrain's metric, same seed; ideal: 0")
    lines.append(f"avg_gap: mean |metric - retrain| over {', '.join(gap_metrics(infos))}; "
                 f"lower is better; ideal: 0")
    lines.append("time_ratio: wall time / retrain's training time; lower is better")
    return "\n".join(lines)
