"""``obliviate sisa train|forget|retry|cancel|status``: a persistent SISA model on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="SISA: sharded exact unlearning with a ledger.")


class _Progress:
    """A progress bar on stderr that appears at the first checkpoint, not before: a command
    refused before any training prints its one error line and nothing else.

    With a known ``total`` (training) it counts checkpoints out of it; a retraining's total is
    not known in advance (resumed or reused slices), so it says where it is instead: the
    shard, the slice out of the shard's ``slices``, and how many checkpoints it has written.
    """

    def __init__(self, quiet: bool, total: int | None, what: str, slices: int | None = None):
        self.quiet, self.total, self.what, self.slices = quiet, total, what, slices
        self.bar: Progress | None = None
        self.written = 0

    def tick(self, shard: int, slice_: int, _state) -> None:
        from obliviate.cli.app import err_console

        if self.quiet:
            return
        self.written += 1
        if self.bar is None:
            counts = (BarColumn(), MofNCompleteColumn()) if self.total else ()
            self.bar = Progress(TextColumn("{task.description}"), *counts,
                                TimeElapsedColumn(), console=err_console)
            self.task = self.bar.add_task(self.what, total=self.total)
            self.bar.start()
        where = f"shard {shard}, slice {slice_ + 1}" + (f"/{self.slices}" if self.slices else "")
        done = "" if self.total else f", {self.written} checkpoint(s) in all"
        self.bar.update(self.task, description=f"{self.what}: {where} written{done}", advance=1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _progress(quiet: bool, total: int | None, what: str, slices: int | None = None):
    bar = _Progress(quiet, total, what, slices)
    return bar, bar.tick


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
    from obliviate.errors import ConfigError
    from obliviate.sisa import SisaModel

    if not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be an integer from 0 to 2**32-1. Got {seed} instead.")
    opts = _options(option)
    sc = load_scenario(scenario, recipe=None if epochs is None else {"epochs": epochs}, **opts)
    bar, tick = _progress(quiet, shards * slices, "training", slices)
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


def _tell(message: str) -> None:
    """Say why a command waits (even with --quiet: a silent wait would look like a hang)."""
    from obliviate.cli.app import err_console

    err_console.print(message, soft_wrap=True, highlight=False)


def _open(path: Path, model: str | None = None, *, builds: bool = False):
    """Open the folder; ``builds``: the command trains or serves members, so a folder whose
    sisa.json names a ``module:factory`` not given as ``--model`` is refused right here."""
    from obliviate.sisa import SisaModel

    opened = SisaModel.open(path, recover=False, model_factory=model)
    if builds:
        try:
            opened.check_code()
        except BaseException:
            opened.close()
            raise
    return opened


def _report(console, result, what: str) -> None:
    shards = ", ".join(f"{s} from slice {r}" for s, r in result.shards.items())
    reused = f", reusing {result.reused_slices} slice(s) already written" \
        if result.reused_slices else ""
    console.print(f"{what} {result.request}: deleted {len(result.ids)} id(s); retrained "
                  f"shard(s) {shards} in {result.seconds:.2f}s{reused}; now serving version "
                  f"{result.version} (remaining set {result.remaining_hash})")


def _request_id(text: str, path: Path) -> int:
    """REQUEST as an int, checked here so that 'abc' gets the same one-line error as '99'."""
    from obliviate.errors import DataError

    try:
        return int(text)
    except ValueError:
        raise DataError(f"REQUEST must be a request id (an integer such as 3), as 'obliviate sisa "
                        f"status {path}' lists them. Got {text[:40]!r} instead.") from None


WAIT_HELP = "if another process is changing the model, wait for it (default) or refuse"
MODEL_HELP = ("the module:factory the model was trained with, for a model built by your own "
              "factory (a folder's sisa.json never makes obliviate import code)")


@app.command()
def forget(
    path: Annotated[Path, typer.Argument(help="SISA model folder")],
    ids: Annotated[Path | None, typer.Option(help="file of training indices, one per line")] = None,
    groups: Annotated[Path | None, typer.Option(help="file of group ids, one per line")] = None,
    wait: Annotated[bool, typer.Option(help=WAIT_HELP)] = True,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    model_factory: Annotated[str | None, typer.Option(
        "--model", metavar="MODULE:FACTORY", help=MODEL_HELP, show_default=False)] = None,
) -> None:
    """Delete the training indices in --ids (and groups in --groups); no file: resume abandoned.

    Requests another process left unfinished (it was killed) are resumed first.
    """
    from obliviate.cli.app import console
    from obliviate.sisa.plan import read_index_file

    model = _open(path, model_factory, builds=True)
    try:
        wanted = read_index_file(ids, option="ids", n=model.plan.n) if ids else None
        group_ids = read_index_file(groups, option="groups") if groups else None
        bar, tick = _progress(quiet, None, "retraining", model.plan.slices)
        with bar:
            done = model.resume(wait=wait, on_wait=_tell, on_checkpoint=tick)
            result = None
            if wanted is not None or group_ids is not None:
                result = model.forget(wanted, groups=group_ids, wait=wait, on_wait=_tell,
                                      on_checkpoint=tick)
        for r in done:
            _report(console, r, "completed abandoned request")
        if result is not None:
            _report(console, result, "request")
        elif not done:
            console.print("nothing to do: no --ids or --groups given and no abandoned request.")
    finally:
        model.close()


@app.command()
def retry(
    path: Annotated[Path, typer.Argument(help="SISA model folder")],
    request: Annotated[str, typer.Argument(help="id of a failed request (see 'sisa status')")],
    wait: Annotated[bool, typer.Option(help=WAIT_HELP)] = True,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    model_factory: Annotated[str | None, typer.Option(
        "--model", metavar="MODULE:FACTORY", help=MODEL_HELP, show_default=False)] = None,
) -> None:
    """Run a failed deletion request again, planned from the version served now."""
    from obliviate.cli.app import console

    number = _request_id(request, path)
    model = _open(path, model_factory, builds=True)
    try:
        bar, tick = _progress(quiet, None, "retraining", model.plan.slices)
        with bar:
            result = model.retry(number, wait=wait, on_wait=_tell, on_checkpoint=tick)
        _report(console, result, "retried request")
    finally:
        model.close()


@app.command()
def cancel(
    path: Annotated[Path, typer.Argument(help="SISA model folder")],
    request: Annotated[str, typer.Argument(help="id of a failed or abandoned request")],
    wait: Annotated[bool, typer.Option(help=WAIT_HELP)] = True,
) -> None:
    """Drop a failed request (or one whose process is gone); its ids may be requested again."""
    from obliviate.cli.app import console

    number = _request_id(request, path)
    model = _open(path)
    try:
        req = model.cancel(number, wait=wait, on_wait=_tell)
    finally:
        model.close()
    console.print(f"request {req.id} cancelled ({len(req.ids)} id(s) released); the served "
                  f"version is unchanged.")


def _request_line(r: dict) -> str | None:
    owner = r["owner"] or {}
    who = (f"pid {owner.get('pid')} on {owner.get('host')}" if owner else
           "its process, of an older obliviate that recorded no owner,")
    if r["state"] == "in progress":
        age = owner.get("heartbeat_age_s")
        beat = f", heartbeat {age:.0f}s ago" if age is not None else ""
        return f"request {r['id']}: in progress by {who} since {owner.get('since')} UTC{beat}"
    if r["state"] == "abandoned":
        return (f"request {r['id']}: abandoned ({who} is gone); 'obliviate sisa forget DIR' "
                f"resumes it, 'obliviate sisa cancel DIR {r['id']}' drops it")
    if r["state"] == "failed":
        return (f"request {r['id']}: failed: {r['reason']}; 'obliviate sisa retry DIR {r['id']}'"
                f" or 'obliviate sisa cancel DIR {r['id']}'")
    return None


@app.command()
def status(
    path: Annotated[Path, typer.Argument(help="SISA model folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
) -> None:
    """Show the plan, the served version and every deletion request (read-only)."""
    from obliviate.cli.app import console

    model = _open(path)
    try:
        info = model.status()
    finally:
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
        table.add_row(str(r["id"]), r["created"], r["state"], str(r["n_ids"]),
                      ", ".join(map(str, r["shards"] or {})) or "-", str(r["version"] or "-"),
                      f"{r['seconds']:.2f}" if r["seconds"] is not None else "-")
    console.print(table)
    for r in info["requests"]:
        line = _request_line(r)
        if line:
            console.print(line.replace("DIR", str(path)), soft_wrap=True)
    writer = info["writer"]
    if writer and not info["in_progress"]:
        console.print(f"the writer lock is held by pid {writer.get('pid')} on "
                      f"{writer.get('host')} ('{writer.get('doing')}')", soft_wrap=True)
