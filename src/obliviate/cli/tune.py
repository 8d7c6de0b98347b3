"""``obliviate tune``: choose a method's settings for a scenario by the challenge score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from obliviate.cli.app import SHORT_HELP, app, console, err_console
from obliviate.errors import ConfigError
from obliviate.yamlfile import yaml_scalar


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``KEY=V1,V2,...`` items -> {KEY: [V1, V2, ...]}, each value read as a YAML scalar."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid takes KEY=V1,V2,... (e.g. --grid lr_scale=0.3,1,3); got "
                              f"'{item}'.")
        grid[key.strip()] = [yaml_scalar(v, f"--grid {key.strip()} value {v.strip()!r}")
                             for v in values.split(",") if v.strip()]
    return grid


def parse_sets(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``scenario.KEY=V`` and ``recipe.KEY=V`` items -> (scenario options, recipe overrides)."""
    parts: dict[str, dict[str, Any]] = {"scenario": {}, "recipe": {}}
    for item in items:
        key, sep, value = item.partition("=")
        head, dot, name = key.strip().partition(".")
        if not sep or not dot or head not in parts or not name:
            raise ConfigError(f"--set takes scenario.KEY=VALUE or recipe.KEY=VALUE (e.g. --set "
                              f"recipe.epochs=6); got '{item}'. Method settings go in --grid.")
        parts[head][name] = yaml_scalar(value, f"--set {key.strip()} value {value!r}")
    return parts["scenario"], parts["recipe"]


def parse_seeds(text: str) -> list[int]:
    from obliviate.data.forget import ASCII_INT

    parts = [s.strip() for s in text.split(",") if s.strip()]
    if not all(ASCII_INT.fullmatch(s) for s in parts):
        shown = text if len(text) < 60 else f"{text[:57]}..."
        raise ConfigError(f"--seeds takes comma-separated integers (e.g. 1,2); got '{shown}'.")
    seeds = [int(s) for s in parts]
    if not seeds or any(not 0 <= s < 2**32 for s in seeds):
        shown = text if len(text) < 60 else f"{text[:57]}..."
        raise ConfigError(f"--seeds takes integers from 0 to 2**32-1 (e.g. 1,2); got '{shown}'.")
    return seeds


@app.command(short_help=SHORT_HELP["tune"])
def tune(
    scenario: Annotated[str, typer.Argument(help="a scenario name (obliviate scenarios)")],
    method: Annotated[str, typer.Option("--method", "-m", help="the method to tune")],
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", metavar="KEY=V1,V2", help="values to try for a parameter (repeatable; "
        "lr_scale multiplies every learning rate). Default: lr x 0.3/1/3, epochs x 0.5/1/1.5"
    )] = None,
    seeds: Annotated[str, typer.Option(
        help="held-out seeds (forget set, original, retrained models); 0 is the bench's")] = "1,2",
    models: Annotated[int, typer.Option(help="retrained models and runs per seed")] = 16,
    forget: Annotated[str | None, typer.Option(help="forget spec (default: the scenario's)")
                      ] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="scenario.KEY=VALUE or recipe.KEY=VALUE (repeatable)"
    )] = None,
    data: Annotated[str | None, typer.Option(
        "--data", metavar="KIND:PATH", help="your own data for the custom scenario (npz:FILE, "
        "csv:FILE; as bench --data)")] = None,
    cache: Annotated[Path | None, typer.Option(help="folder for the reference models")] = None,
    out: Annotated[Path | None, typer.Option(help="write every trial as JSON here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
) -> None:
    """Sweep a method's settings on held-out seeds and the validation split; keep the one with
    the best challenge score (20% cut-off in CPU time). Prints the --set lines to use."""
    from obliviate.paths import check_file_target, check_folder_target
    from obliviate.tune import tune as run_tune

    if out is not None:  # checked now: a sweep is hours of work to lose at its last write
        out = check_file_target(out, "--out")
    if cache is not None:
        check_folder_target(cache, "--cache")
    options, recipe = parse_sets(sets or [])
    if data is not None:
        options["data"] = data
    result = run_tune(scenario, method, grid=parse_grid(grid or []) or None,
                      seeds=parse_seeds(seeds), models=models, forget=forget, cache=cache,
                      scenario_options=options, recipe=recipe or None,
                      progress=None if quiet else (lambda line: err_console.print(line)))
    trials = sorted(result.trials, key=lambda t: -t.score)
    console.print(f"{'score':>7} {'F':>6} {'RA':>6} {'VA':>6} {'time':>6}  setting")
    for t in trials:
        console.print(f"{t.score:7.4f} {t.F:6.3f} {t.RA_ratio:6.3f} {t.VA_ratio:6.3f} "
                      f"{t.time_ratio:6.3f}  {json.dumps(t.setting)}"
                      + ("  (diverged)" if t.diverged is not None else ""))
    sets = " ".join(f"--set {result.method}.{k}={v}" for k, v in result.best.items())
    console.print(f"best for {result.method} on {scenario}: {json.dumps(result.best)}"
                  + (f"; use: {sets}" if sets else " (the defaults)"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        console.print(f"wrote {out}")
