"""``obliviate report``: read a finished run directory and write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from obliviate.cli.app import app, console


@app.command()
def report(directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="a run directory written by 'obliviate bench'")]) -> None:
    """Write leaderboard.md, plots/*.png and a self-contained report.html for a run."""
    from obliviate.report import write_report

    written = write_report(directory)
    console.print(f"report: {written.html}, {written.markdown.name}, "
                  f"plots/ ({', '.join(written.plots) or 'none'})")
