"""Bad input to the ``obliviate`` command line: exit 2, one line naming the problem and the fix,
no traceback, nothing half-written in --out.

Each case is a command line (``{t}`` is a scratch folder holding the files ``_files`` writes)
and a text its one stderr line must contain. The cases named in ``THROUGH_EXECUTABLE`` (one per
command and kind of error) run through the real executable, in parallel subprocesses; the others
run the same entry point (``obliviate.cli.main``) in this process, which saves an interpreter and
a torch import (about 5 s of CPU) per case.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO

EXE = shutil.which("obliviate")
FAST = ["--set", "recipe.epochs=1"]

CASES: list[tuple[str, list[str], str]] = [
    # the command-line framework's own usage errors
    ("seeds not an int", ["bench", "digits", "--seeds", "abc"], "Invalid value for '--seeds'"),
    ("unknown flag", ["bench", "digits", "--nosuchflag"], "No such option: --nosuchflag"),
    ("option without value", ["bench", "digits", "-m"], "requires an argument"),
    ("unknown command", ["benchh"], "No such command 'benchh'"),
    ("missing scenario", ["bench"], "Missing SCENARIO"),
    ("sisa forget without folder", ["sisa", "forget"], "Missing argument"),
    ("report without folder", ["report"], "Missing argument"),
    ("validate without file", ["validate"], "Missing argument"),
    ("models not an int", ["bench", "digits", "--models", "x"], "Invalid value for '--models'"),
    # names
    ("unknown scenario", ["bench", "digts"], "Unknown scenario 'digts'. Did you mean 'digits'?"),
    ("unknown method", ["bench", "digits", "-m", "fintune"],
     "Unknown method 'fintune'. Did you mean 'finetune'?"),
    ("LM method on digits", ["bench", "digits", "-m", "npo"],
     "Method 'npo' works on language models, and digits is a classifier"),
    ("classifier method on LM", ["bench", "tofu-mini", "-m", "finetune"],
     "Method 'finetune' works on"),
    ("unknown method listing", ["methods", "scrubb"], "Did you mean 'scrub'?"),
    ("unknown protocol", ["bench", "digits", "--protocol", "quik"],
     "Unknown protocol 'quik'. Did you mean 'quick'?"),
    ("LM protocol on digits", ["bench", "digits", "--protocol", "tofu"],
     "The tofu protocol scores lm models, not classification ones"),
    ("classifier protocol on LM", ["bench", "tofu-mini", "--protocol", "challenge"],
     "Use --protocol robustness or sequential or tofu"),
    ("method module missing", ["bench", "digits", "-m", "nosuchmodule:fn"],
     "Cannot import module 'nosuchmodule'"),
    ("method function missing", ["bench", "digits", "-m", "json:nosuchfn"],
     "Module 'json' has no function 'nosuchfn'"),
    ("method twice", ["bench", "digits", "-m", "finetune", "-m", "finetune"], "listed twice"),
    ("unknown executor", ["bench", "digits", "--executor", "dask"], "Unknown executor 'dask'"),
    ("address without ray", ["bench", "digits", "--address", "127.0.0.1:1"],
     "add --executor ray"),
    ("unknown device", ["bench", "digits", "--device", "tpu"], "Unknown device 'tpu'"),
    ("cuda without GPU", ["bench", "digits", "--device", "cuda"], "torch sees no CUDA GPU"),
    ("zero seeds", ["bench", "digits", "--seeds", "0"], "--seeds must be an int >= 1"),
    ("too few models", ["bench", "digits", "--protocol", "challenge", "--models", "2"],
     "--models must be an int >= 3"),
    ("models on quick", ["bench", "digits", "--models", "10"], "Drop --models"),
    ("tune without method", ["tune", "digits"], "Missing option '--method'"),
    ("tune grid without values", ["tune", "digits", "-m", "finetune", "--grid", "epochs"],
     "--grid takes KEY=V1,V2"),
    ("tune unknown parameter", ["tune", "digits", "-m", "finetune", "--grid", "nope=1"],
     "finetune has no parameter 'nope'"),
    ("tune bad seeds", ["tune", "digits", "-m", "finetune", "--seeds", "x"],
     "--seeds takes comma-separated integers"),
    ("tune set not scenario/recipe", ["tune", "digits", "-m", "finetune", "--set", "a=1"],
     "--set takes scenario.KEY=VALUE or recipe.KEY=VALUE"),
    ("tune too few models", ["tune", "digits", "-m", "finetune", "--models", "2"],
     "tune needs models >= 3"),
    ("tune unknown scenario", ["tune", "digts", "-m", "finetune"], "Did you mean 'digits'?"),
    ("tune a classifier method on an LM scenario", ["tune", "tofu-mini", "-m", "finetune"],
     "tofu-mini is a language model"),
    ("tune LM method on digits", ["tune", "digits", "-m", "npo"], "works on language models"),
    ("unknown model", ["bench", "digits", "--model", "resnet5000"], "resnet5000"),
    # forget specs
    ("forget not a number", ["bench", "digits", "--forget", "random:abc"], "is not a number"),
    ("forget zero", ["bench", "digits", "--forget", "random:0"], "must be at least 1"),
    ("forget nan", ["bench", "digits", "--forget", "random:nan"], "not a finite number"),
    ("forget inf", ["bench", "digits", "--forget", "random:inf"], "not a finite number"),
    ("forget fraction > 1", ["bench", "digits", "--forget", "random:1.5"],
     "strictly between 0 and 1"),
    ("forget absent class", ["bench", "digits", "--forget", "class:42"], "Class 42"),
    ("forget everything", ["bench", "digits", "--forget", "random:1258"],
     "leaving nothing to retain"),
    ("forget unknown kind", ["bench", "digits", "--forget", "bogus:1"],
     "Unknown forget kind 'bogus'"),
    ("forget without colon", ["bench", "digits", "--forget", "random"], "Malformed forget spec"),
    ("forget classes not ints", ["bench", "digits", "--forget", "classes:a,b"],
     "classes must be integers"),
    ("groups without groups", ["bench", "digits", "--forget", "groups:0.1"],
     "Scenario 'digits' has no groups"),
    ("mislabeled fraction", ["bench", "digits", "--forget", "mislabeled:2"],
     "strictly between 0 and 1"),
    ("ids file missing", ["bench", "digits", "--forget", "ids:{t}/nowhere.txt"],
     "does not exist"),
    ("ids 23 digits", ["bench", "digits", "--forget", "ids:{t}/huge.txt"],
     "far outside any training set"),
    ("ids out of range", ["bench", "digits", "--forget", "ids:{t}/range.txt"], "out of range"),
    ("ids twice", ["bench", "digits", "--forget", "ids:{t}/twice.txt"], "more than once"),
    ("ids empty", ["bench", "digits", "--forget", "ids:{t}/empty.txt"], "lists no index"),
    ("ids not ints", ["bench", "digits", "--forget", "ids:{t}/words.txt"],
     "is not an integer training index"),
    # --set
    ("negative lr", ["bench", "digits", "--set", "finetune.lr=-1"],
     "The 'lr' parameter of finetune must be a float > 0. Got '-1' instead."),
    ("infinite lr", ["bench", "digits", "--set", "finetune.lr=inf"],
     "The 'lr' parameter of finetune must be a float > 0. Got 'inf' instead."),
    ("nan lr", ["bench", "digits", "--set", "finetune.lr=nan"], "The 'lr' parameter of finetune"),
    ("zero epochs", ["bench", "digits", "--set", "neggrad.epochs=0"],
     "The 'epochs' parameter of neggrad must be an int >= 1"),
    ("set names absent method", ["bench", "digits", "--set", "scrub.epochs=3"],
     "neither a method of this bench"),
    ("malformed set", ["bench", "digits", "--set", "lr"], "Malformed --set 'lr'"),
    ("unknown parameter", ["bench", "digits", "--set", "finetune.nosuch=1"],
     "finetune has no parameter 'nosuch'"),
    ("recipe epochs zero", ["bench", "digits", "--set", "recipe.epochs=0"],
     "The 'epochs' parameter of recipe"),
    ("scenario option", ["bench", "digits", "--set", "scenario.split_seed=-1"],
     "The 'split_seed' parameter of scenario digits"),
    ("protocol option", ["bench", "digits", "--protocol", "challenge", "--set",
                         "protocol.cutoff=0"], "The 'cutoff' parameter of protocol challenge"),
    ("protocol option on quick", ["bench", "digits", "--set", "protocol.cutoff=1"],
     "neither a method of this bench"),
    ("cross-field rule", ["bench", "digits", "-m", "reset-distill", "--set",
                          "reset-distill.reset_start=0.5", "--set", "reset-distill.reset_end=0.2"],
     "must be >= reset_start"),
    ("rule needing the model", ["bench", "digits", "-m", "cf-k", "--set", "cf-k.k=40"],
     "The 'k' parameter of cf-k must be at most the model's number of layers"),
    ("l1 epochs rule", ["bench", "digits", "-m", "l1-sparse", "--set", "l1-sparse.epochs=5",
                        "--set", "l1-sparse.no_l1_epochs=9"], "must be below epochs"),
    # YAML
    ("config missing", ["bench", "--config", "{t}/nowhere.yaml"], "does not exist"),
    ("config not YAML", ["bench", "--config", "{t}/broken.yaml"], "is not valid YAML"),
    ("config a list", ["bench", "--config", "{t}/list.yaml"], "must be a flat mapping"),
    ("config methods int", ["bench", "--config", "{t}/methods5.yaml"],
     "The 'methods' setting must be a list of method names"),
    ("config set int", ["bench", "--config", "{t}/set5.yaml"], "The 'set' setting must be"),
    ("config out list", ["bench", "--config", "{t}/outlist.yaml"],
     "The 'out' setting must be a folder path"),
    ("config scenario list", ["bench", "--config", "{t}/scenariolist.yaml"],
     "The 'scenario' setting must be a string"),
    ("config unknown key", ["bench", "--config", "{t}/unknown.yaml"],
     "Unknown bench setting 'metods'. Did you mean 'methods'?"),
    ("validate methods int", ["validate", "{t}/methods5.yaml"], "The 'methods' setting"),
    ("validate not YAML", ["validate", "{t}/broken.yaml"], "is not valid YAML"),
    # data
    ("custom without data", ["bench", "custom"], "needs data=KIND:PATH"),
    ("data file missing", ["bench", "custom", "--data", "npz:{t}/nowhere.npz"],
     "does not exist"),
    ("data unknown kind", ["bench", "custom", "--data", "parquet:{t}/x"],
     "Unknown data kind 'parquet'"),
    ("data on a built-in scenario", ["bench", "digits", "--data", "npz:{t}/x.npz"],
     "gives your own data to the 'custom' scenario"),
    ("tune data on a built-in scenario", ["tune", "digits", "-m", "finetune", "--data",
                                          "npz:{t}/x.npz"], "run `obliviate bench custom"),
    # run directories
    ("out is a file", ["bench", "digits", "--out", "{t}/a-file/run"],
     "lies under the file"),
    ("corrupt store", ["bench", "digits", "-m", "finetune", "--out", "{t}/corrupt"],
     "is damaged"),
    ("store of another experiment", ["bench", "digits", "-m", "finetune", "--out", "{t}/other"],
     "holds another experiment"),
    ("report not a run", ["report", "{t}"], "is not a run directory"),
    ("report corrupt store", ["report", "{t}/corrupt"], "is damaged"),
    # sisa
    ("sisa not a model", ["sisa", "forget", "{t}", "--ids", "{t}/range.txt"],
     "is not a SISA model directory"),
    ("sisa zero shards", ["sisa", "train", "digits", "--out", "{t}/sisa", "--shards", "0"],
     "at least one shard"),
]

# Through the real executable: one case per command (each loads its own modules at start-up),
# and an unknown command; test_bad_inputs_refused_early.py adds the thread-variable screen and
# the two tests at the end of this file a held directory and a narrow terminal.
THROUGH_EXECUTABLE = {"seeds not an int", "unknown command", "validate methods int",
                      "corrupt store", "report not a run", "sisa not a model", "tune bad seeds"}


def _files(t: Path) -> None:
    (t / "huge.txt").write_text("3\n" + "1" * 23 + "\n")
    (t / "range.txt").write_text("3\n99999\n")
    (t / "twice.txt").write_text("3\n3\n")
    (t / "empty.txt").write_text("# nothing\n")
    (t / "words.txt").write_text("3\nseven\n")
    (t / "broken.yaml").write_text("scenario: [digits\n")
    (t / "list.yaml").write_text("- digits\n")
    (t / "methods5.yaml").write_text("scenario: digits\nmethods: 5\n")
    (t / "set5.yaml").write_text("scenario: digits\nset: 5\n")
    (t / "outlist.yaml").write_text("scenario: digits\nout: [1, 2]\n")
    (t / "scenariolist.yaml").write_text("scenario: [digits]\n")
    (t / "unknown.yaml").write_text("scenario: digits\nmetods: [finetune]\n")
    (t / "a-file").write_text("x")
    (t / "corrupt").mkdir()
    (t / "corrupt" / "results.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    (t / "corrupt" / "config.json").write_text("{}")
    (t / "corrupt" / "leaderboard.csv").write_text("method\n")
    (t / "other").mkdir()
    with sqlite3.connect(t / "other" / "results.sqlite") as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('experiment', ?)",
                     (json.dumps({"scenario": {"forget": "class:3"}}),))
        conn.execute("INSERT INTO meta VALUES ('fingerprint', 'another')")


def _listing(t: Path) -> dict[str, tuple[float, int]]:
    """Every file under ``t`` with its modification time and size (a bench's lock file, which
    holds nothing once its bench is gone, is not a result)."""
    return {str(p.relative_to(t)): (p.stat().st_mtime, p.stat().st_size) for p in t.rglob("*")
            if p.is_file() and p.name != ".obliviate.lock"}


def _run(args: list[str], cwd: Path, extra: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    """``obliviate ARGS`` in ``cwd``; ``extra``: environment variables set on top."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
           **(extra or {})}
    try:
        return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"obliviate {' '.join(args)} timed out after 300 s (a machine this "
                             f"busy cannot judge the case; nothing was checked)") from exc


