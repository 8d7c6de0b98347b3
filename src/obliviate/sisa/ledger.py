"""The SISA deletion ledger: one SQLite file recording every request, checkpoint and version.

What the SQLite transactions guarantee (each method below is one ``BEGIN IMMEDIATE``
transaction, so it is atomic, and two processes' transactions never interleave):

* :meth:`Ledger.plan_request` reserves the ids (an id belongs to at most one pending or
  complete request), records which shards it retrains from which slice, the served checkpoint
  versions of those shards it plans from (its *base*) and its owner, all at once.
* :meth:`Ledger.record_file` records a checkpoint's sha256 together with the owner's heartbeat,
  and only while the request is still this owner's.
* :meth:`Ledger.complete` is a compare-and-set: it serves the request's checkpoints only if the
  request is still pending, still owned by the caller's token, every checkpoint it needs is
  recorded, and every shard it touches is still served from its base. On a changed base it
  marks the request failed in the same transaction; either way nothing new is served and the
  caller gets :class:`~obliviate.errors.ConcurrentWriterError`.
* :meth:`Ledger.fail` and :meth:`Ledger.cancel` release the ids in the transaction that changes
  the status; :meth:`Ledger.retry` reserves them again (refusing ids deleted meanwhile).

What they do not guarantee is that nobody else retrains the same shards meanwhile: that is the
writer lock's job (:mod:`obliviate.sisa.lock`). The compare-and-set makes a second writer that
bypasses the lock fail loudly instead of corrupting the served model.
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

from obliviate.errors import ConcurrentWriterError, DataError, StoreError
from obliviate.files import sqlite_disk_error
from obliviate.sisa.owner import Owner

TABLES = ("requests", "deleted", "checkpoints", "meta")
SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    ids TEXT NOT NULL,              -- JSON list of training indices
    status TEXT NOT NULL,           -- 'pending', 'complete', 'failed' or 'cancelled'
    shards TEXT,                    -- JSON {shard: first slice retrained}
    version INTEGER,                -- served model version it produced, once complete
    remaining_hash TEXT,            -- sha256 prefix of the remaining training indices
    completed REAL,
    seconds REAL                    -- wall time of the retraining
);
CREATE TABLE IF NOT EXISTS deleted (
    idx INTEGER PRIMARY KEY,        -- a training index is reserved by one pending or complete request
    request INTEGER NOT NULL REFERENCES requests(id)
);
CREATE TABLE IF NOT EXISTS checkpoints (  -- the served pointers
    shard INTEGER NOT NULL,
    slice INTEGER NOT NULL,
    version INTEGER NOT NULL,       -- the file shard{s}/slice{r}.v{version}.safetensors
    PRIMARY KEY (shard, slice)
);
CREATE TABLE IF NOT EXISTS files (  -- every checkpoint file written, with its hash
    shard INTEGER NOT NULL,
    slice INTEGER NOT NULL,
    version INTEGER NOT NULL,       -- 0: the first training; k: written by request k
    sha256 TEXT NOT NULL,
    PRIMARY KEY (shard, slice, version)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# columns added after the first format; old ledgers gain them when a writer opens them
ADDED = {"base": "TEXT", "owner_pid": "INTEGER", "owner_host": "TEXT", "owner_identity": "TEXT",
         "owner_token": "TEXT", "owner_since": "REAL", "heartbeat": "REAL", "reason": "TEXT",
         "attempts": "INTEGER NOT NULL DEFAULT 0"}
DAMAGED = ("restore it from a backup (it is the only record of which checkpoints are served and "
           "which ids were deleted), or train the model again with 'obliviate sisa train' into "
           "a new folder and repeat its deletions")
Base = dict[int, list[int]]  # shard -> served checkpoint version of each of its slices


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
    base: Base | None = None
    owner: Owner | None = None
    heartbeat: float | None = None
    reason: str | None = None
    attempts: int = 0

    def owner_alive(self) -> bool:
        return self.owner is not None and self.owner.alive(self.heartbeat)


def _intkeys(d: dict) -> dict:
    return {int(k): v for k, v in d.items()}  # JSON object keys are strings


def _request(row: sqlite3.Row) -> Request:
    get = {k: row[k] for k in row.keys()}.get  # sqlite3.Row has no .get
    owner = None
    if get("owner_pid") is not None:
        owner = Owner(get("owner_pid"), get("owner_host"), get("owner_identity"),
                      get("owner_token"), get("owner_since"))
    return Request(
        row["id"], row["created"], tuple(json.loads(row["ids"])), row["status"],
        _intkeys(json.loads(row["shards"])) if row["shards"] else None, row["version"],
        row["remaining_hash"], row["completed"], row["seconds"],
        _intkeys(json.loads(get("base"))) if get("base") else None, owner, get("heartbeat"),
        get("reason"), get("attempts") or 0)


def beat(path: Path, request: int, token: str) -> None:
    """Renew a request's heartbeat through a connection of its own (for the heartbeat thread)."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=5)
    try:
        conn.execute("UPDATE requests SET heartbeat=? WHERE id=? AND status='pending' AND "
                     "owner_token=?", (time.time(), request, token))
    finally:
        conn.close()


