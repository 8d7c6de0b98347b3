"""The leaderboard in a terminal: the protocol's default columns, whole numbers, one row each.

The columns come from the protocol's spec (those marked ``shown``, or ``--columns`` / ``--wide``);
each cell is the mean over seeds and, when the row has a 95% confidence interval (``NAME_lo``,
``NAME_hi``), ``±`` its half-width. Statuses are short (the failure messages are printed under
the table), so the default table fits 100 columns; ``leaderboard.md`` has the intervals as
``[lo, hi]``.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
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


EDGES = 2  # SIMPLE_HEAD's left and right edge
GAP = 2  # between two columns


def fold_header(name: str, width: int) -> str:
    """``name`` broken after underscores into lines of at most ``width`` characters, where it
    can be (``forget_quality↑`` -> ``forget_`` / ``quality↑``); a piece longer stays whole."""
    pieces = [p + "_" for p in name.split("_")[:-1]] + [name.split("_")[-1]]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def _wrap(text: str, width: int, hyphens: bool) -> str:
    """``text`` wrapped between words (and after hyphens); a longer word is folded."""
    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=hyphens)) or str(text)


def _min_wrap(texts, hyphens: bool) -> int:
    """The narrowest width at which every text wraps without folding a word."""
    words = (w for t in texts for w in (re.split(r"(?<=-)|\s+", str(t)) if hyphens
                                        else str(t).split()))
    return max(map(len, words), default=0)


@dataclass
class Layout:
    """How the leaderboard fits a width: see :func:`fit`."""

    columns: list  # the number columns shown
    headers: dict[str, str]  # their headers, folded at underscores where needed
    split: bool  # each number on two lines: the mean, then ``±`` the half-width
    method: int | None  # widths of the method and status columns (None: natural)
    status: int | None
    left_out: list = field(default_factory=list)  # columns that did not fit at all


def fit(board, columns: list, width: int | None) -> Layout:
    """Lay out the leaderboard's ``columns`` in ``width`` characters, losing nothing it can keep.

    Numbers are never cut. Steps, each taken only when the table is still too wide: the
    method and status columns wrap between words (and after hyphens); number headers fold at
    underscores; each cell puts its ``±half-width`` on a second line under its mean; and
    last, number columns are left out from the right (``--wide``/``--columns`` and the
    files still hold them). The status column is never left out.
    """
    names = [str(m) for m in board["method"]]
    statuses = [short_status(s) for s in board["status"]]
    cells = {c.name: [cell(row.get(c.name), half_width(row, c.name), c.digits)
                      for _, row in board.iterrows()] for c in columns}
    heads = {c.name: f"{c.name}{c.arrow}" for c in columns}
    natural = (max(map(len, [*names, "method"])), max(map(len, [*statuses, "status"])))
    narrow = (max(_min_wrap(names, True), 6), max(_min_wrap(statuses, False), 6))
    if width is None:
        return Layout(list(columns), heads, False, None, None)

    def need(c, fold: bool, split: bool) -> tuple[int, str]:
        parts = [p for t in cells[c.name] for p in (t.replace("±", "\n±").split("\n")
                                                   if split else [t])]
        wide = max(map(len, parts), default=1)
        head = fold_header(heads[c.name], wide) if fold and len(heads[c.name]) > wide \
            else heads[c.name]
        return max(wide, *map(len, head.split("\n"))), head

    for fold, split in ((False, False), (True, False), (True, True)):
        kept = list(columns)
        while True:
            sizes = {c.name: need(c, fold, split) for c in kept}
            numbers = sum(n + GAP for n, _ in sizes.values())
            free = width - EDGES - GAP - numbers - narrow[0] - narrow[1]
            if free >= 0 or not split or not kept:
                break
            kept.pop()  # the last resort, on the last step
        if free >= 0:
            break
    method = min(natural[0], narrow[0] + max(free, 0))
    status = min(natural[1], narrow[1] + max(free, 0) - (method - narrow[0]))
    return Layout(kept, {n: h for n, (_, h) in sizes.items()}, split, method, status,
                  [c for c in columns if c not in kept])


def leaderboard_table(board, spec: ProtocolSpec, title: str, columns: list,
                      width: int | None = None) -> Table:
    """The leaderboard as a Rich table, laid out by :func:`fit` to ``width`` characters when
    given (``fit(...).left_out`` names the columns that could not be shown)."""
    layout = fit(board, columns, width)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    table.add_column("method", width=layout.method, overflow="fold")
    for c in layout.columns:
        table.add_column(layout.headers[c.name], justify="right", no_wrap=True,
                         overflow="fold")
    table.add_column("status", min_width=6, width=layout.status, overflow="fold")
    for _, row in board.iterrows():
        cells = [cell(row.get(c.name), half_width(row, c.name), c.digits)
                 for c in layout.columns]
        if layout.split:
            cells = [t.replace("±", "\n±") for t in cells]
        method, status = str(row["method"]), short_status(row["status"])
        if layout.method is not None:
            method = _wrap(method, layout.method, hyphens=True)
            status = _wrap(status, layout.status, hyphens=False)
        style = "bold" if row["method"] == "retrain (reference)" else None
        table.add_row(method, *cells, status, style=style)
    return table