# Warnings a fresh interpreter does not print (Python's default filters).
_SILENT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _in_process(args: list[str], cwd: Path, extra: dict[str, str] | None = None,
                path: Path | None = None) -> subprocess.CompletedProcess:
    """``obliviate ARGS`` run by the executable's entry point in this process, in ``cwd`` with
    the variables ``extra`` set and ``path`` on ``sys.path`` for the call; an exception that
    escapes is a traceback on stderr and status 1, and a warning is a line on stderr, as in a
    process of its own. The working directory, environment, ``sys.path``, modules imported from
    ``path`` and torch's thread count are restored afterwards."""
    from obliviate.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd_before, env_before, path_before = os.getcwd(), dict(os.environ), list(sys.path)
    modules_before, threads = set(sys.modules), torch.get_num_threads()
    os.chdir(cwd)
    os.environ.update(extra or {})
    if path is not None:
        sys.path.insert(0, str(path))
    try:
        with warnings.catch_warnings(record=True) as caught, redirect_stdout(out), \
                redirect_stderr(err):
            warnings.simplefilter("default")
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except Exception:  # noqa: BLE001 - what the interpreter would print
                traceback.print_exc(file=err)
                code = 1
        for w in caught:
            if not issubclass(w.category, _SILENT):
                err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    finally:
        os.chdir(cwd_before)
        os.environ.clear()
        os.environ.update(env_before)
        sys.path[:] = path_before
        if path is not None:
            for name in set(sys.modules) - modules_before:
                if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(path)):
                    del sys.modules[name]
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def run_cases(commands: dict[str, tuple[list[str], dict[str, str]]], t: Path, real: set[str],
              path: Path | None = None) -> dict[str, subprocess.CompletedProcess]:
    """Each named command line (with its extra environment) in ``t``: those in ``real`` through
    the executable in parallel subprocesses (``path`` added to their PYTHONPATH), the others in
    this process meanwhile, one after another."""
    assert real <= set(commands), real - set(commands)

    def subprocess_run(name):
        args, extra = commands[name]
        if path is not None:
            extra = {"PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{path}",
                     "PYTHONDONTWRITEBYTECODE": "1", **extra}
        return name, _run(args, t, extra)

    with ThreadPoolExecutor(max_workers=2) as pool:
        started = [pool.submit(subprocess_run, name) for name in commands if name in real]
        dont_write = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            done = {name: _in_process(commands[name][0], t, commands[name][1], path)
                    for name in commands if name not in real}
        finally:
            sys.dont_write_bytecode = dont_write
        done.update(future.result() for future in started)
    return done


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    t = tmp_path_factory.mktemp("bad")
    _files(t)
    before = _listing(t)
    commands = {name: ([a.format(t=t) for a in args], {}) for name, args, _ in CASES}
    return run_cases(commands, t, THROUGH_EXECUTABLE), t, before


