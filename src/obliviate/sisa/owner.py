"""Who owns a SISA deletion request, whether that owner is still alive, and its heartbeat.

An owner is one process: its pid, host name, the kernel's identity of that process (boot id and
start time, from ``/proc``, so that a recycled pid is not mistaken for the owner) and a random
token naming this one attempt. The owner is **alive** when

* it runs on this host: the pid exists, is not a zombie, and is the same process that took the
  request (told by ``/proc``; where there is none, its heartbeat must also be fresh);
* it runs on another host: its heartbeat is younger than :data:`HEARTBEAT_STALE_S`. A thread
  of the owner (:class:`Heartbeat`) renews it every :data:`HEARTBEAT_EVERY_S` seconds while
  the request is retrained, and every checkpoint renews it too.

Otherwise the owner is **gone** and the request is abandoned.

Test hook (test-only, never set it in production): ``OBLIVIATE_SISA_PAUSE_AFTER_<STAGE>=PATH``
with STAGE one of ``PLAN`` (the request is recorded and owned, nothing retrained yet),
``CHECKPOINT`` (a checkpoint of the request is written and recorded) and ``COMPLETE`` (the new
version is served, garbage not yet collected). At that point the process writes its pid into
``PATH.paused`` and waits, holding the writer lock, until the file ``PATH`` exists (at most 10
minutes). Tests use it to stop a real process at a known point, then kill it or race it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_STALE_S = 60.0
PAUSE_ENV = "OBLIVIATE_SISA_PAUSE_AFTER_{}"
PAUSE_STAGES = ("PLAN", "CHECKPOINT", "COMPLETE")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_identity(pid: int) -> str | None:
    """``'<boot id>:<start ticks>'`` of a running process; ``''`` if it is not running (or a
    zombie); ``None`` where this system has no ``/proc`` to tell."""
    if not Path("/proc/self/stat").exists():
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
    if fields[0] in ("Z", "X"):  # zombie or dead: killed, not yet reaped
        return ""
    return f"{_boot_id()}:{fields[19]}"  # field 22 of stat: start time in clock ticks


def process_alive(pid: int, identity: str | None) -> bool:
    """Whether the process ``pid`` of this host runs and is the one recorded as ``identity``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = process_identity(pid)
    if now is None:  # no /proc: the pid is all there is to go by
        return True
    return now != "" and (identity is None or now == identity)


@dataclass(frozen=True)
class Owner:
    """The process that owns a request, as recorded in the ledger."""

    pid: int
    host: str
    identity: str | None
    token: str
    since: float

    @classmethod
    def me(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname(), process_identity(os.getpid()),
                   uuid.uuid4().hex, time.time())

    def alive(self, heartbeat: float | None, now: float | None = None) -> bool:
        beat = heartbeat if heartbeat is not None else self.since
        fresh = (now or time.time()) - beat < HEARTBEAT_STALE_S
        if self.host == socket.gethostname():
            # without /proc a recycled pid looks alive: the heartbeat must be fresh as well
            return process_alive(self.pid, self.identity) and (self.identity is not None or fresh)
        return fresh

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"pid {self.pid} on {self.host} since {since}"


class Heartbeat:
    """A daemon thread calling ``beat`` every ``every`` seconds until the block ends."""

    def __init__(self, beat: Callable[[], None], every: float = HEARTBEAT_EVERY_S):
        self.beat, self.every = beat, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sisa-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.beat()
            except Exception:  # a busy ledger: the next beat or checkpoint renews it
                pass

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def pause_point(stage: str) -> None:
    """The test hook (see the module docstring); does nothing unless its variable is set."""
    target = os.environ.get(PAUSE_ENV.format(stage))
    if not target or Path(target).exists():
        return
    Path(f"{target}.paused").write_text(str(os.getpid()))
    deadline = time.monotonic() + 600
    while not Path(target).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
