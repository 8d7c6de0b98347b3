"""The leaderboard: per-method mean and spread over seeds, the reference rows first.

The table is generic: each job's stored metrics, averaged over seeds, rows ranked as the
protocol's spec says and statuses set by its flags. Whatever a protocol wants in a row (gaps to
retrain, ratios, verdicts) its driver stores with the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obliviate.bench.spec import REFERENCE_ROWS, ProtocolSpec
from obliviate.bench.store import ResultStore, atomic_write_text


def build_leaderboard(store: ResultStore, jobs: Sequence[Any], spec: ProtocolSpec
                      ) -> pd.DataFrame:
    """One row per method: references first, then methods ranked by the spec's ranking column.

    Every metric gets a ``NAME`` (mean over seeds) and ``NAME_std`` (spread) column; ``status``
    is ``ok``, ``incomplete``, ``failed: ...`` or the status of a spec flag set on any seed.
    """
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
        for flag in spec.flags:
            if values.get(flag.metric) and not status.get(job.method, "").startswith("failed"):
                status[job.method] = flag.status
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
    sort_by = spec.ranking[0]
    if sort_by in rest:
        rest = rest.sort_values(sort_by, ascending=spec.ascending, kind="stable",
                                na_position="last")
    return pd.concat([refs, rest], ignore_index=True)


def write_leaderboard(board: pd.DataFrame, out: Path) -> Path:
    path = Path(out) / "leaderboard.csv"
    atomic_write_text(path, board.to_csv(index=False, float_format="%.6g"))
    return path