def test_there_are_enough_cases():
    assert len({name for name, _, _ in CASES}) == len(CASES) >= 60
    commands = {args[0] for name, args, _ in CASES if name in THROUGH_EXECUTABLE}
    assert commands == {"bench", "benchh", "validate", "report", "sisa", "tune"}


@pytest.mark.skipif(EXE is None, reason="the obliviate executable is not installed")
@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(results, name, args, message):
    done, t, before = results
    result = done[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]
    assert lines[0].startswith("obliviate: error: ") or "validate" in args[0]


@pytest.mark.skipif(EXE is None, reason="the obliviate executable is not installed")
def test_nothing_was_written_by_any_bad_input(results):
    _, t, before = results
    after = _listing(t)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    assert not new and not changed, (new, changed)


def test_a_bench_holding_its_directory_refuses_a_second_one(tmp_path):
    from obliviate.bench.ownership import DirectoryLock

    out = tmp_path / "held"
    out.mkdir()
    lock = DirectoryLock(out)
    try:
        result = _run(["bench", "digits", "-m", "finetune", *FAST, "--out", str(out)], tmp_path)
    finally:
        lock.close()
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and f"pid {os.getpid()}" in line and "in use" in line


def test_exit_2_lines_are_one_line_in_a_narrow_terminal(tmp_path):
    env_cols = {**os.environ, "COLUMNS": "40", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-m", "obliviate", "bench", "digits", "--forget",
                             "random:abc"], capture_output=True, text=True, env=env_cols,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert np.char.count(result.stderr, "random:abc") >= 1
