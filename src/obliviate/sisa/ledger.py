"""The SISA deletion ledger: one SQLite file recording every deletion request and model version.

A request is written ``pending`` (with its ids, which are thereby reserved: the same id cannot
be requested twice) before any retraining starts, and turns ``complete`` in the same transaction
that points the served checkpoints at the new model version. A process killed in between leaves
the previous version served and the request pending; :meth:`Ledger.pending` finds it again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from obliviate.errors import DataError, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    ids TEXT NOT NULL,              -- JSON list of training indices
    status TEXT NOT NULL,           -- 'pending' or 'complete'
    shards TEXT,                    -- JSON {shard: first slice retrained}
    version INTEGER,                -- model version that serves the request once complete
    remaining_hash TEXT,            -- sha256 prefix of the remaining training indices
    completed REAL,
    seconds REAL                    -- wall time of the retraining
);
CREATE TABLE IF NOT EXISTS deleted (
    idx INTEGER PRIMARY KEY,        -- a training index can be deleted once
    request INTEGER NOT NULL REFERENCES requests(id)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    shard INTEGER NOT NULL,
    slice INTEGER NOT NULL,
    version INTEGER NOT NULL,       -- the file shard{s}/slice{r}.v{version}.safetensors
    PRIMARY KEY (shard, slice)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Request:
    """One deletion request as the ledger holds it."""

    id: int
    created: float
    ids: tuple[int, ...]
    status: str
    shards: dict[int, int] | None
    version: int | None
    remaining_hash: str | None
    completed: float | None
    seconds: float | None


class Ledger:
    """The ledger of one SISA model directory."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            self.conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the SISA ledger {self.path}: {exc}. Check that the "
                             f"folder is writable and the file is not corrupt.") from None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ versions
    def version(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        return int(row[0]) if row else 0

    def checkpoint_versions(self) -> dict[tuple[int, int], int]:
        rows = self.conn.execute("SELECT shard, slice, version FROM checkpoints")
        return {(s, r): v for s, r, v in rows}

    def set_initial(self, shards: int, slices: int) -> None:
        """Record version 0: every shard's slices as first trained."""
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, 0)",
                          [(s, r) for s in range(shards) for r in range(slices)])
            c.execute("INSERT OR REPLACE INTO meta VALUES ('version', '0')")

    # ------------------------------------------------------------------ requests
    def deleted(self, *, complete_only: bool = False) -> np.ndarray:
        sql = "SELECT idx FROM deleted"
        if complete_only:
            sql += " JOIN requests ON requests.id = deleted.request WHERE status = 'complete'"
        return np.array(sorted(r[0] for r in self.conn.execute(sql)), dtype=np.int64)

    def open_request(self, ids: np.ndarray) -> int:
        """Record a pending request for ``ids``; refuse ids already deleted or pending."""
        with self.transaction() as c:
            # checked in Python: a request may hold more ids than SQLite takes as parameters
            done = {i: (r, st) for i, r, st in c.execute(
                "SELECT deleted.idx, requests.id, requests.status FROM deleted JOIN requests "
                "ON requests.id = deleted.request")}
            clash = next((int(i) for i in ids if int(i) in done), None)
            if clash is not None:
                req, status = done[clash]
                raise DataError(
                    f"Training index {clash} was already deleted by request {req} ({status}); "
                    f"deleting it twice is refused. Remove it from the ids file."
                )
            cur = c.execute("INSERT INTO requests (created, ids, status) VALUES (?, ?, 'pending')",
                            (time.time(), json.dumps([int(i) for i in ids])))
            req = int(cur.lastrowid)
            c.executemany("INSERT INTO deleted VALUES (?, ?)", [(int(i), req) for i in ids])
        return req

    def complete(self, request: int, version: int, shards: dict[int, int],
                 remaining_hash: str, seconds: float) -> None:
        """Serve ``version``: point the retrained shards' checkpoints at it, close the request."""
        with self.transaction() as c:
            for s, first in shards.items():
                c.execute("UPDATE checkpoints SET version=? WHERE shard=? AND slice>=?",
                          (version, s, first))
            c.execute("UPDATE requests SET status='complete', shards=?, version=?, "
                      "remaining_hash=?, completed=?, seconds=? WHERE id=?",
                      (json.dumps({str(k): v for k, v in shards.items()}), version,
                       remaining_hash, time.time(), seconds, request))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(version),))

    def requests(self, status: str | None = None) -> list[Request]:
        sql = "SELECT * FROM requests" + (" WHERE status=?" if status else "") + " ORDER BY id"
        rows = self.conn.execute(sql, (status,) if status else ()).fetchall()
        return [Request(r[0], r[1], tuple(json.loads(r[2])), r[3],
                        {int(k): v for k, v in json.loads(r[4]).items()} if r[4] else None,
                        r[5], r[6], r[7], r[8]) for r in rows]

    def pending(self) -> list[Request]:
        return self.requests("pending")
