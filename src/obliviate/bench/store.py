"""The result store: one SQLite file per run directory, written one finished job at a time.

Each job's row, metrics and per-example values go in a single transaction, so a process killed
at any moment leaves either the whole job or none of it; a restart skips what is there.

The store belongs to one experiment: ``meta`` holds the identity of the configuration that
created it (scenario, data, forget set, model, recipe, protocol and its options; see
:mod:`obliviate.bench.ownership`) and ``jobs`` every job of that experiment, with each method's
config. A store that fails SQLite's integrity check is refused, never read or extended.

Only that check calls a store damaged. Anything else SQLite reports is said as what it is, in one
line: a full disk (:class:`~obliviate.errors.DiskFullError`; the transaction is rolled back and
the same command resumes once there is space), a read-only file system, or another process's
write transaction holding the lock. For that last one the store waits, saying once what it waits
for, up to ``lock_wait`` seconds (``OBLIVIATE_STORE_WAIT``, default 60), then refuses with
:class:`~obliviate.errors.ConcurrentWriterError`.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from obliviate.errors import ConcurrentWriterError, StoreError
from obliviate.files import SQLITE_FULL, disk_error, sqlite_code, write_atomic

T = TypeVar("T")
DEFAULT_LOCK_WAIT = 60.0
# SQLite's primary result codes (the low byte of an extended code)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 14, 26


def lock_wait_seconds() -> float:
    """How long a store waits for another process's write transaction (``OBLIVIATE_STORE_WAIT``)."""
    text = os.environ.get("OBLIVIATE_STORE_WAIT", "")
    try:
        value = float(text) if text else DEFAULT_LOCK_WAIT
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise StoreError(f"OBLIVIATE_STORE_WAIT must be a number of seconds >= 0. Got {text!r} "
                         f"instead.")
    return value


def _no_space(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _tell(message: str) -> None:
    print(f"obliviate: {message}", file=sys.stderr, flush=True)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,          -- 'reference' (original, retrain) or 'method'
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    scenario TEXT NOT NULL,
    protocol TEXT NOT NULL,
    config TEXT NOT NULL,        -- the method's resolved config, JSON
    status TEXT NOT NULL,        -- 'done' or 'failed'
    error TEXT,
    wall_s REAL,
    finished_at TEXT NOT NULL,
    error_kind TEXT              -- 'diverged' (deterministic: not rerun on resume) or 'error'
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,        -- a job of the experiment (runs.key when it has finished)
    kind TEXT NOT NULL,          -- 'original', 'retrain' or 'method'
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,        -- the method's resolved config, JSON
    position INTEGER NOT NULL    -- order of first planning (the leaderboard's order)
);
CREATE TABLE IF NOT EXISTS metrics (
    key TEXT NOT NULL REFERENCES runs(key),
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (key, name)
);
CREATE TABLE IF NOT EXISTS examples (
    key TEXT NOT NULL REFERENCES runs(key),
    name TEXT NOT NULL,          -- e.g. 'forget_loss', 'test_loss'
    dtype TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, name)
);
"""


def ensure_writable_dir(path: Path, what: str = "--out") -> Path:
    """Create ``path`` if needed and prove it is writable, or raise StoreError naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.unlink(missing_ok=True)  # a planted link: removed, never written through
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreError(
            f"Cannot write to {what} directory {path}: {reason}. Choose a writable directory."
        ) from None
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    write_atomic(Path(path), text.encode(), doing=f"writing {Path(path).name}")


