"""Bench end to end: store, leaderboard, resume after a kill, users' own methods."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd

from conftest import REPO, run_cli

ARGS = ["bench", "digits", "-m", "finetune", "-m", "neggrad", "-m", "random-label",
        "--set", "finetune.epochs=2"]
TIME_COLUMNS = [c for c in ("time_s", "time_s_std", "time_ratio", "time_ratio_std")]


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


def test_bench_writes_results_and_resumes_after_a_kill(tmp_path):
    full = tmp_path / "full"
    result = run_cli(*ARGS, "--out", str(full))
    assert result.returncode == 0, result.stderr
    assert "retrain (reference)" in result.stdout and "finetune" in result.stdout
    board = pd.read_csv(full / "leaderboard.csv")
    assert board["method"].tolist()[:2] == ["original", "retrain (reference)"]
    assert set(board["method"]) == {"original", "retrain (reference)", "finetune", "neggrad",
                                    "random-label"}
    config = json.loads((full / "config.json").read_text())
    assert config["scenario"]["split_hashes"]["forget"]
    assert config["methods"]["finetune"]["config"]["epochs"] == 2
    assert config["versions"]["torch"]
    assert list((full / "models").glob("*.safetensors"))

    # killed as soon as the first method finished, then started again
    part = tmp_path / "part"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "obliviate", *ARGS, "--out", str(part),
                             "--quiet"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _done(part / "results.sqlite") < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _done(part / "results.sqlite") < 3, "the bench finished before it could be killed"
    resumed = run_cli(*ARGS, "--out", str(part), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(_board(full), _board(part))

    # a second run of a finished bench re-runs nothing
    with sqlite3.connect(full / "results.sqlite") as conn:
        stamps = conn.execute("SELECT key, finished_at FROM runs ORDER BY key").fetchall()
    again = run_cli(*ARGS, "--out", str(full), "--json")
    assert again.returncode == 0
    assert {r["method"] for r in json.loads(again.stdout)} >= {"finetune", "neggrad"}
    with sqlite3.connect(full / "results.sqlite") as conn:
        assert conn.execute("SELECT key, finished_at FROM runs ORDER BY key").fetchall() == stamps


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
    result = run_cli("bench", "digits", "-m", "my_methods:shrink", "--set",
                     "my_methods:shrink.factor=0.9", "--out", str(tmp_path / "run"), "--quiet",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("method")
    assert "my_methods:shrink" in board.index
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["methods"]["my_methods:shrink"]["config"] == {"factor": 0.9}


def test_diverging_method_is_reported_and_others_kept(tmp_path):
    result = run_cli("bench", "digits", "-m", "neggrad", "-m", "finetune", "--set",
                     "neggrad.lr=10000", "--set", "neggrad.epochs=50", "--set",
                     "finetune.epochs=1", "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 1
    assert "neggrad: the loss became" in result.stderr and "Traceback" not in result.stderr
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv").set_index("method")
    assert board.loc["neggrad", "status"].startswith("failed")
    assert board.loc["finetune", "status"] == "ok"
