"""The ``obliviate`` command line: a thin layer over the library.

Any :class:`~obliviate.errors.ObliviateError` ends the command with one line on stderr and exit
status 2; an interrupted bench keeps every finished job and resumes on the next run.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Make trained models forget chosen training data, and measure it.")
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


@app.command()
def scenarios() -> None:
    """List built-in scenarios: data source, models, forget specs."""
    from obliviate.data import SCENARIOS

    table = Table(title="scenarios")
    for col in ("name", "description", "source", "models", "forget specs"):
        table.add_column(col)
    for name in SCENARIOS.names():
        spec = SCENARIOS.get(name)
        table.add_row(name, spec.description, spec.source, ", ".join(spec.recipes), spec.forgets)
    from obliviate.llm import LM_SCENARIOS  # the language-model track

    for name in LM_SCENARIOS.names():
        table.add_row(name, LM_SCENARIOS.get(name), "generated", "tiny-gpt2, HF path", "authors")
    console.print(table)


@app.command()
def methods(name: Annotated[str | None, typer.Argument(help="show one method in full")] = None
            ) -> None:
    """List unlearning methods (family, needs retain, paper, defaults), or show one."""
    from obliviate.config import field_info
    from obliviate.llm import LM_METHODS
    from obliviate.unlearning import METHODS

    if name is not None:
        info = (LM_METHODS if name in LM_METHODS and name not in METHODS else METHODS).get(name)
        console.print(f"[bold]{info.name}[/bold]  family: {info.family}  needs retain: "
                      f"{'yes' if info.needs_retain else 'no'}\npaper: {info.paper}\n")
        import inspect

        console.print(inspect.getdoc(info.fn) or "")
        if info.config is not None:
            table = Table(title=f"{info.name} parameters (--set {info.name}.NAME=VALUE)")
            for col in ("parameter", "type", "default", "meaning"):
                table.add_column(col)
            for field, tp, default, help_text in field_info(info.config):
                table.add_row(field, getattr(tp, "__name__", str(tp)), repr(default), help_text)
            console.print(table)
        return
    table = Table(title="methods")
    for col in ("name", "family", "retain", "paper", "defaults"):
        table.add_column(col)
    for n, info in [*((n, METHODS.get(n)) for n in METHODS.names()),
                    *((n, LM_METHODS.get(n)) for n in LM_METHODS.names())]:
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults().items())
        table.add_row(n, info.family, "yes" if info.needs_retain else "no", info.paper, defaults)
    console.print(table)


def _fmt(mean: float, std: float, digits: int = 3) -> str:
    """``mean`` alone, or ``mean±std`` when there is a spread over seeds."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and (math.isnan(std) or std == 0)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}±{std:.{digits}f}"


# each scenario's utility: accuracy, RMSE (ratings) or anomaly score and AUROC; absent ones hide
QUICK_UTILITY = ("RA", "FA", "TA", "ASR", "R_RMSE", "F_RMSE", "T_RMSE", "R_ERR", "F_AUROC", "T_AUROC")
COLUMNS = {
    "quick": [*[(m, 3) for m in QUICK_UTILITY], ("MIA", 3),
              *[(f"{m}_gap", 3) for m in (*QUICK_UTILITY, "MIA")],
              ("avg_gap", 3), ("time_s", 2), ("time_ratio", 3)],
    "challenge": [("F", 4), ("F_ratio", 3), ("score", 4), ("RA_ratio", 3), ("TA_ratio", 3),
                  ("FA", 3), ("time_s", 2), ("time_ratio", 3)],
    "ulira": [("attack_acc", 3), ("attack_acc_at_0", 3), ("auc", 3), ("tpr_1pct", 3),
              ("tpr_01pct", 3), ("TA", 3), ("time_s", 2)],
    "tofu": [("forget_quality", 4), ("model_utility", 3), ("mu_ratio", 3), ("forget_prob", 3),
             ("forget_rouge", 3), ("mia_loss", 3), ("mia_minkpp", 3), ("passes", 0),
             ("time_s", 2)],
}


def print_leaderboard(board: Any, title: str, protocol: str = "quick") -> None:
    from obliviate.bench.leaderboard import legend

    table = Table(title=title)
    cols = [("method", None), *[(c, d) for c, d in COLUMNS[protocol] if c in board]]
    for col, _ in cols:
        table.add_column(col, justify="left" if col == "method" else "right",
                         no_wrap=col == "method")
    table.add_column("status")
    for _, row in board.iterrows():
        cells = [str(row["method"])]
        for col, digits in cols[1:]:
            cells.append(_fmt(row.get(col), row.get(f"{col}_std"), digits))
        style = "bold" if row["method"] == "retrain (reference)" else None
        table.add_row(*cells, str(row["status"]), style=style)
    console.print(table)
    console.print(legend(protocol, list(board.columns) if protocol == "quick" else None),
                  style="dim")


