"""Reports of a finished bench: ``leaderboard.md``, ``plots/*.png`` and ``report.html``.

Everything is read from the run directory alone (``config.json``, ``leaderboard.csv``,
``results.sqlite``), so a report can be written anywhere the directory is copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from obliviate.bench.store import atomic_write_text
from obliviate.report.rundir import RunDir, load_run

__all__ = ["Report", "RunDir", "load_run", "write_report"]


@dataclass
class Report:
    """Paths of what :func:`write_report` wrote."""

    markdown: Path
    html: Path
    plots: dict[str, Path]


def write_report(run_dir: Path | str) -> Report:
    """Write the leaderboard, the plots and the HTML report of the bench in ``run_dir``.

    Example:
        >>> report = write_report("runs/demo")
        >>> report.html.name
        'report.html'
    """
    from obliviate.report.html import render
    from obliviate.report.plots import draw_all
    from obliviate.report.tables import markdown

    run = load_run(Path(run_dir))
    md = run.root / "leaderboard.md"
    atomic_write_text(md, markdown(run))
    figures = draw_all(run, run.root / "plots")
    html = run.root / "report.html"
    atomic_write_text(html, render(run, figures))
    return Report(md, html, {name: path for name, (path, _) in figures.items()})
