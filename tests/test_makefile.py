"""The Makefile's set-up: apt waits for the dpkg lock, and a failed step is retried next time.

Run on a copy of the Makefile with stand-ins for apt-get and Python (no real install happens).
"""

import os
import shutil
import subprocess

from conftest import REPO

FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "$LOG"
[ -e "$OK" ]
"""


def _make(tmp_path, *targets):
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
           "LOG": str(tmp_path / "calls"), "OK": str(tmp_path / "ok")}
    return subprocess.run(["make", "-s", *targets, f"PYTHON={tmp_path / 'bin' / 'python'}",
                           "CHROMIUM=no-such-browser", f"FASHION_DIR={tmp_path / 'none'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_a_failed_step_leaves_no_stamp_and_is_retried(tmp_path):
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "bin").mkdir()
    for tool in ("apt-get", "python"):
        (tmp_path / "bin" / tool).write_text(FAKE)
        (tmp_path / "bin" / tool).chmod(0o755)

    failed = _make(tmp_path, "install")  # apt and pip both fail (no network, a held lock)
    assert failed.returncode != 0
    assert not (tmp_path / ".make" / "installed").exists()
    assert "make tries again next time" in failed.stdout
    apt = [c for c in (tmp_path / "calls").read_text().splitlines() if c.startswith("apt-get")]
    assert apt and all("-o DPkg::Lock::Timeout=" in c for c in apt)

    (tmp_path / "ok").touch()  # the network is back
    (tmp_path / "calls").unlink()
    done = _make(tmp_path, "install")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".make" / "installed").exists()
    calls = (tmp_path / "calls").read_text()
    assert "install -y -qq chromium" in calls and "dataset-fashion-mnist" in calls  # retried


def test_make_does_not_fail_where_apt_is_missing(tmp_path):
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    env = {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run([shutil.which("make"), "-s", "system-packages"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout, done.stderr
