"""The leaderboard in a terminal: the protocol's default columns, whole numbers, one row each.

The columns come from the protocol's spec (those marked ``shown``, or ``--columns`` / ``--wide``);
each cell is the mean over seeds and, when the row has a 95% confidence interval (``NAME_lo``,
``NAME_hi``), ``±`` its half-width. Statuses are short (the failure messages are printed under
the table), so the default table fits 100 columns; ``leaderboard.md`` has the intervals as
``[lo, hi]``.
"""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.table import Table

from obliviate.bench.spec import ProtocolSpec
from obliviate.errors import ConfigError
from obliviate.registry import did_you_mean


def cell(mean: Any, spread: Any, digits: int = 3) -> str:
    """``mean`` alone, or ``mean±spread`` when there is a spread over seeds; ``-`` when absent."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = f"{mean:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    if spread is None or (isinstance(spread, float) and math.isnan(spread)) or \
            round(float(spread), digits) == 0:
        return text
    return f"{text}±{spread:.{digits}f}"


def half_width(row, name: str) -> float | None:
    """Half the width of the row's 95% interval of ``name``, or None without one."""
    lo, hi = row.get(f"{name}_lo"), row.get(f"{name}_hi")
    if lo is None or hi is None or lo != lo or hi != hi:
        return None
    return (float(hi) - float(lo)) / 2


def short_status(status: str) -> str:
    """The table's status: each part without its detail (``failed: ...`` -> ``failed``;
    ``tuned defaults used with ...`` -> ``tuned?``); the full text is printed under the table."""
    if str(status).startswith("failed"):  # the error after it may hold "; " itself
        return "failed"
    parts = [p.strip() for p in str(status).split("; ")]
    return ", ".join("tuned?" if p.startswith("tuned defaults") else p.split(":", 1)[0]
                     for p in parts)


def choose_columns(spec: ProtocolSpec, board, wide: bool = False,
                   names: list[str] | None = None) -> list:
    """The spec's columns to show: ``names`` (checked), all (``wide``) or the default ones."""
    present = [c for c in spec.columns if c.name in board]
    if names:
        known = [c.name for c in present]
        for n in names:
            if n not in known:
                raise ConfigError(f"--columns names '{n}', which this leaderboard does not have. "
                                  f"{did_you_mean(n, known)}Columns here: {', '.join(known)}.")
        return [next(c for c in present if c.name == n) for n in names]
    return present if wide else [c for c in present if c.shown]


def leaderboard_table(board, spec: ProtocolSpec, title: str, columns: list) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    table.add_column("method", no_wrap=True)
    for c in columns:
        table.add_column(f"{c.name}{c.arrow}", justify="right", no_wrap=True)
    table.add_column("status", min_width=6)  # wraps between words, so numbers stay whole
    for _, row in board.iterrows():
        cells = [cell(row.get(c.name), half_width(row, c.name), c.digits) for c in columns]
        style = "bold" if row["method"] == "retrain (reference)" else None
        table.add_row(str(row["method"]), *cells, short_status(row["status"]), style=style)
    return table
