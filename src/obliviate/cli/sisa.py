"""``obliviate sisa train|forget|status``: a persistent SISA model on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="SISA: sharded exact unlearning with a ledger.")


def _progress(quiet: bool, total: int | None, what: str):
    from obliviate.cli.app import err_console

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err_console, disable=quiet)
    task = bar.add_task(what, total=total)

    def tick(shard: int, slice_: int, _state) -> None:
        bar.update(task, description=f"{what}: shard {shard} slice {slice_}", advance=1)

    return bar, tick


def _options(pairs: list[str] | None) -> dict[str, str]:
    from obliviate.errors import ConfigError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option must look like NAME=VALUE (e.g. train_size=2000). Got "
                              f"{pair!r} instead.")
        out[key.strip()] = value.strip()
    return out


@app.command()
def train(
    scenario: Annotated[str, typer.Argument(help="scenario name, e.g. digits")],
    out: Annotated[Path, typer.Option(help="new folder for the model, checkpoints and ledger")],
    shards: Annotated[int, typer.Option(help="number of shards S")] = 4,
    slices: Annotated[int, typer.Option(help="slices R per shard")] = 1,
    seed: Annotated[int, typer.Option(help="seed of the shard plan and the training")] = 0,
    epochs: Annotated[int | None, typer.Option(help="epochs per shard (default: recipe's)")] = None,
    aggregation: Annotated[str, typer.Option(help="mean or vote")] = "mean",
    option: Annotated[list[str] | None, typer.Option(
        help="scenario option NAME=VALUE, e.g. model=mlp or train_size=2000 (repeat)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Train S shards of R slices on SCENARIO's full training set into OUT."""
    from obliviate.cli.app import console
    from obliviate.data import load_scenario
    from obliviate.sisa import SisaModel

    opts = _options(option)
    sc = load_scenario(scenario, recipe={"epochs": epochs} if epochs else None, **opts)
    bar, tick = _progress(quiet, shards * slices, "training")
    with bar:
        model = SisaModel.train(out, sc.splits.x_train, sc.splits.y_train,
                                model_name=sc.model_name, shards=shards, slices=slices,
                                recipe=sc.recipe, seed=seed, aggregation=aggregation,
                                num_classes=sc.num_classes,
                                source={"scenario": scenario, "options": sc.options},
                                on_checkpoint=tick)
    acc = _test_accuracy(model, sc)
    console.print(f"trained {shards} shard(s) x {slices} slice(s) of {sc.model_name} on "
                  f"{len(sc.splits.y_train)} {scenario} examples; test accuracy {acc:.3f}; "
                  f"model in {out}")


def _test_accuracy(model, sc) -> float:
    import torch

    with torch.no_grad():
        pred = model.ensemble()(sc.splits.x_test).argmax(1)
    return float((pred == sc.splits.y_test).float().mean())


@app.command()
def forget(
    path: Annotated[Path, typer.Argument(help="SISA model folder")],
    ids: Annotated[Path | None, typer.Option(help="file of training indices, one per line")] = None,
    groups: Annotated[Path | None, typer.Option(help="file of group ids, one per line")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Delete the training indices in --ids (and groups in --groups); no file: finish pending."""
    from obliviate.cli.app import console
    from obliviate.data.forget import read_ids_file
    from obliviate.sisa import SisaModel

    wanted = read_ids_file(ids) if ids else None
    group_ids = read_ids_file(groups) if groups else None
    model = SisaModel.open(path, recover=False)
    pending = model.ledger.pending()
    bar, tick = _progress(quiet, None, "retraining")
    with bar:
        done = model.resume(on_checkpoint=tick)
        result = (model.forget(wanted, groups=group_ids, on_checkpoint=tick)
                  if wanted is not None or group_ids is not None else None)
    for r in done:
        console.print(f"completed pending request {r.request} ({len(r.ids)} id(s)): version "
                      f"{r.version}")
    if result is not None:
        shards = ", ".join(f"{s} from slice {r}" for s, r in result.shards.items())
        console.print(f"request {result.request}: deleted {len(result.ids)} id(s); retrained "
                      f"shard(s) {shards} in {result.seconds:.2f}s; now serving version "
                      f"{result.version} (remaining set {result.remaining_hash})")
    elif not pending:
        console.print("nothing to do: no --ids or --groups given and no pending request.")
    model.close()


@app.command()
def status(
    path: Annotated[Path, typer.Argument(help="SISA model folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
) -> None:
    """Show the plan, the served version and every deletion request (read-only)."""
    from obliviate.cli.app import console
    from obliviate.sisa import SisaModel

    model = SisaModel.open(path, recover=False)
    info = model.status()
    model.close()
    if as_json:
        console.print_json(json.dumps(info))
        return
    console.print(f"{info['dir']}: {info['model']}, {info['shards']} shard(s) x {info['slices']} "
                  f"slice(s), {info['n_train']} training examples, {info['deleted']} deleted, "
                  f"serving version {info['version']}")
    table = Table(title="deletion requests")
    for col in ("id", "created (UTC)", "status", "ids", "shards retrained", "version", "seconds"):
        table.add_column(col)
    for r in info["requests"]:
        table.add_row(str(r["id"]), r["created"], r["status"], str(r["n_ids"]),
                      ", ".join(map(str, r["shards"] or {})) or "-", str(r["version"] or "-"),
                      f"{r['seconds']:.2f}" if r["seconds"] is not None else "-")
    console.print(table)
    if info["pending"]:
        console.print(f"{len(info['pending'])} pending request(s): the previous version is "
                      f"served; run 'obliviate sisa forget {path}' to complete them.")
