"""The Typer application and the consoles every command prints through."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

# The one-line help of the commands whose modules are imported only when they run (they
# import torch and the bench): ``obliviate --help`` lists them from here.
SHORT_HELP = {
    "bench": "Unlearn with each method on a scenario; print the leaderboard.",
    "validate": "Check a bench config as 'bench' would; print every problem.",
    "tune": "Sweep a method's settings on held-out seeds; keep the best.",
    "sisa": "SISA: sharded exact unlearning with a ledger.",
}

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Make trained models forget chosen training data, and measure it.")


def _width(stream) -> int | None:
    """The terminal's width; $COLUMNS when set; else 100 (a pipe or a file)."""
    return None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 100


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))
