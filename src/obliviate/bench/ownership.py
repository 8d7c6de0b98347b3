"""Who owns a run directory: one live bench at a time, and one experiment for its whole life.

**The lock.** A bench holds an exclusive ``flock`` on ``OUT/.obliviate.lock`` for as long as it
runs, and writes its pid, host, start time and command into that file. A second bench on the
same directory does not wait: it refuses at once with one line naming the holder. ``flock`` is
released by the kernel when the holder exits or is killed, so a crashed bench never leaves a
stale lock behind (a lock file that nobody holds is simply taken over).

**The experiment.** The store records the identity of the configuration that created it: the
scenario (its options, data hashes, forget set and its seed, model and recipe), the protocol's
version, its options and the number of models. A later bench into the same directory must have
the same identity, or it is refused with the settings that differ. Within one experiment a
bench may *extend* the directory: add methods, add seeds, or name fewer of either (what is
recorded stays and is reported). A method already recorded under the same name with a
different configuration is refused (give the variant another name with ``module:function`` or
use another ``--out``). The leaderboard and ``config.json`` always describe everything the
directory holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from obliviate.errors import StoreError
from obliviate.files import open_lock_file

LOCK_NAME = ".obliviate.lock"


class DirectoryLock:
    """An exclusive, non-blocking flock on ``root/.obliviate.lock``, released by :meth:`close`."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_NAME
        # never a link or a foreign file: opening must not truncate what a link points to
        self.fh = os.fdopen(open_lock_file(self.path), "r+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip()
            self.fh.close()
            raise StoreError(f"{root} is in use by another bench ({_describe(holder)}); wait "
                             f"for it to finish or choose another --out.") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "command": " ".join(sys.argv)}))
        self.fh.flush()

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.seek(0)
            self.fh.truncate()
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return (f"pid {info['pid']} on {info['host']} since {info['started']}: "
                f"{info['command']}")
    except (ValueError, KeyError, TypeError):
        return "a process that left no details"


def identity(scenario: dict[str, Any], protocol: str, options: dict[str, Any],
             n_models: int | None) -> dict[str, Any]:
    """What makes two benches one experiment (everything that changes a result but methods)."""
    return {"scenario": scenario, "protocol": protocol, "protocol_options": options,
            "n_models": n_models}


def fingerprint(ident: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def differences(recorded: Any, now: Any, prefix: str = "") -> list[str]:
    """``path: recorded X, now Y`` for every leaf where two JSON-like values differ."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(recorded) | set(now), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += differences(recorded.get(key, "(absent)"), now.get(key, "(absent)"), path)
        return out
    if recorded != now:
        return [f"{prefix}: recorded {recorded!r}, now {now!r}"]
    return []


def claim(store, root: Path, ident: dict[str, Any]) -> None:
    """Record ``ident`` as the store's experiment, or refuse a store that holds another one.

    With a read-only store this only checks (a bench checks before it writes anything).
    """
    recorded = store.meta("experiment")
    if recorded is None:
        if not store.is_empty():
            raise StoreError(f"{root}/results.sqlite was written by an older obliviate and "
                             f"records no experiment; choose another --out.")
        if not store.readonly:
            store.set_meta("experiment", json.dumps(ident, sort_keys=True, default=str))
            store.set_meta("fingerprint", fingerprint(ident))
        return
    if store.meta("fingerprint") == fingerprint(ident):
        return
    diff = differences(json.loads(recorded), json.loads(json.dumps(ident, default=str)))
    shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
    raise StoreError(f"{root} holds another experiment ({shown}); choose another --out, or "
                     f"delete {root} to start over.")


def check_method_configs(store, root: Path, planned: dict[str, dict[str, Any]]) -> None:
    """Refuse a method name recorded with one config and asked for with another."""
    recorded = {j["method"]: j["config"] for j in store.jobs() if j["kind"] == "method"}
    for name, config in planned.items():
        if name in recorded and recorded[name] != json.loads(json.dumps(config, default=str)):
            diff = differences(recorded[name], json.loads(json.dumps(config, default=str)))
            raise StoreError(f"{root} already holds method '{name}' with another configuration "
                             f"({'; '.join(diff[:3])}); choose another --out for the variant.")
