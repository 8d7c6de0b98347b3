"""Executors against a real local Ray cluster: identical tables, failures retried then reported."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import textwrap

import pandas as pd
import pytest
import torch

from conftest import run_cli

ray = pytest.importorskip("ray")

HELPERS = '''
import os
from pathlib import Path


def flaky(marker: str, value: int) -> int:
    """Fails on its first call (leaves a marker), succeeds on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("flaky on the first attempt")
    return value * 2


def always_fails(tag: str) -> None:
    raise RuntimeError(f"boom {tag}")


def diverges() -> None:
    from obliviate.errors import TrainingDivergedError
    raise TrainingDivergedError("the loss became nan")


def crashing_method(model, data, cfg):
    """A user method that always raises: the bench must report it, not lose it."""
    raise RuntimeError("crashing_method cannot run")
'''

TINY = ["--set", "recipe.epochs=4", "--set", "finetune.epochs=1", "--set", "neggrad.epochs=1"]
TIME = ("time_s", "time_ratio", "time_retrain_s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for this module; the helper module is importable by its workers."""
    folder = tmp_path_factory.mktemp("ray_helpers")
    (folder / "ray_helpers.py").write_text(textwrap.dedent(HELPERS))
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), old) if p)
    sys.path.insert(0, str(folder))
    temp = tempfile.mkdtemp(prefix="ob-ray-t", dir="/tmp")  # short: Ray's socket paths
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             _temp_dir=temp)
    yield folder
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
    os.environ["PYTHONPATH"] = old
    sys.path.remove(str(folder))


def _without_time(path):
    board = pd.read_csv(path / "leaderboard.csv")
    return board.drop(columns=[c for c in board if c.startswith(TIME)])


def _bench(out, executor, *, extra=(), **kw):
    from obliviate.bench.config import BenchConfig
    from obliviate.bench.runner import BenchRun

    owners = {"recipe", *kw["methods"]}
    cfg = BenchConfig("digits", out=out, executor=executor, quiet=True,
                      set=[*(s for s in TINY if s.split(".")[0] in owners), *extra], **kw)
    return BenchRun(cfg).run()


def test_ray_cluster_started_for_the_run_gives_the_local_table(tmp_path):
    # 2 seeds: 4 reference models, then 4 (seed, method) unlearning runs, as Ray tasks
    _bench(tmp_path / "local", "local", methods=["finetune", "neggrad"], seeds=2)
    remote = run_cli("bench", "digits", "-m", "finetune", "-m", "neggrad", "--seeds", "2",
                     *TINY, "--quiet", "--executor", "ray", "--out", str(tmp_path / "ray"),
                     # the same torch thread count as this process (Ray tasks take the
                     # driver's): float sums over other thread counts round differently
                     env={"OMP_NUM_THREADS": str(torch.get_num_threads())})
    assert remote.returncode == 0, remote.stderr
    pd.testing.assert_frame_equal(_without_time(tmp_path / "local"),
                                  _without_time(tmp_path / "ray"))


def test_challenge_runs_on_an_existing_cluster_give_the_local_table(cluster, tmp_path):
    # the N unlearning runs of each method are the tasks; ray.init already ran in this process
    for executor in ("local", "ray"):
        _bench(tmp_path / executor, executor, methods=["finetune"], protocol="challenge",
               models=3, cache=tmp_path / "cache",
               # the per-run path on both (locally the runs would train as populations,
               # equal to these up to float rounding)
               extra=["protocol.population_runs=false"])
    pd.testing.assert_frame_equal(_without_time(tmp_path / "local"),
                                  _without_time(tmp_path / "ray"))
    assert ray.is_initialized()  # a cluster the bench did not start is left running


@pytest.mark.parametrize("name", ["local", "ray"])
def test_a_failed_task_is_retried_once_then_reported(cluster, tmp_path, name):
    import ray_helpers

    from obliviate.bench.executors import LocalExecutor, RayExecutor, Task

    ex = LocalExecutor() if name == "local" else RayExecutor()
    tasks = [Task(ray_helpers.flaky, (str(tmp_path / "marker"), 21), "flaky", "flaky"),
             Task(ray_helpers.always_fails, ("x",), "fails", "fails"),
             Task(ray_helpers.diverges, (), "diverges", "diverges")]
    outcomes = {o.task.tag: o for o in ex.map(tasks)}
    ex.close()
    assert set(outcomes) == {"flaky", "fails", "diverges"}  # nothing dropped
    assert outcomes["flaky"].ok and outcomes["flaky"].value == 42
    assert outcomes["flaky"].attempts == 2
    fails = outcomes["fails"]
    assert not fails.ok and fails.attempts == 2 and "boom x" in str(fails.error)
    assert "failed 2 attempts" in fails.describe_error()
    # a diverged method is a result, not an accident: reported at once
    assert outcomes["diverges"].attempts == 1 and not outcomes["diverges"].ok
    if name == "ray":
        assert ray.is_initialized()  # an existing cluster is used, not shut down


def test_a_crashing_method_on_ray_is_reported_and_the_others_kept(cluster, tmp_path):
    from obliviate.bench.config import BenchConfig
    from obliviate.bench.runner import BenchRun

    cfg = BenchConfig("digits", methods=["finetune", "ray_helpers:crashing_method"],
                      executor="ray", out=tmp_path / "run", quiet=True,
                      set=["recipe.epochs=4", "finetune.epochs=1"])
    run = BenchRun(cfg)
    board = run.run().set_index("method")
    assert board.loc["finetune", "status"] == "ok"
    status = board.loc["ray_helpers:crashing_method", "status"]
    assert status.startswith("failed") and "crashing_method cannot run" in status
    assert "failed 2 attempts" in status
    assert len(run.failures) == 1


def test_address_without_ray_executor_is_refused(tmp_path):
    result = run_cli("bench", "digits", "--address", "ray://nowhere:1", "--out",
                     str(tmp_path / "r"))
    assert result.returncode == 2
    assert "--executor ray" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_cluster_is_refused_at_once(tmp_path):
    result = run_cli("bench", "digits", "--executor", "ray", "--address", "127.0.0.1:1",
                     "--out", str(tmp_path / "r"), timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Cannot reach the Ray cluster at --address 127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr
