"""The leaderboard as a list of display rows and as Markdown, each metric with its direction."""

from __future__ import annotations

from typing import Any

from obliviate.report.metrics import COLUMNS, Column, fmt_interval
from obliviate.report.rundir import RunDir
from obliviate.report.verdicts import markdown_section

INTERVALS = ("[lo, hi]: 95% confidence interval. Within a seed, for numbers made of many models "
             "and examples (the challenge's F, F_ceiling, F_ratio, score and utility ratios; "
             "U-LiRA's attack metrics; the quick protocol's MIA), a bootstrap over models and "
             "examples (normal, centred on the value); otherwise Student t over seeds, none with "
             "one seed. Wall times get none.")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def columns(run: RunDir) -> list[Column]:
    """The protocol's columns that this run has."""
    return [c for c in COLUMNS.get(run.protocol, []) if c.name in run.board]


def display_rows(run: RunDir) -> list[dict[str, Any]]:
    """One dict per leaderboard row: method, seeds, status and ``mean ± std`` per column."""
    rows = []
    for _, row in run.board.iterrows():
        cells = [fmt_interval(row.get(c.name), row.get(f"{c.name}_lo"), row.get(f"{c.name}_hi"),
                              row.get(f"{c.name}_std"), c.digits) for c in columns(run)]
        rows.append({"method": str(row["method"]), "seeds": int(row.get("seeds", 0)),
                     "status": str(row.get("status", "")), "cells": cells,
                     "reference": str(row["method"]) == "retrain (reference)"})
    return rows


def summary(run: RunDir) -> str:
    bench = run.config.get("bench", {})
    n = f" · N={run.config.get('n_models')}" if run.protocol != "quick" else ""
    return (f"{bench.get('scenario', '?')} · forget {bench.get('forget', '?')} · "
            f"{run.config.get('protocol', run.protocol)}{n} · {bench.get('seeds', '?')} seed(s) "
            f"· mean [95% CI], or mean ± spread (std) over seeds")


def markdown(run: RunDir) -> str:
    """``leaderboard.md``: the table, then what each metric means, its direction and ideal."""
    cols = columns(run)
    head = ["method", *[f"{c.name} {c.arrow}" for c in cols], "seeds", "status"]
    lines = [f"# Leaderboard: {summary(run)}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in display_rows(run):
        name = f"**{r['method']}**" if r["reference"] else r["method"]
        cells = [name, *r["cells"], str(r["seeds"]), _cell(r["status"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "↑ higher is better, ↓ lower is better, ≈ closer to the reference is better.",
              "", "| metric | meaning | better | ideal |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {_cell(c.meaning)} | {c.direction} | {_cell(c.ideal)} |"
              for c in cols]
    lines += ["", INTERVALS, *markdown_section(run)]
    return "\n".join(lines) + "\n"
