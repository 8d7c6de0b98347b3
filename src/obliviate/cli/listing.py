"""``obliviate scenarios`` and ``obliviate methods``: what the registries hold."""

from __future__ import annotations

import inspect
import textwrap
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from obliviate.cli.app import app, console
from obliviate.cli.listing_cache import cached_rows


def scenario_rows() -> list[list[str]]:
    """name, task, models, description, source, forget specs: one row per scenario."""
    from obliviate.data import SCENARIOS

    return [[name, spec.task, ", ".join(spec.models or spec.recipes), spec.description,
             spec.source, spec.forgets]
            for name, spec in ((n, SCENARIOS.get(n)) for n in SCENARIOS.names())]


def method_rows() -> list[list[str]]:
    """name (``*``: a default), protocols, family, needs retain, paper: one row per method."""
    from obliviate.unlearning import METHODS

    return [[n + ("*" if info.default else ""), protocols_of(info), info.family,
             "yes" if info.needs_retain else "no", info.paper]
            for n, info in ((n, METHODS.get(n)) for n in METHODS.names())]


@app.command()
def scenarios() -> None:
    """List built-in scenarios: task, data source, models, forget specs."""
    width = max(console.width, 40)
    console.print("scenarios (name: task; models; then what it is, its data, its forget specs)",
                  style="dim", markup=False)
    for name, task, models, description, source, forgets in cached_rows("scenarios",
                                                                          scenario_rows):
        console.print(f"[bold]{escape(name)}[/bold]: {task}; {escape(models)}", highlight=False)
        about = f"{description}. Data: {source}. Forget: {forgets}."
        console.print("\n".join(textwrap.wrap(about, width, initial_indent="  ",
                                               subsequent_indent="  ")),
                      markup=False, highlight=False)


def protocols_of(info) -> str:
    """The protocols that can score a method: those whose tasks it works on."""
    from obliviate.bench.spec import PROTOCOLS

    return ", ".join(n for n in PROTOCOLS.names()
                     if any(info.works_on(t) for t in PROTOCOLS.get(n).tasks))


@app.command()
def methods(name: Annotated[str | None, typer.Argument(help="show one method in full")] = None
            ) -> None:
    """List unlearning methods (tasks, protocols, family, needs retain, paper), or show one."""
    if name is not None:
        from obliviate.config import field_info
        from obliviate.unlearning import METHODS, TASK_WORDS

        info = METHODS.get(name)
        console.print(f"[bold]{escape(info.name)}[/bold]  works on: "
                      f"{', '.join(TASK_WORDS[t] for t in info.tasks)}  protocols: "
                      f"{protocols_of(info)}  family: {info.family}  needs retain: "
                      f"{'yes' if info.needs_retain else 'no'}"
                      f"{'  prepare phase: yes' if info.prepare else ''}\npaper: "
                      f"{escape(info.paper)}\n")
        console.print(inspect.getdoc(info.fn) or "", markup=False)
        if info.config is not None:
            table = Table(title=f"{info.name} parameters (--set {info.name}.NAME=VALUE)")
            for col in ("parameter", "type", "default", "meaning"):
                table.add_column(col)
            for field, tp, default, help_text in field_info(info.config):
                table.add_row(field, getattr(tp, "__name__", str(tp)), escape(repr(default)),
                              escape(help_text))
            console.print(table)
        return
    table = Table(title="methods (* runs by default when a bench names none)",
                  box=box.SIMPLE_HEAD)
    for col in ("name", "protocols", "family", "retain", "paper"):
        table.add_column(col, no_wrap=col == "name")
    for row in cached_rows("methods", method_rows):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print("'obliviate methods NAME' shows a method's parameters and defaults.",
                  style="dim")
