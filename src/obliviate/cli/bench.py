"""``obliviate bench`` and ``obliviate validate``: one configuration, checked by one function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from obliviate.bench.config import DEVICES, BenchConfig
from obliviate.bench.executors import EXECUTORS
from obliviate.bench.spec import PROTOCOLS, protocol_for
from obliviate.cli.app import SHORT_HELP, app, console, err_console
from obliviate.cli.table import choose_columns, fit, leaderboard_table, short_status
from obliviate.data import SCENARIOS
from obliviate.unlearning import TASK_WORDS, default_methods


def _defaults_help() -> str:
    tasks = dict.fromkeys(SCENARIOS.get(n).task for n in SCENARIOS.names())
    parts = [f"{TASK_WORDS[t]}: {', '.join(default_methods(t))}" for t in tasks
             if default_methods(t)]
    return "; ".join(parts)


def _protocol_help() -> str:
    names = ", ".join(f"{n} ({', '.join(PROTOCOLS.get(n).tasks)})" for n in PROTOCOLS.names())
    defaults = "; ".join(f"{n} for {', '.join(TASK_WORDS[t] for t in PROTOCOLS.get(n).default_for)}"
                         for n in PROTOCOLS.names() if PROTOCOLS.get(n).default_for)
    return f"evaluation protocol: {names}. Default: {defaults}"


def _models_help() -> str:
    parts = [f"{n} {PROTOCOLS.get(n).default_models}" for n in PROTOCOLS.names()
             if PROTOCOLS.get(n).default_models]
    return f"models per side of a population protocol (default: {', '.join(parts)})"


def load_yaml(path: Path) -> dict[str, Any]:
    from obliviate.yamlfile import read_yaml_mapping

    return read_yaml_mapping(path)


TRUST_HELP = ("a module:function your --config names as its model or a method, to import "
              "(repeat; a YAML file never makes obliviate import code by itself)")


def check_yaml_code(data: dict[str, Any], trusted: list[str] | None, path: Path) -> None:
    """Refuse a YAML config that names code not also named by ``--trust-code``."""
    from obliviate.models import MODELS
    from obliviate.unlearning import METHODS
    from obliviate.user_code import check_config_code

    check_config_code(data, trusted or [], str(path),
                      lambda kind, name: name in (MODELS if kind == "model" else METHODS))


@app.command(short_help=SHORT_HELP["bench"], help="Unlearn with each method on SCENARIO over several seeds and print the "
                  "leaderboard. Re-running the same command into the same --out resumes it; "
                  "adding methods or seeds extends it.")
def bench(
    scenario: Annotated[str | None, typer.Argument(
        metavar="SCENARIO", help=f"scenario name: {', '.join(SCENARIOS.names())}",
        show_default=False)] = None,
    method: Annotated[list[str] | None, typer.Option(
        "-m", "--method", metavar="METHOD",
        help=f"method name or module:function (repeat). Default: the methods marked default "
             f"for the scenario's task ({_defaults_help()})", show_default=False)] = None,
    forget: Annotated[str | None, typer.Option(
        metavar="SPEC", help="forget spec, e.g. random:0.1, random:500, class:3, ids:FILE, "
                             "groups:0.05. Default: the scenario's (random:0.1; tofu-mini: "
                             "authors:0.1)", show_default=False)] = None,
    protocol: Annotated[str | None, typer.Option(
        metavar="NAME", help=_protocol_help(), show_default=False)] = None,
    seeds: Annotated[int | None, typer.Option(
        metavar="K", help="number of seeds (0..K-1) [default: 1]", show_default=False)] = None,
    models: Annotated[int | None, typer.Option(
        metavar="N", help=_models_help(), show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        metavar="NAME", help="the scenario's model: a registered model or module:factory "
                             "(factory(num_classes, input_shape) -> nn.Module)",
        show_default=False)] = None,
    user_data: Annotated[str | None, typer.Option(
        "--data", metavar="KIND:PATH",
        help="your data for the custom scenario: idx, cifar, npz, csv or images",
        show_default=False)] = None,
    device: Annotated[str | None, typer.Option(
        metavar="DEVICE", help=f"{'|'.join(DEVICES)}: where models train and run "
                               f"[default: cpu]", show_default=False)] = None,
    executor: Annotated[str | None, typer.Option(
        metavar="NAME", help=f"where jobs run: {' or '.join(EXECUTORS)} [default: local]",
        show_default=False)] = None,
    address: Annotated[str | None, typer.Option(
        metavar="HOST:PORT", help="an existing Ray cluster for --executor ray (default: start "
                                  "a local one)", show_default=False)] = None,
    out: Annotated[str | None, typer.Option(
        metavar="DIR", help="run directory [default: runs/SCENARIO]", show_default=False)] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="OWNER.PARAM=VALUE",
        help="override a method's parameter (finetune.lr=0.01), the recipe (recipe.epochs=5), "
             "a scenario option (scenario.train_size=5000) or a protocol option "
             "(protocol.cutoff=0.3); repeat", show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        metavar="FILE", help="flat YAML bench description (command-line options win)",
        show_default=False)] = None,
    cache: Annotated[str | None, typer.Option(
        metavar="DIR", help="reference-model cache shared across runs [default: OUT/models]",
        show_default=False)] = None,
    columns: Annotated[str | None, typer.Option(
        metavar="A,B,..", help="leaderboard columns to print (see the legend)",
        show_default=False)] = None,
    save_models: Annotated[bool, typer.Option(
        "--save-models", help="also keep the unlearned weights")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="run again the jobs that diverged in an earlier run")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="print every column")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress display")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the leaderboard as JSON")] = False,
    trust_code: Annotated[list[str] | None, typer.Option(
        "--trust-code", metavar="MODULE:FUNCTION", help=TRUST_HELP, show_default=False)] = None,
) -> None:
    from obliviate.bench.runner import BenchRun
    from obliviate.bench.spec import Progress as Report
    from obliviate.errors import ConfigError

    data: dict[str, Any] = load_yaml(config) if config else {}
    given = {"scenario": scenario, "methods": method or None, "forget": forget,
             "protocol": protocol, "seeds": seeds, "models": models, "executor": executor,
             "out": out, "set": set_ or None, "cache": cache, "address": address,
             "model": model, "data": user_data, "device": device}
    # code the YAML names (where the command line does not replace it) must be named here too
    check_yaml_code({k: v for k, v in data.items() if given.get(k) is None}, trust_code, config)
    data.update({k: v for k, v in given.items() if v is not None})
    for flag, value in (("save_models", save_models), ("quiet", quiet),
                        ("retry_failed", retry_failed)):
        if value:
            data[flag] = True
    if "scenario" not in data:
        raise ConfigError("Missing SCENARIO; name one, e.g. 'obliviate bench digits' (see "
                          "'obliviate scenarios').")
    data.setdefault("out", Path("runs") / str(data["scenario"]))
    cfg = BenchConfig.from_mapping(data)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if wanted:  # an unknown column is refused before --out is touched
        early = protocol_for(SCENARIOS.get(cfg.scenario).task, cfg.protocol)
        choose_columns(early, {c.name: None for c in early.columns}, wide, wanted)
    run = BenchRun(cfg)
    spec = run.rb.protocol
    shown = choose_columns(spec, {c.name: None for c in spec.columns}, wide, wanted)
    quiet = quiet or as_json or cfg.quiet
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, disable=quiet,
                  transient=False) as bar:
        task = bar.add_task("starting", total=run.total_steps)
        try:
            board = run.run(Report(lambda msg: bar.update(task, description=msg),
                                   lambda: bar.advance(task)))
        except KeyboardInterrupt:
            err_console.print(f"interrupted: finished jobs are saved in {cfg.out}; run the same "
                              f"command again to resume.")
            raise typer.Exit(130) from None
        bar.update(task, description="done")
    if as_json:
        console.print_json(board.to_json(orient="records"))
    else:
        n = f" · N={run.rb.n_models}" if spec.default_models else ""
        title = (f"{cfg.scenario} · forget {run.rb.scenario.forget_spec} · {spec.name}{n} · "
                 f"{board['seeds'].max() if len(board) else 0} seed(s)")
        present = [c for c in shown if c.name in board]
        width = console.width
        layout = fit(board, present, width)
        present = layout.columns
        console.print(leaderboard_table(board, spec, title, present, width=width))
        # markup=False: the legend's "[lo, hi]" and notes' brackets are text, not Rich markup
        console.print(spec.legend([c.name for c in present]), style="dim", markup=False)
        for _, row in board.iterrows():
            if str(row["status"]) != short_status(row["status"]) and \
                    not str(row["status"]).startswith("failed"):
                console.print(f"{row['method']}: {row['status']}", style="dim", markup=False)
        hidden = [c.name for c in spec.columns if c.name in board and c not in present]
        if hidden:
            console.print(f"more columns with --wide or --columns: {', '.join(hidden)}",
                          style="dim", markup=False)
        tuned = run.tuned_defaults()
        if tuned:
            console.print(f"{cfg.scenario} adjusts these defaults for its scale: "
                          f"{', '.join(tuned)} (see config.json)", style="dim", markup=False)
        for note in run.notes:
            console.print(note, style="dim", markup=False)
        console.print(f"results: {cfg.out}/results.sqlite, leaderboard.csv, config.json "
                      f"(protocol {spec.version})", markup=False)
    for failure in run.failures:
        err_console.print(f"failed: {failure}", soft_wrap=True, markup=False)
    if run.failures:
        raise typer.Exit(1)


@app.command(short_help=SHORT_HELP["validate"])
def validate(path: Annotated[Path, typer.Argument(metavar="FILE", help="bench YAML file")],
             trust_code: Annotated[list[str] | None, typer.Option(
                 "--trust-code", metavar="MODULE:FUNCTION", help=TRUST_HELP,
                 show_default=False)] = None) -> None:
    """Check a bench config exactly as 'bench' would, and print every problem at once."""
    from obliviate.bench.config import Problems, resolve
    from obliviate.errors import ObliviateError

    data = load_yaml(path)
    check_yaml_code(data, trust_code, path)
    try:
        cfg = BenchConfig.from_mapping({"out": "runs/validate", **data})
        rb = resolve(cfg, collect=True)
    except Problems as exc:
        for message in exc.messages:
            err_console.print(f"{path}: {message}", soft_wrap=True)
        raise typer.Exit(2) from None
    except ObliviateError as exc:
        err_console.print(f"{path}: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"{path}: ok ({len(rb.methods)} method(s) on {cfg.scenario}, protocol "
                  f"{rb.protocol.name})")
