"""SISA recovery: a process killed at every stage, failed retrains, retry, cancel, garbage.

Kills use real processes stopped by the test-only hook ``OBLIVIATE_SISA_PAUSE_AFTER_<STAGE>``.
Faster in-process cases make a request *abandoned* by recording a dead process as its owner,
which is what a kill leaves in the ledger. Every served outcome is compared, bit for bit, with
the shards trained from scratch without the ids of the completed requests.
"""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import obliviate as ob
from conftest import REPO
from obliviate.sisa import SisaModel, train_shard
from obliviate.sisa import model_dir as model_dir_module

RECIPE = ob.Recipe(optimizer="sgd", lr=0.05, epochs=2, batch_size=64)
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sc = ob.load_scenario("digits", model="mlp")
    root = tmp_path_factory.mktemp("sisa") / "model"
    SisaModel.train(root, sc.splits.x_train[:400], sc.splits.y_train[:400], model_name="mlp",
                    shards=3, slices=3, recipe=RECIPE, seed=0, num_classes=10).close()
    return root


@pytest.fixture
def folder(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "m")
    return tmp_path / "m"


def in_slice(model, shard, slice_, k=0):
    return int(model.plan.members[shard][slice_][k])


def assert_exact(path, deleted):
    model = SisaModel.open(path, recover=False)
    served = model.ensemble().constituents
    for s in range(model.plan.shards):
        ref = train_shard(model.factory, model.x, model.y, model.plan, s, model.recipe,
                          model.seed, deleted=np.array(sorted(deleted), dtype=np.int64))
        got = served[s].state_dict()
        assert all(torch.equal(got[k], v) for k, v in ref.state_dict().items()), f"shard {s}"
    assert sorted(model.ledger.deleted(complete_only=True).tolist()) == sorted(deleted)
    model.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def abandon(model, request):
    """Make ``request`` look like its owner was killed: a pid that no longer runs."""
    model.ledger.conn.execute("UPDATE requests SET owner_pid=?, owner_host=?, owner_identity=NULL "
                              "WHERE id=?", (dead_pid(), socket.gethostname(), request))


class Stop(BaseException):
    """Stands for a kill: not an Exception, so the request is left pending, not failed."""


def stop_after(n):
    seen = []

    def hook(shard, slice_, state):
        seen.append((shard, slice_))
        if len(seen) == n:
            raise Stop

    return hook, seen


KILL_STAGES = ["PLAN", "CHECKPOINT", "COMPLETE"]


@pytest.mark.parametrize("stage", KILL_STAGES)
def test_a_process_killed_at_any_stage_loses_nothing_and_the_next_writer_finishes(
        folder, tmp_path, capsys, stage):
    model = SisaModel.open(folder, recover=False)
    ids = sorted([in_slice(model, 0, 0), in_slice(model, 2, 1)])  # shard 0 from 0, 2 from 1
    x_test = model.x[:50]
    with torch.no_grad():
        before = model.ensemble()(x_test)
    model.close()
    (tmp_path / "ids.txt").write_text("\n".join(map(str, ids)))
    release = tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-m", "obliviate", "sisa", "forget", str(folder),
                             "--ids", str(tmp_path / "ids.txt"), "--quiet"],
                            env={**ENV, f"OBLIVIATE_SISA_PAUSE_AFTER_{stage}": str(release)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "release.paused").exists():
        assert proc.poll() is None and time.time() < deadline, "never reached the stage"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)

    model = SisaModel.open(folder, recover=False)
    status = model.status()
    if stage == "COMPLETE":  # served already; only the old files are left over
        assert status["version"] == 1 and not status["pending"]
        assert (folder / "shard000" / "slice00.v0.safetensors").exists()
    else:
        assert status["version"] == 0 and status["abandoned"] == [1]
        with torch.no_grad():  # the previous version is whole and served meanwhile
            assert torch.equal(model.ensemble()(x_test), before)
    model.close()
    code, out, err = cli(capsys, "status", folder)
    assert code == 0, err
    if stage != "COMPLETE":
        assert f"request 1: abandoned (pid {proc.pid} on" in out
    code, out, err = cli(capsys, "forget", folder, "--quiet")  # no ids: resume what was left
    assert code == 0, err
    done = {"PLAN": "completed abandoned request 1: deleted 2 id(s); retrained shard(s) 0 from "
                    "slice 0, 2 from slice 1 in",
            # the checkpoint written before the kill is reused, not trained again
            "CHECKPOINT": "reusing 1 slice(s) already written",
            "COMPLETE": "nothing to do"}[stage]
    flat = " ".join(out.split())  # the console may wrap a long line where it likes
    assert done in flat and (stage != "PLAN" or "reusing" not in flat)
    assert not (folder / "shard000" / "slice00.v0.safetensors").exists()  # garbage collected
    assert (folder / "shard001" / "slice02.v0.safetensors").exists()  # still served
    assert_exact(folder, ids)