@app.command()
def bench(
    scenario: Annotated[str | None, typer.Argument(help="scenario name")] = None,
    method: Annotated[list[str] | None, typer.Option("-m", "--method",
                      help="method name or module:function (repeat)")] = None,
    forget: Annotated[str | None, typer.Option(help="forget spec, e.g. random:0.1")] = None,
    protocol: Annotated[str | None, typer.Option(help="evaluation protocol")] = None,
    seeds: Annotated[int | None, typer.Option(help="number of seeds")] = None,
    models: Annotated[int | None, typer.Option(help="models per side (challenge)")] = None,
    executor: Annotated[str | None, typer.Option(
        help="where jobs run: local (this process) or ray (a Ray cluster)")] = None,
    address: Annotated[str | None, typer.Option(
        help="an existing Ray cluster for --executor ray (default: start a local one)")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set",
                    help="OWNER.PARAM=VALUE, e.g. finetune.lr=0.01")] = None,
    config: Annotated[Path | None, typer.Option(help="flat YAML bench description")] = None,
    cache: Annotated[Path | None, typer.Option(
        help="reference-model cache shared across runs (default OUT/models)")] = None,
    save_models: Annotated[bool, typer.Option(help="also keep unlearned weights")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the leaderboard as JSON")] = False,
    user_data: Annotated[str | None, typer.Option("--data",
        help="your data for the custom scenario: KIND:PATH (idx, cifar, npz, csv, images)")] = None,
    model: Annotated[str | None, typer.Option(help="model architecture (scenario.model)")] = None,
) -> None:
    """Unlearn with each method on SCENARIO over several seeds and print the leaderboard."""
    from obliviate.bench.config import BenchConfig
    from obliviate.bench.runner import BenchRun

    # --data and --model are shorthands for --set scenario.data=... and scenario.model=...
    set_ = [*(set_ or []), *([f"scenario.data={user_data}"] if user_data else []),
            *([f"scenario.model={model}"] if model else [])]
    data: dict[str, Any] = load_yaml(config) if config else {}
    given = {"scenario": scenario, "methods": method or None, "forget": forget,
             "protocol": protocol, "seeds": seeds, "models": models, "executor": executor,
             "out": out, "set": set_ or None, "cache": cache, "address": address}
    data.update({k: v for k, v in given.items() if v is not None})
    if save_models:
        data["save_models"] = True
    if "scenario" not in data:
        raise click.UsageError("Missing SCENARIO (e.g. 'obliviate bench digits').")
    if "out" not in data:
        data["out"] = Path("runs") / str(data["scenario"])
    from obliviate.llm.bench import LMBenchRun, is_lm_scenario, lm_bench_config

    lm = is_lm_scenario(data["scenario"])  # the language-model track has its own protocol
    cfg = lm_bench_config(data) if lm else BenchConfig.from_mapping(data)
    run = LMBenchRun(cfg) if lm else BenchRun(cfg)
    quiet = quiet or as_json or cfg.quiet
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, disable=quiet,
                  transient=False) as bar:
        task = bar.add_task("starting", total=run.total_steps)
        try:
            board = run.run(progress=lambda msg: bar.update(task, description=msg),
                            advance=lambda: bar.advance(task))
        except KeyboardInterrupt:
            err_console.print(f"interrupted: finished jobs are saved in {cfg.out}; run the same "
                              f"command again to resume.")
            raise typer.Exit(130) from None
        bar.update(task, description="done")
    if as_json:
        console.print_json(board.to_json(orient="records"))
    else:
        n = f" · N={run.rb.n_models}" if cfg.protocol in ("challenge", "ulira") else ""
        print_leaderboard(board, f"{cfg.scenario} · forget {cfg.forget} · {cfg.protocol}{n} · "
                                 f"{cfg.seeds} seed(s)", cfg.protocol)
        tuned = run.tuned_defaults()
        if tuned:
            console.print(f"{cfg.scenario} adjusts these defaults for its scale: "
                          f"{', '.join(tuned)} (see config.json)", style="dim")
        console.print(f"results: {cfg.out}/results.sqlite, leaderboard.csv, config.json")
    for failure in run.failures:
        err_console.print(f"failed: {failure}")
    if run.failures:
        raise typer.Exit(1)


@app.command()
def report(directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="a run directory written by 'obliviate bench'")]) -> None:
    """Write leaderboard.md, plots/*.png and a self-contained report.html for a run."""
    from obliviate.report import write_report

    written = write_report(directory)
    console.print(f"report: {written.html}, {written.markdown.name}, "
                  f"plots/ ({', '.join(written.plots) or 'none'})")


def load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from obliviate.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}".replace("\n", " ")) \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must be a flat mapping of settings "
                          f"(scenario, methods, forget, ...).")
    return data


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="bench YAML file")]) -> None:
    """Check a bench config fully and print every problem at once."""
    from obliviate.bench.config import BenchConfig, resolve
    from obliviate.errors import ObliviateError

    data = load_yaml(path)
    problems = []
    from obliviate.llm.bench import is_lm_scenario, lm_bench_config, resolve_lm

    if is_lm_scenario(data.get("scenario")):  # the language-model track checks in one go
        try:
            resolve_lm(lm_bench_config(data))
        except (ObliviateError, TypeError) as exc:
            err_console.print(f"{path}: {exc}")
            raise typer.Exit(2) from None
        console.print(f"{path}: ok (language-model track, {data['scenario']})")
        return
    try:
        cfg = BenchConfig.from_mapping(data)
    except (ObliviateError, TypeError) as exc:
        problems.append(str(exc))
        cfg = None
    if cfg is not None:
        # check each method on its own so that every bad one is reported
        for m in cfg.methods:
            try:
                resolve(BenchConfig(**{**cfg.__dict__, "methods": [m],
                                       "set": [s for s in cfg.set
                                               if s.rpartition(".")[0] not in cfg.methods
                                               or s.startswith(m + ".")]}))
            except ObliviateError as exc:
                if str(exc) not in problems:
                    problems.append(str(exc))
    if problems:
        for p in problems:
            err_console.print(f"{path}: {p}")
        raise typer.Exit(2)
    console.print(f"{path}: ok ({len(cfg.methods)} method(s) on {cfg.scenario})")


from obliviate.cli_sisa import app as sisa_app  # noqa: E402  (a sub-app in its own module)

app.add_typer(sisa_app, name="sisa")


def main(argv: list[str] | None = None) -> None:
    """Entry point: typed errors become one line and exit status 2."""
    from obliviate.errors import ObliviateError

    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) comes back as a return value here
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ObliviateError as exc:
        print(f"obliviate: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
