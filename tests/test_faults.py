"""A full disk, a read-only mount, a locked store, a foreign cache file (issue 19, part 2).

Each is one line, names what is wrong (never "damaged" unless SQLite's integrity check says so),
leaves nothing half-written, and a later run with space completes exactly. A full disk is
injected at the OS boundary (``os.fsync`` raising ENOSPC, SQLite's page limit) everywhere, and
is real on a small tmpfs where the tests run as root.
"""

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import main_in_process as cli
from obliviate.bench.store import ResultStore
from obliviate.cache import ModelCache
from obliviate.errors import ConcurrentWriterError, DiskFullError, StoreError

SISA_TRAIN = ["sisa", "train", "digits", "--shards", "2", "--epochs", "1", "--option", "model=mlp",
              "--quiet"]


@contextmanager
def tmpfs(path, size):
    """A real tmpfs of ``size`` at ``path`` (root only; the test is skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the ENOSPC injection tests still run")
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def remount(path, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True,
                   capture_output=True)


def fail_fsync_after(monkeypatch, n):
    """``os.fsync`` succeeds ``n`` times, then reports a full disk (as it does on a real one)."""
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.safetensors"))}


def leftovers(root):
    return sorted(p.name for p in root.rglob("*") if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The checkpoints of an uninterrupted ``sisa train`` (what every resumed one must equal)."""
    from obliviate.cli import main

    out = tmp_path_factory.mktemp("reference") / "m"
    try:
        main([*SISA_TRAIN, "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code
    return hashes(out)


# --------------------------------------------------------------------------- full disk

def test_sisa_train_on_a_full_disk_is_one_line_and_a_later_run_completes_exactly(
        tmp_path, capsys, monkeypatch, reference):
    out = tmp_path / "m"
    fail_fsync_after(monkeypatch, 2)  # data.safetensors and one checkpoint, then full
    code, _, err = cli(capsys, *SISA_TRAIN, "--out", out)
    monkeypatch.undo()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "is full" in err and str(out) in err
    assert not (out / "sisa.json").exists() and leftovers(out) == []
    code, stdout, err = cli(capsys, *SISA_TRAIN, "--out", out)
    assert code == 0, err
    assert hashes(out) == reference


def test_sisa_train_on_a_real_full_tmpfs_then_with_space(tmp_path, capsys, reference):
    with tmpfs(tmp_path / "small", "512k") as disk:
        out = disk / "m"  # the data (370 kB) fits; the checkpoints do not
        code, _, err = cli(capsys, *SISA_TRAIN, "--out", out)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert "is full" in err and str(out) in err
        assert not (out / "sisa.json").exists() and leftovers(out) == []
        remount(disk, "size=8m")
        code, _, err = cli(capsys, *SISA_TRAIN, "--out", out)
        assert code == 0, err
        assert hashes(out) == reference


def test_model_cache_write_on_a_full_disk_keeps_nothing_and_works_with_space(tmp_path,
                                                                              monkeypatch):
    cache = ModelCache(tmp_path / "models")
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    fail_fsync_after(monkeypatch, 0)
    with pytest.raises(DiskFullError, match=f"The disk holding {tmp_path / 'models'} is full"):
        cache.write("fp", weights, {"train_seconds": 1.5})
    monkeypatch.undo()
    assert list((tmp_path / "models").iterdir()) == []
    cache.write("fp", weights, {"train_seconds": 1.5})
    tensors, info = cache.read("fp")
    assert torch.equal(tensors["w"], weights["w"]) and info == {"train_seconds": 1.5}


def test_a_bench_whose_cache_disk_fills_stops_with_one_line(tmp_path, capsys):
    args = ["bench", "digits", "-m", "finetune", "--set", "recipe.epochs=1", "--quiet",
            "--out", tmp_path / "run"]
    with tmpfs(tmp_path / "small", "16k") as disk:  # the original's weights do not fit
        code, _, err = cli(capsys, *args, "--cache", disk / "models")
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert "is full" in err and str(disk / "models") in err
        assert leftovers(disk) == []
    # with space the same command resumes (the kill/resume tests of the bench cover that)


# --------------------------------------------------------------------------- the result store

def _save(store, key, rows=1):
    store.save(key, kind="method", method="m", seed=0, scenario="s", protocol="quick",
               config={}, metrics={"RA": 0.5}, wall_s=1.0,
               examples={"loss": np.arange(rows, dtype="float32")})


def test_a_store_that_cannot_grow_is_full_not_damaged_and_keeps_every_job(tmp_path):
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    _save(store, "a")
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own 'disk is full'
    with pytest.raises(DiskFullError) as exc:
        _save(store, "b", rows=100_000)
    assert "is full" in str(exc.value) and "is damaged" not in str(exc.value)
    assert store.run("b") is None and store.run("a")["status"] == "done"
    store.close()
    with ResultStore(path) as again:  # with space: the same store, extended
        _save(again, "b", rows=100_000)
        assert len(again.arrays("b")["loss"]) == 100_000


def test_a_store_on_a_read_only_or_full_mount_says_so(tmp_path):
    with tmpfs(tmp_path / "small", "256k") as disk:
        with ResultStore(disk / "results.sqlite") as store:
            _save(store, "a")
        with open(disk / "filler", "wb", buffering=0) as fh:  # fill the disk to the last block
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        with pytest.raises(StoreError) as exc, ResultStore(disk / "results.sqlite") as store:
            _save(store, "b", rows=50_000)
        assert "is full" in str(exc.value) and "is damaged" not in str(exc.value)
        (disk / "filler").unlink()
        remount(disk, "ro")
        with pytest.raises(StoreError) as exc, ResultStore(disk / "results.sqlite") as store:
            _save(store, "b")  # SQLite may open it and refuse only the write
        assert "read-only" in str(exc.value) and "is damaged" not in str(exc.value)
        with ResultStore(disk / "results.sqlite", readonly=True) as store:  # reading works
            assert store.run("a")["status"] == "done"


def test_a_store_held_by_another_process_waits_with_a_message_then_one_line(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as store:
        _save(store, "a")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(path)!r}); c.execute('BEGIN IMMEDIATE')\n"
         "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        told = []
        store = ResultStore(path, lock_wait=0.5, on_wait=told.append)
        start = time.monotonic()
        with pytest.raises(ConcurrentWriterError) as exc:
            _save(store, "b")
        assert 0.4 < time.monotonic() - start < 10
        assert len(told) == 1 and "write transaction" in told[0] and str(path) in told[0]
        message = str(exc.value)
        assert "locked by another process's write transaction" in message
        assert "OBLIVIATE_STORE_WAIT" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()
    _save(store, "b")  # the lock is gone: the same store goes on
    assert store.run("b")["status"] == "done"
    store.close()


def test_the_store_wait_is_configurable_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("OBLIVIATE_STORE_WAIT", "0.25")
    with ResultStore(tmp_path / "a.sqlite") as store:
        assert store.lock_wait == 0.25
    monkeypatch.setenv("OBLIVIATE_STORE_WAIT", "soon")
    with pytest.raises(StoreError, match="OBLIVIATE_STORE_WAIT must be a number"):
        ResultStore(tmp_path / "b.sqlite")


def test_only_a_failed_integrity_check_or_a_foreign_file_is_called_damaged(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    with pytest.raises(StoreError, match="is damaged"):
        ResultStore(garbage)


# --------------------------------------------------------------------------- the model cache

def _foreign_files(root):
    """Cache files a colleague's other tool, a bit flip or a truncation could leave."""
    w = {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}
    root.mkdir()
    save_file(w, str(root / "list.safetensors"), metadata={"info": "[1, 2]"})
    save_file(w, str(root / "notjson.safetensors"), metadata={"info": "{not json"})
    save_file(w, str(root / "badtime.safetensors"), metadata={"info": '{"train_seconds": "x"}'})
    save_file({"other": torch.zeros(1)}, str(root / "otherkeys.safetensors"))
    (root / "torn.safetensors").write_bytes((root / "list.safetensors").read_bytes()[:40])
    (root / "text.safetensors").write_text("hello")
    return ["list", "notjson", "badtime", "otherkeys", "torn", "text"]


def test_a_foreign_or_damaged_cache_file_is_retrained_with_a_note(tmp_path):
    notes = []
    cache = ModelCache(tmp_path / "models", on_note=notes.append)
    for name in _foreign_files(tmp_path / "models"):
        trained = []

        def train(trained=trained):
            model = torch.nn.Linear(3, 2)
            trained.append(model)
            return model, 2.0

        model, seconds = cache.get_or_train(name, lambda: torch.nn.Linear(3, 2), train, {})
        assert trained == [model] and seconds == 2.0, name  # retrained, and overwritten:
        hit = cache.load(name, torch.nn.Linear(3, 2))
        assert hit is not None and torch.equal(hit[0].weight, model.weight), name
    assert len(notes) == 6 and all("it is trained again" in n for n in notes), notes
    assert all(json.dumps(n).count("\\n") == 0 for n in notes)
