"""The Typer application and the consoles every command prints through."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Make trained models forget chosen training data, and measure it.")
console = Console(width=None if sys.stdout.isatty() else 100)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 100)
