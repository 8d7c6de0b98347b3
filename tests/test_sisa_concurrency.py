"""SISA with several real processes on one model folder: the writer lock, owners, compare-and-set.

Process A is stopped at a known point with the test-only hook
``OBLIVIATE_SISA_PAUSE_AFTER_<STAGE>`` (it writes ``PATH.paused`` and waits for ``PATH``), so
every interleaving below is deterministic. The reference for every outcome is the ensemble
trained from scratch (``train_shard`` from slice 0) without the ids of every served request.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import obliviate as ob
from conftest import REPO
from obliviate.sisa import SisaModel, train_shard
from obliviate.sisa.deletion import run
from obliviate.sisa.owner import Owner

RECIPE = ob.Recipe(optimizer="sgd", lr=0.05, epochs=2, batch_size=64)
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sc = ob.load_scenario("digits", model="mlp")
    root = tmp_path_factory.mktemp("sisa") / "model"
    SisaModel.train(root, sc.splits.x_train[:400], sc.splits.y_train[:400], model_name="mlp",
                    shards=4, slices=2, recipe=RECIPE, seed=0, num_classes=10).close()
    return root


@pytest.fixture
def folder(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "m")
    return tmp_path / "m"


def ids_file(tmp_path, name, ids):
    path = tmp_path / name
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


def start(logs, *args, pause=None, stage="PLAN"):
    """``python -m obliviate sisa ARGS`` in the background, its output in ``logs``.out/.err."""
    env = dict(ENV)
    if pause is not None:
        env[f"OBLIVIATE_SISA_PAUSE_AFTER_{stage}"] = str(pause)
    with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "obliviate", "sisa", *map(str, args)],
                                env=env, stdout=out, stderr=err, text=True)
    proc.logs = logs
    return proc


def sisa(*args):
    """``obliviate sisa ARGS`` in a subprocess (a process of its own, with its own pid)."""
    return subprocess.run([sys.executable, "-m", "obliviate", "sisa", *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=180)


def cli(capsys, *args):
    """``obliviate sisa ARGS`` in this process (faster; for steps that need no pid of their
    own): (exit code, stdout, stderr)."""
    from obliviate.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sisa", *map(str, args)])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def wait_for(check, proc, what, timeout=120):
    deadline = time.time() + timeout
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"process ended before {what}: {finish(proc)}")
        assert time.time() < deadline, f"never: {what}"
        time.sleep(0.05)


def finish(proc, timeout=180):
    proc.wait(timeout)
    return (proc.returncode, open(f"{proc.logs}.out").read(), open(f"{proc.logs}.err").read())


def paused(proc, release):
    wait_for(lambda: release.with_name(release.name + ".paused").exists(), proc,
             f"{release.name}.paused")


def race_ids(model):
    """A: three ids in shards 0, 1 and 3; B: one id in shard 3, which A retrains too."""
    m = model.plan.members
    a = sorted(int(v) for v in (m[0][1][0], m[1][0][2], m[3][0][5]))
    return a, [int(m[3][1][4])]


def assert_served_from_scratch(path, deleted):
    model = SisaModel.open(path, recover=False)
    served = model.ensemble().constituents
    for s in range(model.plan.shards):
        ref = train_shard(model.factory, model.x, model.y, model.plan, s, model.recipe,
                          model.seed, deleted=np.array(sorted(deleted), dtype=np.int64))
        got = served[s].state_dict()
        assert all(torch.equal(got[k], v) for k, v in ref.state_dict().items()), f"shard {s}"
    status = model.status()
    model.close()
    return status


def test_second_forget_waits_for_the_first_and_both_deletions_are_served(folder, tmp_path,
                                                                         capsys):
    model = SisaModel.open(folder, recover=False)
    a, b = race_ids(model)
    model.close()
    release = tmp_path / "release-a"
    proc_a = start(tmp_path / "a", "forget", folder, "--ids", ids_file(tmp_path, "a.txt", a),
                   "--quiet", pause=release)
    paused(proc_a, release)  # A planned request 1 and holds the lock; nothing retrained yet
    code, out, err = cli(capsys, "status", folder)
    assert code == 0 and f"request 1: in progress by pid {proc_a.pid}" in out, err
    proc_b = start(tmp_path / "b", "forget", folder, "--ids", ids_file(tmp_path, "b.txt", b),
                   "--quiet")
    wait_for(lambda: "waiting for pid" in (tmp_path / "b.err").read_text(), proc_b, "B waits")
    model = SisaModel.open(folder, recover=False)
    assert len(model.ledger.requests()) == 1  # B records nothing while A holds the folder
    model.close()
    release.touch()
    code_a, out_a, err_a = finish(proc_a)
    code_b, out_b, err_b = finish(proc_b)
    assert code_a == 0 and "request 1: deleted 3 id(s)" in out_a, err_a
    assert code_b == 0 and "request 2: deleted 1 id(s)" in out_b, err_b
    assert f"waiting for pid {proc_a.pid}" in err_b and err_b.count("\n") == 1
    status = assert_served_from_scratch(folder, a + b)
    assert status["deleted"] == 4 and status["version"] == 2
    assert [r["attempts"] for r in status["requests"]] == [1, 1]  # nothing ran twice


def test_no_wait_refuses_while_another_process_writes_and_records_nothing(folder, tmp_path):
    release = tmp_path / "release"
    proc_a = start(tmp_path / "a", "forget", folder, "--ids", ids_file(tmp_path, "a.txt", [5]),
                   "--quiet", pause=release)
    paused(proc_a, release)
    r = sisa("forget", folder, "--ids", ids_file(tmp_path, "b.txt", [6]), "--no-wait", "--quiet")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"is busy: pid {proc_a.pid}" in r.stderr and "--no-wait" in r.stderr
    # a waiting writer killed while it waits leaves nothing behind either
    proc_c = start(tmp_path / "c", "forget", folder, "--ids", ids_file(tmp_path, "c.txt", [7]),
                   "--quiet")
    wait_for(lambda: "waiting for pid" in (tmp_path / "c.err").read_text(), proc_c, "C waits")
    proc_c.kill()
    proc_c.wait(30)
    release.touch()
    assert finish(proc_a)[0] == 0
    model = SisaModel.open(folder, recover=False)
    assert [req.ids for req in model.ledger.requests()] == [(5,)]
    model.close()
    assert_served_from_scratch(folder, [5])


def test_a_writer_that_bypasses_the_lock_makes_the_late_completion_fail_loudly(folder, tmp_path,
                                                                              capsys):
    """The audit's interleaving without a working lock: B deletes id 1 of shard 3 while A
    (ids in shards 0, 1, 3) retrains; A's late completion must not overwrite B's pointers."""
    model = SisaModel.open(folder, recover=False)
    a, b = race_ids(model)
    model.close()
    release = tmp_path / "release"
    proc_a = start(tmp_path / "a", "forget", folder, "--ids", ids_file(tmp_path, "a.txt", a),
                   "--quiet", pause=release, stage="CHECKPOINT")
    paused(proc_a, release)  # A wrote its first checkpoint

    bypass = SisaModel.open(folder, recover=False)  # a writer that never takes writer.lock
    owner = Owner.me()
    shards = bypass.plan.locate(np.array(b))
    req_b = bypass.ledger.plan_request(np.array(b), shards,
                                       bypass.ledger.base(shards, bypass.plan.slices), owner)
    run(bypass, req_b, owner, None)
    bypass.close()
    release.touch()
    code, out, err = finish(proc_a)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "was not served: shard 3 changed under it" in err and "sisa retry" in err

    status = assert_served_from_scratch(folder, b)  # exactly B: A's pointers went nowhere
    assert [(r["id"], r["status"]) for r in status["requests"]] == [(1, "failed"), (2, "complete")]
    assert "shard 3 changed" in status["requests"][0]["reason"]
    code, out, err = cli(capsys, "retry", folder, "1", "--quiet")
    assert code == 0 and "retried request 1" in out, err
    status = assert_served_from_scratch(folder, a + b)
    assert status["deleted"] == 4 and not status["failed"]


def test_a_live_owner_is_never_touched_even_when_the_lock_does_not_work(folder, tmp_path,
                                                                       capsys):
    release = tmp_path / "release"
    proc_a = start(tmp_path / "a", "forget", folder, "--ids", ids_file(tmp_path, "a.txt", [9]),
                   "--quiet", pause=release)
    paused(proc_a, release)
    (folder / "writer.lock").unlink()  # the next process locks a new file: no exclusion left
    code, _, err = cli(capsys, "forget", folder, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert f"Request 1 is in progress by pid {proc_a.pid}" in err and "locks do not work" in err
    model = SisaModel.open(folder, recover=False)
    assert model.ledger.request(1).attempts == 1 and model.ledger.request(1).owner.pid == proc_a.pid
    model.close()
    release.touch()
    assert finish(proc_a)[0] == 0
    assert_served_from_scratch(folder, [9])


def test_a_killed_owner_is_reported_abandoned_and_the_next_writer_takes_over(folder, tmp_path):
    release = tmp_path / "release"
    proc = start(tmp_path / "a", "forget", folder, "--ids", ids_file(tmp_path, "a.txt", [11, 12]),
                 "--quiet", pause=release)
    paused(proc, release)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    model = SisaModel.open(folder, recover=False)
    row = model.status()["requests"][0]
    assert row["state"] == "abandoned" and row["owner"]["pid"] == proc.pid
    results = model.resume(wait=False)
    assert [r.request for r in results] == [1] and model.ledger.request(1).attempts == 2
    model.close()
    assert_served_from_scratch(folder, [11, 12])