def cli(capsys, *args):
    from obliviate.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sisa", *map(str, args)])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def test_resume_reuses_only_checkpoints_whose_hash_still_matches(folder):
    model = SisaModel.open(folder, recover=False)
    ids = [in_slice(model, 1, 0)]  # shard 1, all three slices retrained
    hook, seen = stop_after(2)
    with pytest.raises(Stop):
        model.forget(ids, on_checkpoint=hook)
    abandon(model, 1)
    written = folder / "shard001" / "slice01.v1.safetensors"
    data = bytearray(written.read_bytes())
    data[-1] ^= 1  # one flipped bit in the second checkpoint
    written.write_bytes(bytes(data))
    result = model.resume()[0]
    assert (result.reused_slices, result.trained_slices) == (1, 2)
    model.close()
    assert_exact(folder, ids)


def test_a_failed_retrain_is_marked_failed_releases_its_ids_and_can_be_retried(folder, tmp_path):
    model = SisaModel.open(folder, recover=False)
    first = [in_slice(model, 0, 2)]  # retrains shard 0 from slice 2: needs its slice 1
    base = folder / "shard000" / "slice01.v0.safetensors"
    shutil.move(base, tmp_path / "backup")
    with pytest.raises(ob.StoreError, match=r"Deletion request 1 failed: Checkpoint .*slice01\.v0"
                                            r"\.safetensors is missing.*marked failed.*sisa retry"):
        model.forget(first)
    req = model.ledger.request(1)
    assert req.status == "failed" and "is missing" in req.reason
    assert model.status()["version"] == 0 and model.ledger.deleted().size == 0  # ids released
    other = [in_slice(model, 1, 1)]
    assert model.forget(other).request == 2  # a failed request blocks nothing
    shutil.move(tmp_path / "backup", base)
    with pytest.raises(ob.DataError, match="Request 2 is complete; only a failed request"):
        model.retry(2)
    assert model.retry(1).version == 2
    model.close()
    assert_exact(folder, first + other)


def test_a_corrupt_checkpoint_or_a_full_disk_fails_the_request_with_the_reason(folder,
                                                                               monkeypatch):
    model = SisaModel.open(folder, recover=False)
    base = folder / "shard002" / "slice00.v0.safetensors"
    good = base.read_bytes()
    base.write_bytes(good[:-8] + b"\0" * 8)
    with pytest.raises(ob.StoreError, match="is corrupt"):
        model.forget([in_slice(model, 2, 1)])
    base.write_bytes(good)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(model_dir_module, "_write_atomic", full)
    with pytest.raises(ob.StoreError, match="Deletion request 2 failed: No space left on device"):
        model.forget([in_slice(model, 2, 1)])
    monkeypatch.undo()
    assert [r.status for r in model.ledger.requests()] == ["failed", "failed"]
    assert "is corrupt" in model.ledger.request(1).reason
    assert model.retry(2).version == 1
    # request 1 holds the id request 2 has now deleted: retrying it is refused, nothing changes
    with pytest.raises(ob.DataError, match="already deleted by request 2 .*cancel request 1"):
        model.retry(1)
    assert model.ledger.request(1).status == "failed"
    assert model.cancel(1).status == "cancelled"
    model.close()
    assert_exact(folder, [in_slice(SisaModel.open(folder, recover=False), 2, 1)])


def test_cancel_drops_an_abandoned_request_and_its_files_and_refuses_a_complete_one(folder):
    model = SisaModel.open(folder, recover=False)
    ids = [in_slice(model, 1, 0)]
    hook, _ = stop_after(1)
    with pytest.raises(Stop):
        model.forget(ids, on_checkpoint=hook)
    abandon(model, 1)
    assert (folder / "shard001" / "slice00.v1.safetensors").exists()
    assert model.cancel(1).status == "cancelled"
    assert not (folder / "shard001" / "slice00.v1.safetensors").exists()
    assert model.status()["version"] == 0 and model.ledger.deleted().size == 0
    assert model.forget(ids).request == 2  # the released id can be deleted again
    with pytest.raises(ob.DataError, match="a completed deletion cannot be undone"):
        model.cancel(2)
    with pytest.raises(ob.DataError, match="Request 1 is cancelled; only a pending or failed"):
        model.cancel(1)
    model.close()
    assert_exact(folder, ids)


def test_garbage_collection_keeps_every_file_something_names(folder):
    model = SisaModel.open(folder, recover=False)
    hook, _ = stop_after(1)
    with pytest.raises(Stop):  # a pending request: its base and its first output are needed
        model.forget([in_slice(model, 0, 1)], on_checkpoint=hook)
    stray = folder / "shard000" / "slice00.v99.safetensors"
    shutil.copy(folder / "shard000" / "slice00.v0.safetensors", stray)
    tmp = folder / "shard000" / f".slice00.v7.safetensors.tmp-{dead_pid()}"
    tmp.write_bytes(b"half")
    removed = model.collect_garbage()
    assert removed == [stray] and not tmp.exists()
    assert (folder / "shard000" / "slice01.v1.safetensors").exists()  # pending request's output
    assert len(list(folder.glob("shard*/slice*.v0.safetensors"))) == 9  # all served
    model.close()
