"""Bench end to end: store, leaderboard, resume after a kill, one experiment per directory,
deterministic failures kept, users' own methods.

Every bench here trains the smallest recipe that still shows the behaviour (the digits MLP for
two epochs), so the tests do not depend on the machine's speed; a subprocess that runs past its
time-out says so. The killed bench and a run in a narrow terminal go through a process of their
own; the other command lines run the executable's entry point in this process (``here``), which
saves an interpreter and a torch import per command.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd

from conftest import REPO, main_in_process, run_cli

TINY = ["--model", "mlp", "--set", "recipe.epochs=2"]
ARGS = ["bench", "digits", "-m", "finetune", "-m", "neggrad", "-m", "random-label", *TINY,
        "--set", "finetune.epochs=1", "--set", "random-label.epochs=1", "--set", "neggrad.lr=0.01"]
TIME_COLUMNS = [c for c in ("time_s", "time_s_std", "time_ratio", "time_ratio_std")]


def here(capsys, *args) -> subprocess.CompletedProcess:
    """``obliviate ARGS`` through its entry point in this process."""
    code, out, err = main_in_process(capsys, *args)
    return subprocess.CompletedProcess(args, code, out, err)


def _board(path):
    return pd.read_csv(path / "leaderboard.csv").drop(columns=TIME_COLUMNS)


def _done(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE kind='method'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_bench_writes_results_and_resumes_after_a_kill(tmp_path, capsys):
    full = tmp_path / "full"
    result = here(capsys, *ARGS, "--out", str(full))
    assert result.returncode == 0, result.stderr
    assert "retrain (reference)" in result.stdout and "finetune" in result.stdout
    board = pd.read_csv(full / "leaderboard.csv")
    assert board["method"].tolist()[:2] == ["original", "retrain (reference)"]
    assert set(board["method"]) == {"original", "retrain (reference)", "finetune", "neggrad",
                                    "random-label"}
    config = json.loads((full / "config.json").read_text())
    assert config["scenario"]["split_hashes"]["forget"]
    assert config["methods"]["finetune"]["config"]["epochs"] == 1
    assert config["versions"]["torch"] and config["protocol_version"] == "quick/1"
    assert len(config["machine"]["load_average"]) == 3  # beside every wall time
    assert list((full / "models").glob("*.safetensors"))

    # killed as soon as the first method finished, then started again
    part = tmp_path / "part"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "obliviate", *ARGS, "--out", str(part),
                             "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _done(part / "results.sqlite") < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert time.time() < deadline, "timed out waiting for the first job (a very busy machine)"
    if _done(part / "results.sqlite") < 3:  # killed midway (else it finished first: still valid)
        assert not (part / "leaderboard.csv").exists()
    resumed = here(capsys, *ARGS, "--out", str(part), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(_board(full), _board(part))

    # a second run of a finished bench re-runs nothing
    with sqlite3.connect(full / "results.sqlite") as conn:
        stamps = conn.execute("SELECT key, finished_at FROM runs ORDER BY key").fetchall()
    narrow = run_cli(*ARGS, "--out", str(full), env={"COLUMNS": "80"})  # nothing re-runs
    assert narrow.returncode == 0, narrow.stderr
    assert "[lo, hi] in leaderboard.md" in narrow.stdout  # the legend's text, not Rich markup
    assert "…" not in narrow.stdout and max(map(len, narrow.stdout.splitlines())) <= 80
    assert "status" in narrow.stdout.split("─")[0]
    again = here(capsys, *ARGS, "--out", str(full), "--json")
    assert again.returncode == 0
    assert {r["method"] for r in json.loads(again.stdout)} >= {"finetune", "neggrad"}
    with sqlite3.connect(full / "results.sqlite") as conn:
        assert conn.execute("SELECT key, finished_at FROM runs ORDER BY key").fetchall() == stamps


def test_a_directory_holds_one_experiment_and_may_be_extended(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["bench", "digits", "-m", "finetune", *TINY, "--set", "finetune.epochs=1", "--quiet",
            "--out", out]
    assert here(capsys, *base).returncode == 0
    # another forget set, model or recipe is another experiment: refused, nothing written
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    for extra, setting in ((["--forget", "class:3"], "scenario.forget"),
                           (["--set", "recipe.lr=0.01"], "scenario.recipe.lr")):
        refused = here(capsys, *base, *extra)
        assert refused.returncode == 2 and "holds another experiment" in refused.stderr
        assert setting in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    changed = here(capsys, *base[:-2], "--set", "finetune.lr=0.01", "--out", out)
    assert changed.returncode == 2 and "method 'finetune' with another configuration" in \
        changed.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    # more methods and more seeds extend it; the leaderboard holds everything recorded
    extended = here(capsys, *base, "-m", "neggrad", "--set", "neggrad.lr=0.01", "--seeds", "2")
    assert extended.returncode == 0, extended.stderr
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("method")
    assert board.loc["finetune", "seeds"] == 2 and board.loc["neggrad", "seeds"] == 2
    narrower = here(capsys, *base)  # naming fewer methods and seeds reports all that is recorded
    assert narrower.returncode == 0 and "neggrad" in narrower.stdout
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert set(config["methods"]) == {"finetune", "neggrad"} and config["seeds"] == [0, 1]


def test_a_diverged_job_is_kept_until_asked_to_retry(tmp_path, capsys):
    args = ["bench", "digits", "-m", "neggrad", "-m", "finetune", *TINY, "--set",
            "neggrad.lr=10000", "--set", "neggrad.epochs=50", "--set", "finetune.epochs=1",
            "--out", str(tmp_path / "run"), "--quiet"]
    result = here(capsys, *args)
    assert result.returncode == 1
    assert "neggrad: the loss became" in result.stderr and "Traceback" not in result.stderr
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("method")
    assert board.loc["neggrad", "status"].startswith("failed")
    assert board.loc["finetune", "status"] == "ok"
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as conn:
        first = conn.execute("SELECT finished_at, error_kind FROM runs WHERE method='neggrad'"
                             ).fetchone()
    assert first[1] == "diverged"
    time.sleep(1.1)  # finished_at has one-second resolution
    again = here(capsys, *args)  # a resume does not run the deterministic failure again
    assert again.returncode == 1 and "neggrad" in again.stderr
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as conn:
        assert conn.execute("SELECT finished_at FROM runs WHERE method='neggrad'"
                            ).fetchone()[0] == first[0]
    retried = here(capsys, *args, "--retry-failed")
    assert retried.returncode == 1
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as conn:
        assert conn.execute("SELECT finished_at FROM runs WHERE method='neggrad'"
                            ).fetchone()[0] != first[0]


USER_METHOD = '''
from dataclasses import dataclass
import torch

@dataclass(frozen=True)
class ShrinkConfig:
    factor: float = 0.5

def shrink(model, data, cfg: ShrinkConfig):
    """Scale every weight down (a deliberately bad 'method' for testing)."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(cfg.factor)
    return model
'''


def test_users_own_method_is_scored(tmp_path):
    (tmp_path / "my_methods.py").write_text(USER_METHOD)
    result = run_cli("bench", "digits", "-m", "my_methods:shrink", *TINY, "--set",
                     "my_methods:shrink.factor=0.9", "--out", str(tmp_path / "run"), "--quiet",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("method")
    assert "my_methods:shrink" in board.index
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["methods"]["my_methods:shrink"]["config"] == {"factor": 0.9}
