"""The writer lock of a SISA model folder: one process at a time changes it.

The lock is ``flock(LOCK_EX)`` on ``DIR/writer.lock``, taken before a request is planned and
released after its garbage is collected, so it covers the whole request: planning, retraining,
the switch of the served version and the deletion of old checkpoints. Training a new model,
``retry`` and ``cancel`` take it too. Reading (``status``, serving the ensemble) does not.

Why flock and not a long SQLite write transaction:

* The kernel drops a flock the moment its process dies, however it dies (SIGKILL included), so
  there is no stale lock to clean up and no timeout to guess.
* While the lock is held the ledger still commits small transactions (the request and its
  owner, each checkpoint's hash, the heartbeat, a failure) that ``sisa status`` and a later
  recovery read. Inside one long write transaction none of that would be visible or durable
  until the end, and a kill would lose the record that the request existed.
* A second writer can ask without blocking (``LOCK_NB``) and so wait with a message naming the
  holder, or refuse (``--no-wait``).

flock does not hold everywhere (some network file systems ignore it, and removing the lock
file lets a second process lock a new one), so the ledger's compare-and-set on completion stays
as a second line of defence (see :mod:`obliviate.sisa.ledger`). The lock file is never deleted.
Its content, written by the holder, is a JSON line naming it (pid, host, since, what it does),
which a waiting process shows; it is informational only.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from obliviate.errors import ConcurrentWriterError, StoreError
from obliviate.files import open_lock_file

try:
    import fcntl
except ImportError:  # Windows: importing obliviate works, changing a SISA folder does not
    fcntl = None

LOCK_NAME = "writer.lock"


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("since", 0)))
    return (f"pid {holder.get('pid')} on {holder.get('host')} ('{holder.get('doing')}' since "
            f"{since})")


class WriterLock:
    """The exclusive writer lock of one model folder, held by at most one process."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def holder(self) -> dict | None:
        """What the lock file says about its holder (``None`` when free or unreadable)."""
        try:  # never through a link: the lock's content is shown to the user
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                info = json.loads(fh.read(4096).decode() or "null")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def acquire(self, doing: str, *, wait: bool = True,
                on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock; if another process holds it, wait (telling ``on_wait``) or refuse.

        Raises:
            ConcurrentWriterError: the folder is busy and ``wait`` is false, or this process
                already holds the lock through another object (waiting would never end).
            StoreError: the lock file cannot be created or the file system cannot lock it.
        """
        if fcntl is None:
            raise StoreError("Changing a SISA model folder needs flock, which this system "
                             "lacks; use Linux or macOS.")
        if self.fd is not None:
            raise ConcurrentWriterError(f"The writer lock of {self.root} is already held by this "
                                        f"SisaModel; finish one operation before starting the "
                                        f"next.")
        fd = open_lock_file(self.path)  # a link or a foreign file is refused, never truncated
        try:
            self._lock(fd, doing, wait, on_wait)
        except BaseException:
            os.close(fd)
            raise
        self._hold(fd, doing)

    def try_acquire(self, doing: str) -> bool:
        """Take the lock if it is free right now; False (and nothing held) if it is not."""
        if self.fd is not None or fcntl is None:
            return False
        try:
            fd = open_lock_file(self.path)
        except StoreError:
            return False  # a read-only folder: nobody can change it, so nothing to recover
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._hold(fd, doing)
        return True

    def _hold(self, fd: int, doing: str) -> None:
        self.fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "doing": doing}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)

    def _lock(self, fd: int, doing: str, wait: bool,
              on_wait: Callable[[str], None] | None) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            self._unsupported(exc)
        holder = self.holder()
        if holder and holder.get("pid") == os.getpid() and \
                holder.get("host") == socket.gethostname():
            raise ConcurrentWriterError(
                f"This process already holds the writer lock of {self.root} through another "
                f"SisaModel object; close that one first ('{doing}' would wait for itself).")
        who = describe_holder(holder)
        if not wait:
            raise ConcurrentWriterError(
                f"The SISA model {self.root} is busy: {who} is writing it; wait for it to "
                f"finish (drop --no-wait to queue behind it) or try again later.")
        if on_wait is not None:
            on_wait(f"waiting for {who} to finish with {self.root} (--no-wait refuses instead)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            self._unsupported(exc)

    def _unsupported(self, exc: OSError) -> None:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise StoreError(f"The file system of {self.root} cannot lock {self.path} "
                             f"({exc.strerror}); keep SISA model folders on a local disk.") from None
        raise StoreError(f"Cannot lock {self.path}: {exc.strerror}.") from None

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)  # a stale holder line would mislead the next waiter
        finally:
            os.close(fd)  # closing the last descriptor drops the flock
