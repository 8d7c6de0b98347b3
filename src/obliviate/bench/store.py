"""The result store: one SQLite file per run directory, written one finished job at a time.

Each job's row, metrics and per-example values go in a single transaction, so a process killed
at any moment leaves either the whole job or none of it; a restart skips what is there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.errors import StoreError

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
    finished_at TEXT NOT NULL
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
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreError(
            f"Cannot write to {what} directory {path}: {reason}. Choose a writable directory."
        ) from None
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class ResultStore:
    """Finished jobs of a run directory, in ``results.sqlite``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the result store {self.path}: {exc}.") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, key: str) -> str | None:
        row = self.conn.execute("SELECT status FROM runs WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def is_done(self, key: str) -> bool:
        return self.status(key) == "done"

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
    ) -> None:
        """Record one job and everything it measured, atomically (replacing an older attempt)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with self.conn:
            self.conn.execute("DELETE FROM metrics WHERE key = ?", (key,))
            self.conn.execute("DELETE FROM examples WHERE key = ?", (key,))
            self.conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key, kind, method, seed, scenario, protocol, json.dumps(config, sort_keys=True),
                 status, error, wall_s, stamp),
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