class Ledger:
    """The ledger of one SISA model directory.

    Args:
        path: the SQLite file.
        create: make a new, empty ledger (training a model); otherwise it must exist and hold
            the SISA tables. Opening writes nothing; :meth:`migrate` (run by writers, under
            the lock) adds what this version needs to a ledger of an older one.
    """

    def __init__(self, path: Path, *, create: bool = False):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StoreError(f"The SISA ledger {self.path} is missing; {DAMAGED}.")
        try:
            self.conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            self.conn.row_factory = sqlite3.Row
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if not create and not set(TABLES) <= tables:
                raise sqlite3.DatabaseError("it holds no SISA tables")
            if create:
                self.migrate()
        except sqlite3.Error as exc:
            full = sqlite_disk_error(exc, self.path.parent, "creating the SISA ledger")
            raise full or StoreError(f"The SISA ledger {self.path} is unreadable ({exc}); "
                                     f"{DAMAGED}.") from None

    def migrate(self) -> None:
        self.conn.executescript(SCHEMA)
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(requests)")}
        for col, decl in ADDED.items():
            if col not in have:
                self.conn.execute(f"ALTER TABLE requests ADD COLUMN {col} {decl}")

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

    # ------------------------------------------------------------------ versions and files
    def version(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        return int(row[0]) if row else 0

    def checkpoint_versions(self) -> dict[tuple[int, int], int]:
        """The served pointers: (shard, slice) -> version of the checkpoint file served."""
        rows = self.conn.execute("SELECT shard, slice, version FROM checkpoints")
        return {(s, r): v for s, r, v in rows}

    def base(self, shards, slices: int) -> Base:
        served = self.checkpoint_versions()
        return {int(s): [served[(int(s), r)] for r in range(slices)] for s in shards}

    def set_initial(self, shards: int, slices: int, hashes: dict[tuple[int, int], str]) -> None:
        """Record version 0: every shard's slices as first trained, with the files' hashes."""
        try:
            self._set_initial(shards, slices, hashes)
        except sqlite3.Error as exc:
            full = sqlite_disk_error(exc, self.path.parent, "recording the trained model")
            if full is None:
                raise
            raise full from None

    def _set_initial(self, shards: int, slices: int, hashes: dict[tuple[int, int], str]) -> None:
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, 0)",
                          [(s, r) for s in range(shards) for r in range(slices)])
            c.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, 0, ?)",
                          [(s, r, h) for (s, r), h in hashes.items()])
            c.execute("INSERT OR REPLACE INTO meta VALUES ('version', '0')")

    def file_hash(self, shard: int, slice_: int, version: int) -> str | None:
        """The recorded sha256 of a checkpoint file (None if unrecorded, or an old ledger)."""
        if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='files'").fetchone():
            return None
        row = self.conn.execute("SELECT sha256 FROM files WHERE shard=? AND slice=? AND "
                                "version=?", (shard, slice_, version)).fetchone()
        return row[0] if row else None

    def record_file(self, shard: int, slice_: int, version: int, sha256: str,
                    request: int | None = None, token: str | None = None) -> bool:
        """Record a checkpoint written; for a request, only while ``token`` still owns it
        (returns False, recording nothing, when it does not)."""
        with self.transaction() as c:
            if request is not None and not c.execute(
                    "UPDATE requests SET heartbeat=? WHERE id=? AND status='pending' AND "
                    "owner_token=?", (time.time(), request, token)).rowcount:
                return False
            c.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                      (shard, slice_, version, sha256))
        return True

    def forget_files(self, keys: list[tuple[int, int, int]]) -> None:
        with self.transaction() as c:
            c.executemany("DELETE FROM files WHERE shard=? AND slice=? AND version=?", keys)

    def keep(self) -> tuple[set[tuple[int, int, int]], set[int]]:
        """What garbage collection keeps, read in one snapshot: the (shard, slice, version) of
        every served checkpoint and of every pending request's base, and the versions (request
        ids) of pending and failed requests, whose files a resume or retry reuses."""
        with self.transaction() as c:
            files = {(s, r, v) for s, r, v in c.execute(
                "SELECT shard, slice, version FROM checkpoints")}
            versions = set()
            for row in c.execute("SELECT id, status, base FROM requests WHERE status IN "
                                 "('pending', 'failed')"):
                versions.add(row["id"])
                if row["status"] == "pending" and row["base"]:
                    files |= {(int(s), r, v) for s, vs in json.loads(row["base"]).items()
                              for r, v in enumerate(vs)}
        return files, versions

    # ------------------------------------------------------------------ requests
    def deleted(self, *, complete_only: bool = False) -> np.ndarray:
        sql = "SELECT idx FROM deleted"
        if complete_only:
            sql += " JOIN requests ON requests.id = deleted.request WHERE status = 'complete'"
        return np.array(sorted(r[0] for r in self.conn.execute(sql)), dtype=np.int64)

    def request(self, request: int) -> Request | None:
        row = self.conn.execute("SELECT * FROM requests WHERE id=?", (request,)).fetchone()
        return _request(row) if row else None

    def requests(self, status: str | None = None) -> list[Request]:
        sql = "SELECT * FROM requests" + (" WHERE status=?" if status else "") + " ORDER BY id"
        return [_request(r) for r in self.conn.execute(sql, (status,) if status else ())]

    def pending(self) -> list[Request]:
        return self.requests("pending")

    def _reserve(self, c: sqlite3.Connection, request: int, ids: np.ndarray, verb: str) -> None:
        # checked in Python: a request may hold more ids than SQLite takes as parameters
        done = {i: (r, st) for i, r, st in c.execute(
            "SELECT deleted.idx, requests.id, requests.status FROM deleted JOIN requests "
            "ON requests.id = deleted.request")}
        clash = next((int(i) for i in ids if int(i) in done), None)
        if clash is not None:
            req, status = done[clash]
            raise DataError(f"Training index {clash} was already deleted by request {req} "
                            f"({status}); {verb}")
        c.executemany("INSERT INTO deleted VALUES (?, ?)", [(int(i), request) for i in ids])

    def plan_request(self, ids: np.ndarray, shards: dict[int, int], base: Base,
                     owner: Owner) -> int:
        """Record a pending request owned by ``owner``; refuse ids already deleted or pending."""
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO requests (created, ids, status, shards, base, owner_pid, owner_host, "
                "owner_identity, owner_token, owner_since, heartbeat, attempts) VALUES "
                "(?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (time.time(), json.dumps([int(i) for i in ids]), json.dumps(shards),
                 json.dumps(base), *_owner_row(owner), owner.since))
            req = int(cur.lastrowid)
            self._reserve(c, req, ids, "deleting it twice is refused. Remove it from the ids "
                                       "file.")
        return req

    def take_over(self, request: Request, owner: Owner, shards: dict[int, int],
                  base: Base) -> bool:
        """Make ``owner`` the owner of an abandoned pending request (compare-and-set on the
        previous owner's token); ``shards`` and ``base`` fill in a request of the first ledger
        format, which recorded neither while pending."""
        with self.transaction() as c:
            return bool(c.execute(
                "UPDATE requests SET owner_pid=?, owner_host=?, owner_identity=?, owner_token=?, "
                "owner_since=?, heartbeat=?, attempts=attempts+1, base=COALESCE(base, ?), "
                "shards=COALESCE(shards, ?) WHERE id=? AND status='pending' AND "
                "owner_token IS ?",
                (*_owner_row(owner), owner.since, json.dumps(base), json.dumps(shards),
                 request.id,
                 request.owner.token if request.owner else None)).rowcount)

    def retry(self, request: Request, base: Base, owner: Owner) -> None:
        """A failed request becomes pending again, re-planned from ``base``; its checkpoints of
        shards whose base is unchanged stay reusable, the others are dropped."""
        with self.transaction() as c:
            if not c.execute(
                    "UPDATE requests SET status='pending', reason=NULL, base=?, owner_pid=?, "
                    "owner_host=?, owner_identity=?, owner_token=?, owner_since=?, heartbeat=?, "
                    "attempts=attempts+1 WHERE id=? AND status='failed'",
                    (json.dumps(base), *_owner_row(owner), owner.since, request.id)).rowcount:
                raise ConcurrentWriterError(f"Request {request.id} changed while it was being "
                                            f"retried; run 'obliviate sisa status' and try again.")
            self._reserve(c, request.id, np.array(request.ids, dtype=np.int64),
                          f"cancel request {request.id} and request the other ids anew.")
            for s, versions in base.items():
                if (request.base or {}).get(s) != versions:
                    c.execute("DELETE FROM files WHERE version=? AND shard=?", (request.id, s))

    def fail(self, request: int, token: str, reason: str) -> bool:
        """Mark a pending request failed (if ``token`` still owns it) and release its ids."""
        with self.transaction() as c:
            return self._fail(c, request, token, reason)

    @staticmethod
    def _fail(c: sqlite3.Connection, request: int, token: str | None, reason: str) -> bool:
        if not c.execute("UPDATE requests SET status='failed', reason=?, completed=? WHERE id=? "
                         "AND status='pending' AND owner_token IS ?",
                         (reason, time.time(), request, token)).rowcount:
            return False
        c.execute("DELETE FROM deleted WHERE request=?", (request,))
        return True

    def cancel(self, request: Request) -> bool:
        """Cancel a failed request, or a pending one whose owner the caller found gone."""
        with self.transaction() as c:
            if not c.execute(
                    "UPDATE requests SET status='cancelled', completed=? WHERE id=? AND status=? "
                    "AND owner_token IS ?", (time.time(), request.id, request.status,
                                             request.owner.token if request.owner else None)
            ).rowcount:
                return False
            c.execute("DELETE FROM deleted WHERE request=?", (request.id,))
        return True

    def complete(self, request: int, token: str, shards: dict[int, int], base: Base,
                 slices: int, remaining_hash: str, seconds: float) -> int:
        """Compare-and-set: serve the request's checkpoints; returns the new model version.

        Raises:
            ConcurrentWriterError: the request is not this owner's pending request any more, or a
                shard it touches changed since it was planned (then it is marked failed), or a
                checkpoint it needs is not recorded. Nothing new is served.
        """
        failed = None
        with self.transaction() as c:
            row = c.execute("SELECT status, owner_token, owner_pid FROM requests WHERE id=?",
                            (request,)).fetchone()
            if row is None or row["status"] != "pending" or row["owner_token"] != token:
                state = "gone" if row is None else row["status"]
                raise ConcurrentWriterError(
                    f"Deletion request {request} is no longer this process's to complete (it is "
                    f"{state}, owner pid {row['owner_pid'] if row else '-'}): another writer took "
                    f"it over; nothing new is served. Run 'obliviate sisa status' to see it.")
            served = {(s, r): v for s, r, v in c.execute("SELECT * FROM checkpoints")}
            for s, first in shards.items():
                now = [served[(s, r)] for r in range(slices)]
                if now != base[s]:
                    failed = (f"shard {s} changed under it (planned from checkpoint versions "
                              f"{base[s]}, now served from {now}): another process wrote the "
                              f"model without holding {self.path.parent / 'writer.lock'}")
                    break
                missing = [r for r in range(first, slices) if c.execute(
                    "SELECT 1 FROM files WHERE shard=? AND slice=? AND version=?",
                    (s, r, request)).fetchone() is None]
                if missing:
                    failed = f"checkpoint of shard {s} slice {missing[0]} was never recorded"
                    break
            if failed:
                self._fail(c, request, token, failed)
            else:
                version = self.version() + 1
                for s, first in shards.items():
                    c.execute("UPDATE checkpoints SET version=? WHERE shard=? AND slice>=?",
                              (request, s, first))
                c.execute("UPDATE requests SET status='complete', version=?, remaining_hash=?, "
                          "completed=?, seconds=? WHERE id=?",
                          (version, remaining_hash, time.time(), seconds, request))
                c.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(version),))
        if failed:
            raise ConcurrentWriterError(
                f"Deletion request {request} was not served: {failed}. It is marked failed and "
                f"its ids are released; run 'obliviate sisa retry {self.path.parent} {request}'.")
        return version


def _owner_row(owner: Owner) -> tuple:
    return owner.pid, owner.host, owner.identity, owner.token, owner.since