class ResultStore:
    """Finished jobs of a run directory, in ``results.sqlite``.

    Raises:
        StoreError: the file is not a SQLite database, fails ``PRAGMA integrity_check``, sits
            on a read-only file system, or stays locked by another process (see the module
            docstring); :class:`~obliviate.errors.DiskFullError` when the disk is full.
    """

    def __init__(self, path: Path, *, readonly: bool = False, immutable: bool = False,
                 lock_wait: float | None = None,
                 on_wait: Callable[[str], None] | None = None):
        """``readonly`` reads without creating or migrating anything; ``immutable`` also skips
        SQLite's shared-memory file, for a caller that holds the directory's lock (no writer).
        ``lock_wait``: seconds to wait for another process's write transaction (default
        ``OBLIVIATE_STORE_WAIT`` or 60); ``on_wait`` is told once that it waits (default: a line
        on stderr)."""
        self.path = Path(path)
        self.readonly = readonly or immutable
        self.lock_wait = lock_wait_seconds() if lock_wait is None else float(lock_wait)
        self.on_wait = on_wait or _tell
        try:
            if self.readonly:  # reading never creates, migrates or otherwise touches the file
                flags = "mode=ro&immutable=1" if immutable else "mode=ro"
                self.conn = sqlite3.connect(f"file:{self.path}?{flags}", uri=True, timeout=0)
            else:
                self.conn = sqlite3.connect(self.path, timeout=0)
        except sqlite3.Error as exc:
            raise self._error(exc, "opening it") from None
        try:
            self._retry(self._check_integrity, "opening it")
            if not self.readonly:
                self._retry(self._create, "creating its tables")
        except BaseException:
            self.conn.close()
            raise

    def _create(self) -> None:
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        """What SQLite's ``exc`` means for the user, in one line (damaged only when it is)."""
        code = sqlite_code(exc)
        folder = self.path.parent
        if code == SQLITE_FULL or (code in (SQLITE_IOERR, SQLITE_CANTOPEN) and _no_space(folder)):
            return disk_error(OSError(errno.ENOSPC, "No space left on device"), folder,
                              f"{doing} in the result store {self.path.name}")
        if code in (SQLITE_BUSY, SQLITE_LOCKED):
            return ConcurrentWriterError(
                f"The result store {self.path} stayed locked by another process's write "
                f"transaction for {self.lock_wait:g} s (while {doing}); let that process finish "
                f"(another bench or a program holding the file open), or raise "
                f"OBLIVIATE_STORE_WAIT.")
        if code == SQLITE_READONLY or (code == SQLITE_CANTOPEN and not os.access(folder,
                                                                                 os.W_OK)):
            return StoreError(f"The result store {self.path} cannot be written: its file or "
                              f"folder is read-only ({exc}); choose a writable --out, or make "
                              f"it writable. The store itself is not damaged.")
        if code in (SQLITE_NOTADB, SQLITE_CORRUPT):  # the integrity check cannot even run
            return StoreError(f"The result store {self.path} is damaged or not a SQLite database "
                              f"({exc}); move it away and run the bench into a fresh --out.")
        return StoreError(f"Cannot use the result store {self.path} while {doing}: {exc}; it "
                          f"is not known to be damaged (PRAGMA integrity_check decides that).")

    def _retry(self, block: Callable[[], T], doing: str) -> T:
        """Run ``block`` (a whole transaction), waiting up to ``lock_wait`` seconds for another
        process's write transaction; SQLite errors become the typed errors of :meth:`_error`."""
        deadline = time.monotonic() + self.lock_wait
        told = False
        while True:
            try:
                return block()
            except sqlite3.Error as exc:
                code = sqlite_code(exc)
                if code not in (SQLITE_BUSY, SQLITE_LOCKED) or time.monotonic() >= deadline:
                    raise self._error(exc, doing) from None
                if not told:
                    self.on_wait(f"waiting up to {self.lock_wait:g} s for another process's "
                                 f"write transaction on {self.path} (its lock) to end")
                    told = True
                time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))

    def _check_integrity(self) -> None:
        rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            first = rows[0][0] if rows else "no answer"
            raise StoreError(f"The result store {self.path} fails SQLite's integrity check "
                             f"({first}); move it away and run the bench into a fresh --out.")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the experiment
    def meta(self, key: str) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # a store written before experiments were recorded
            return None
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        def write() -> None:
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

        self._retry(write, "recording the experiment")

    def is_empty(self) -> bool:
        try:
            return self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        except sqlite3.OperationalError:  # no runs table: nothing was ever stored
            return True

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of the experiment, in planning order."""
        cur = self.conn.execute("SELECT key, kind, method, seed, config FROM jobs "
                                "ORDER BY position")
        return [{"key": k, "kind": kind, "method": m, "seed": seed, "config": json.loads(c)}
                for k, kind, m, seed, c in cur]

    def add_jobs(self, jobs: list[tuple[str, str, str, int, dict[str, Any]]]) -> None:
        """Record (key, kind, method, seed, config) jobs not recorded yet, after the others."""
        def write() -> None:
            with self.conn:
                start = self.conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM jobs"
                                          ).fetchone()[0]
                for i, (key, kind, method, seed, config) in enumerate(jobs):
                    self.conn.execute("INSERT OR IGNORE INTO jobs VALUES (?,?,?,?,?,?)",
                                      (key, kind, method, seed,
                                       json.dumps(config, sort_keys=True), start + i))

        self._retry(write, "recording the planned jobs")

    # ------------------------------------------------------------------ runs
    def status(self, key: str) -> str | None:
        row = self.conn.execute("SELECT status FROM runs WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def is_done(self, key: str) -> bool:
        return self.status(key) == "done"

    def settled(self, key: str, *, retry_failed: bool = False) -> bool:
        """Done, or failed deterministically (a divergence) and not asked to retry."""
        row = self.conn.execute("SELECT status, error_kind FROM runs WHERE key = ?",
                                (key,)).fetchone()
        if row is None:
            return False
        return row[0] == "done" or (row[0] == "failed" and row[1] == "diverged"
                                    and not retry_failed)

    def save(
        self,
        key: str,
        *,
        kind: str,
        method: str,
        seed: int,
        scenario: str,
        protocol: str,
        config: dict[str, Any],
        metrics: dict[str, float],
        wall_s: float | None,
        examples: dict[str, np.ndarray] | None = None,
        status: str = "done",
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        """Record one job and everything it measured, atomically (replacing an older attempt).

        Raises:
            DiskFullError: the disk is full (nothing of this job is recorded).
            ConcurrentWriterError: another process held the store past ``lock_wait``.
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._retry(lambda: self._save(key, kind, method, seed, scenario, protocol, config,
                                       metrics, wall_s, examples, status, error, error_kind,
                                       stamp), f"saving job {key}")

    def _save(self, key, kind, method, seed, scenario, protocol, config, metrics, wall_s,
              examples, status, error, error_kind, stamp) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM metrics WHERE key = ?", (key,))
            self.conn.execute("DELETE FROM examples WHERE key = ?", (key,))
            self.conn.execute(
                "INSERT OR REPLACE INTO runs (key, kind, method, seed, scenario, protocol, "
                "config, status, error, wall_s, finished_at, error_kind) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, kind, method, seed, scenario, protocol, json.dumps(config, sort_keys=True),
                 status, error, wall_s, stamp, error_kind),
            )
            self.conn.executemany(
                "INSERT INTO metrics VALUES (?,?,?)",
                [(key, name, float(value)) for name, value in metrics.items()],
            )
            for name, arr in (examples or {}).items():
                arr = np.ascontiguousarray(arr)
                self.conn.execute(
                    "INSERT INTO examples VALUES (?,?,?,?)",
                    (key, name, str(arr.dtype), arr.tobytes()),
                )

    def metrics(self, key: str) -> dict[str, float]:
        rows = self.conn.execute("SELECT name, value FROM metrics WHERE key = ?", (key,))
        return {name: value for name, value in rows}

    def run(self, key: str) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM runs WHERE key = ?", (key,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row, strict=True))

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        """Every per-example array stored with ``key``, by name."""
        rows = self.conn.execute("SELECT name, dtype, data FROM examples WHERE key = ?", (key,))
        return {name: np.frombuffer(data, dtype=dtype) for name, dtype, data in rows}

    def example_values(self, key: str, name: str) -> np.ndarray | None:
        """One named per-example array stored with ``key``, or None."""
        return self.arrays(key).get(name)
