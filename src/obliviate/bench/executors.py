"""Executors: where a bench's independent jobs run (in this process, or as Ray tasks).

A driver hands an executor a list of :class:`Task` (a module-level function and its arguments)
and reads back one :class:`Outcome` per task, in the order they finish; only the driver writes
the result store. Each task sets its own torch thread count before it runs, and every job seeds
itself (``unlearn`` and the training loop take explicit seeds), so a table does not depend on
which process ran which job: the local and Ray executors give identical numbers.

A task that raises is run once more; if it fails again its outcome carries the error and the
driver records the job as failed. A diverged method (:class:`TrainingDivergedError`) is a result,
not an accident, and is reported at once without a second attempt. A full disk
(:class:`DiskFullError`) is neither: it stops the bench at once with one line (nothing
half-written is kept, and the same command resumes once there is space).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from obliviate.errors import ConfigError, DiskFullError, TrainingDivergedError

EXECUTORS = ("local", "ray")


@dataclass
class Task:
    """One independent job: ``fn(*args)``; ``fn`` must be importable by name (module level)."""

    fn: Callable[..., Any]
    args: tuple = ()
    label: str = ""
    tag: Any = None  # the caller's handle (a job, a run index)


@dataclass
class Outcome:
    """What came back for a task: its value, or the error of its last attempt."""

    task: Task
    value: Any = None
    error: BaseException | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def diverged(self) -> bool:
        """The task failed deterministically (a NaN or infinite loss, weights or outputs)."""
        return isinstance(self.error, TrainingDivergedError)

    def describe_error(self) -> str:
        err = self.error
        text = f"{type(err).__name__}: {err}" if not isinstance(err, TrainingDivergedError) \
            else str(err)
        tries = f" (failed {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{text}{tries}"


def call_with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` with ``threads`` torch threads (results depend on the thread count)."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return fn(*args)


def _retryable(exc: BaseException) -> bool:
    return not isinstance(exc, TrainingDivergedError | KeyboardInterrupt)


@dataclass
class LocalExecutor:
    """Runs tasks one after another in this process (the default)."""

    threads: int = field(default_factory=torch.get_num_threads)
    name: str = "local"
    running: Callable[[str], None] | None = None  # told each task's label as it starts

    def put(self, obj: Any) -> Any:
        """Share ``obj`` with tasks (here: the object itself)."""
        return obj

    def map(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        for task in tasks:
            attempts = 0
            while True:
                attempts += 1
                if self.running is not None:
                    self.running(task.label)
                try:
                    value = call_with_threads(self.threads, task.fn, *task.args)
                except DiskFullError:
                    raise  # the machine's fault, not the job's: stop the bench
                except Exception as exc:  # noqa: BLE001 - reported to the caller, never lost
                    if attempts < 2 and _retryable(exc):
                        continue
                    yield Outcome(task, error=exc, attempts=attempts)
                else:
                    yield Outcome(task, value=value, attempts=attempts)
                break

    def close(self) -> None:
        """Nothing to release."""


class RayExecutor:
    """Runs tasks on a Ray cluster: a local one started for the run, or ``address``'s.

    Each task reserves ``threads`` CPUs (the driver's torch thread count) and uses that many
    torch threads, so tasks never oversubscribe the machine and compute exactly what the local
    executor computes. Worker output is not forwarded (``log_to_driver=False``): the progress
    display owns the terminal and errors come back as exceptions.
    """

    name = "ray"
    running: Callable[[str], None] | None = None  # told what is on the cluster while it waits

    def __init__(self, address: str | None = None, threads: int | None = None,
                 num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray; install it with "
                              "pip install 'obliviate[ray]'.") from None
        self.ray = ray
        self.threads = threads or torch.get_num_threads()
        self._temp_dir: str | None = None
        self._started = False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": "ERROR", "configure_logging": True}
            if address:
                _check_reachable(address)
                kwargs["address"] = address
            else:
                # short path: Ray's socket names must stay under the OS limit
                self._temp_dir = tempfile.mkdtemp(prefix="ob-ray-", dir="/tmp")
                kwargs.update(num_cpus=num_cpus or os.cpu_count() or 1,
                              _temp_dir=self._temp_dir)
            try:
                ray.init(**kwargs)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                if not address:
                    raise
                raise ConfigError(f"Cannot reach the Ray cluster at --address {address}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else exc!r}. Start one "
                                  f"with 'ray start --head' or drop --address.") from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = min(self.threads, max(cpus, 1))
        # Ray itself does not retry: map() retries once, whatever failed (the task or its worker)
        self._remote = ray.remote(max_retries=0)(call_with_threads).options(
            num_cpus=self.threads)

    def put(self, obj: Any) -> Any:
        """Place ``obj`` in the object store once; tasks receive it as an argument."""
        return self.ray.put(obj)

    def _submit(self, task: Task) -> Any:
        return self._remote.remote(self.threads, task.fn, *task.args)

    def map(self, tasks: Sequence[Task]) -> Iterator[Outcome]:
        ray = self.ray
        pending = {self._submit(t): (t, 1) for t in tasks}
        try:
            while pending:
                if self.running is not None:
                    labels = [t.label for t, _ in pending.values()]
                    self.running(labels[0] if len(labels) == 1 else
                                 f"{len(labels)} tasks on Ray ({labels[0]}, ...)")
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                task, attempts = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - reported to the caller, never lost
                    cause = _cause(exc)
                    if isinstance(cause, DiskFullError):
                        raise cause from None
                    if attempts < 2 and _retryable(cause):
                        pending[self._submit(task)] = (task, attempts + 1)
                        continue
                    yield Outcome(task, error=cause, attempts=attempts)
                else:
                    yield Outcome(task, value=value, attempts=attempts)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


def _check_reachable(address: str) -> None:
    """Refuse at once an address nobody listens on (Ray itself would wait for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # e.g. "auto": Ray resolves it
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"Cannot reach the Ray cluster at --address {address}: "
                          f"{exc.strerror or exc}. Start one with 'ray start --head' or drop "
                          f"--address.") from None


def _cause(exc: BaseException) -> BaseException:
    """The task's own exception out of Ray's wrapper (RayTaskError), else ``exc``."""
    inner = getattr(exc, "cause", None)
    return inner if isinstance(inner, BaseException) else exc


def make_executor(name: str, address: str | None = None) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (checked by the bench config before anything runs)."""
    if name == "ray":
        return RayExecutor(address)
    return LocalExecutor()
