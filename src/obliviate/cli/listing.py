"""``obliviate scenarios`` and ``obliviate methods``: what the registries hold."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from obliviate.cli.app import app, console


@app.command()
def scenarios() -> None:
    """List built-in scenarios: task, data source, models, forget specs."""
    from obliviate.data import SCENARIOS

    table = Table(title="scenarios", box=box.SIMPLE_HEAD)
    for col in ("name", "task", "description", "source", "models", "forget specs"):
        table.add_column(col, no_wrap=col == "name")
    for name in SCENARIOS.names():
        spec = SCENARIOS.get(name)
        table.add_row(name, spec.task, spec.description, spec.source,
                      ", ".join(spec.models or spec.recipes), spec.forgets)
    console.print(table)


def protocols_of(info) -> str:
    """The protocols that can score a method: those whose tasks it works on."""
    from obliviate.bench.spec import PROTOCOLS

    return ", ".join(n for n in PROTOCOLS.names()
                     if any(info.works_on(t) for t in PROTOCOLS.get(n).tasks))


@app.command()
def methods(name: Annotated[str | None, typer.Argument(help="show one method in full")] = None
            ) -> None:
    """List unlearning methods (tasks, protocols, family, needs retain, paper), or show one."""
    from obliviate.config import field_info
    from obliviate.unlearning import METHODS, TASK_WORDS

    if name is not None:
        info = METHODS.get(name)
        console.print(f"[bold]{info.name}[/bold]  works on: "
                      f"{', '.join(TASK_WORDS[t] for t in info.tasks)}  protocols: "
                      f"{protocols_of(info)}  family: {info.family}  needs retain: "
                      f"{'yes' if info.needs_retain else 'no'}"
                      f"{'  prepare phase: yes' if info.prepare else ''}\npaper: {info.paper}\n")
        console.print(inspect.getdoc(info.fn) or "")
        if info.config is not None:
            table = Table(title=f"{info.name} parameters (--set {info.name}.NAME=VALUE)")
            for col in ("parameter", "type", "default", "meaning"):
                table.add_column(col)
            for field, tp, default, help_text in field_info(info.config):
                table.add_row(field, getattr(tp, "__name__", str(tp)), repr(default), help_text)
            console.print(table)
        return
    table = Table(title="methods (* runs by default when a bench names none)",
                  box=box.SIMPLE_HEAD)
    for col in ("name", "protocols", "family", "retain", "paper"):
        table.add_column(col, no_wrap=col == "name")
    for n in METHODS.names():
        info = METHODS.get(n)
        table.add_row(n + ("*" if info.default else ""), protocols_of(info), info.family,
                      "yes" if info.needs_retain else "no", info.paper)
    console.print(table)
    console.print("'obliviate methods NAME' shows a method's parameters and defaults.",
                  style="dim")
