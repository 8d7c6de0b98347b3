"""The leaderboard as a list of display rows and as Markdown, each metric with its direction."""

from __future__ import annotations

from typing import Any

from obliviate.bench.spec import Column
from obliviate.report.rundir import RunDir


def fmt(mean: float | None, std: float | None, digits: int = 3) -> str:
    """``mean ± std`` ("-" when missing; the mean alone when the spread rounds to 0)."""
    if mean is None or mean != mean:
        return "-"
    text = f"{mean:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]  # no "-0.000"
    if std is None or std != std or round(std, digits) == 0:  # no spread at this precision
        return text
    return f"{text} ± {std:.{digits}f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def columns(run: RunDir) -> list[Column]:
    """The protocol's columns that this run has."""
    return [c for c in run.spec.columns if c.name in run.board]


def display_rows(run: RunDir) -> list[dict[str, Any]]:
    """One dict per leaderboard row: method, seeds, status and ``mean ± std`` per column."""
    rows = []
    for _, row in run.board.iterrows():
        cells = [fmt(row.get(c.name), row.get(f"{c.name}_std"), c.digits) for c in columns(run)]
        rows.append({"method": str(row["method"]), "seeds": int(row.get("seeds", 0)),
                     "status": str(row.get("status", "")), "cells": cells,
                     "reference": str(row["method"]) == "retrain (reference)"})
    return rows


def summary(run: RunDir) -> str:
    bench, spec = run.config.get("bench", {}), run.spec
    n = f" · N={run.config.get('n_models')}" if spec.default_models else ""
    forget = run.config.get("scenario", {}).get("forget", bench.get("forget", "?"))
    seeds = len(run.config.get("seeds", [])) or bench.get("seeds", "?")
    return (f"{bench.get('scenario', '?')} · forget {forget} · {spec.name} (version "
            f"{spec.version}){n} · {seeds} seed(s) · mean ± spread (std) over seeds")


def decided(run: RunDir) -> list[str]:
    """Which rows a flag decided, in words (e.g. the runtime cut-off zeroed their score)."""
    out = []
    for flag in run.spec.flags:
        hit = [str(r["method"]) for _, r in run.board.iterrows() if r.get("status") == flag.status]
        if hit:
            out.append(f"'{flag.status}' decided the row of {', '.join(hit)}: {flag.meaning}")
    return out


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
    lines += ["", *[f"- status '{f.status}': {f.meaning}" for f in run.spec.flags],
              *[f"- {note}" for note in run.spec.notes]]
    lines += [f"- {line}" for line in decided(run)]
    lines += [f"- note: {note}" for note in run.config.get("notes", [])]
    return "\n".join(lines) + "\n"
