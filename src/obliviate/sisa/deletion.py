"""The life of one SISA deletion request: plan it, retrain its shards, serve it (or fail it).

Every function here except :func:`status` expects the caller (:class:`SisaModel`) to hold the
folder's writer lock; the rules they follow are in :mod:`obliviate.sisa.model_dir`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from obliviate.data.forget import index_hash
from obliviate.errors import ConcurrentWriterError, DataError, ObliviateError, StoreError
from obliviate.sisa.ledger import Request, beat
from obliviate.sisa.owner import Heartbeat, Owner, pause_point
from obliviate.sisa.training import OnCheckpoint, State, train_shard

if TYPE_CHECKING:
    from obliviate.sisa.model_dir import SisaModel


@dataclass(frozen=True)
class ForgetResult:
    """What one deletion request did: which shards from which slice, the new version, the time.

    ``trained_slices`` counts the slices retrained by this call; ``reused_slices`` those a
    resumed request had already written (and whose hashes matched), so not trained again.
    """

    request: int
    ids: tuple[int, ...]
    shards: dict[int, int]
    version: int
    seconds: float
    remaining_hash: str
    trained_slices: int = 0
    reused_slices: int = 0


def _lock_broken(model: SisaModel, req: Request) -> ConcurrentWriterError:
    return ConcurrentWriterError(
        f"Request {req.id} is in progress by {req.owner.describe()} although this process holds "
        f"{model.lock.path}: locks do not work on this file system (or the lock file was "
        f"removed); wait for that process to finish, and keep SISA model folders on a local "
        f"disk.")


def resume_abandoned(model: SisaModel, on_checkpoint: OnCheckpoint | None) -> list[ForgetResult]:
    """Take over and finish every pending request whose owner is gone, oldest first."""
    results = []
    for req in model.ledger.pending():
        if req.owner_alive():
            raise _lock_broken(model, req)
        owner = Owner.me()
        shards = req.shards or model.plan.locate(np.array(req.ids, dtype=np.int64))
        if not model.ledger.take_over(req, owner, shards,
                                      model.ledger.base(shards, model.plan.slices)):
            raise ConcurrentWriterError(f"Request {req.id} was taken over by another process "
                                        f"while this one was resuming it; run 'obliviate sisa "
                                        f"status {model.root}' to see who.")
        results.append(run(model, req.id, owner, on_checkpoint))
    return results


def plan_and_run(model: SisaModel, ids: np.ndarray,
                 on_checkpoint: OnCheckpoint | None) -> ForgetResult:
    """Record a new pending request for ``ids`` (checked, sorted) and run it."""
    owner = Owner.me()
    shards = model.plan.locate(ids)
    request = model.ledger.plan_request(ids, shards, model.ledger.base(shards, model.plan.slices),
                                        owner)
    return run(model, request, owner, on_checkpoint)


def _existing(model: SisaModel, request: int) -> Request:
    req = None
    if isinstance(request, int | np.integer) and not isinstance(request, bool) and \
            0 < int(request) < 2**63:
        req = model.ledger.request(int(request))
    if req is None:
        raise DataError(f"There is no deletion request {request} in {model.root}; 'obliviate "
                        f"sisa status {model.root}' lists the requests.")
    return req


def retry_request(model: SisaModel, request: int,
                  on_checkpoint: OnCheckpoint | None) -> ForgetResult:
    """Re-plan a failed request from the served version and run it."""
    req = _existing(model, request)
    done = {r.request: r for r in resume_abandoned(model, on_checkpoint)}
    if req.id in done:  # it was abandoned, not failed: resuming it was the retry
        return done[req.id]
    req = model.ledger.request(req.id)
    if req.status != "failed":
        raise DataError(f"Request {req.id} is {req.status}; only a failed request can be retried "
                        f"('obliviate sisa status {model.root}' shows each request's state).")
    owner = Owner.me()
    shards = model.plan.locate(np.array(req.ids, dtype=np.int64))
    model.ledger.retry(req, model.ledger.base(shards, model.plan.slices), owner)
    return run(model, req.id, owner, on_checkpoint)


def cancel_request(model: SisaModel, request: int) -> Request:
    """Cancel a failed request, or a pending one whose owner is gone; collect its files."""
    req = _existing(model, request)
    if req.status == "pending" and req.owner_alive():
        raise _lock_broken(model, req)
    if req.status not in ("pending", "failed"):
        undo = (" (a completed deletion cannot be undone: its ids are gone from the served "
                "model)" if req.status == "complete" else "")
        raise DataError(f"Request {req.id} is {req.status}; only a pending or failed request can "
                        f"be cancelled{undo}.")
    if not model.ledger.cancel(req):
        raise ConcurrentWriterError(f"Request {req.id} changed while it was being cancelled; run "
                                    f"'obliviate sisa status {model.root}' and try again.")
    model.collect_garbage()
    return model.ledger.request(req.id)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ObliviateError):
        return str(exc).rstrip(".")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f" ({exc.filename})" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


def run(model: SisaModel, request: int, owner: Owner,
        on_checkpoint: OnCheckpoint | None) -> ForgetResult:
    """Retrain the request's shards (reusing what it wrote before), then serve it (CAS)."""
    req = model.ledger.request(request)
    try:
        with Heartbeat(lambda: beat(model.ledger.path, request, owner.token)):
            pause_point("PLAN")
            start = time.perf_counter()
            trained, reused = _retrain(model, req, owner, on_checkpoint)
    except ConcurrentWriterError:
        raise  # not ours any more, or already marked failed
    except Exception as exc:
        reason = _reason(exc)
        try:
            recorded = model.ledger.fail(request, owner.token, reason)
        except Exception:  # the ledger cannot be written either: it stays pending, abandoned
            recorded = False
        then = (f"It is marked failed, its ids are released and the previous version is still "
                f"served; fix the cause, then run 'obliviate sisa retry {model.root} {request}'"
                if recorded else
                f"It could not be marked failed either and stays pending; the previous version "
                f"is still served; fix the cause, then run 'obliviate sisa forget {model.root}' "
                f"to resume it")
        raise StoreError(f"Deletion request {request} failed: {reason}. {then} (or 'obliviate "
                         f"sisa cancel {model.root} {request}').") from exc
    deleted = np.union1d(model.ledger.deleted(complete_only=True), np.array(req.ids))
    remaining = index_hash(np.setdiff1d(np.arange(model.plan.n), deleted))
    seconds = time.perf_counter() - start
    version = model.ledger.complete(request, owner.token, req.shards, req.base,
                                    model.plan.slices, remaining, seconds)
    pause_point("COMPLETE")
    model.collect_garbage()
    return ForgetResult(request, req.ids, req.shards, version, seconds, remaining, trained,
                        reused)


def _retrain(model: SisaModel, req: Request, owner: Owner,
             on_checkpoint: OnCheckpoint | None) -> tuple[int, int]:
    slices = model.plan.slices
    now = model.ledger.base(req.shards, slices)
    if now != req.base:  # a writer that bypassed the lock served something meanwhile
        model.ledger.fail(req.id, owner.token, "the shards it touches changed after it was "
                                               "planned (another writer bypassed the lock)")
        raise ConcurrentWriterError(
            f"Deletion request {req.id} was planned from checkpoint versions {req.base}, but "
            f"{now} are served now: another process wrote {model.root} without its lock. "
            f"Nothing new is served; the request is marked failed: run 'obliviate sisa retry "
            f"{model.root} {req.id}'.")
    # every id deleted from the served model, and this request's
    deleted = np.union1d(model.ledger.deleted(complete_only=True), np.array(req.ids))

    def saved(shard: int, slice_: int, state: State) -> None:
        sha = model.save_checkpoint(shard, slice_, req.id, state)
        if not model.ledger.record_file(shard, slice_, req.id, sha, req.id, owner.token):
            raise ConcurrentWriterError(f"Deletion request {req.id} was taken over by another "
                                        f"process while this one retrained it; this one stops "
                                        f"and serves nothing.")
        pause_point("CHECKPOINT")
        if on_checkpoint is not None:
            on_checkpoint(shard, slice_, state)

    trained = reused = 0
    for s, first in req.shards.items():
        done = first - 1  # the last slice of this request already written and verified
        while done + 1 < slices and model.verified(s, done + 1, req.id):
            done += 1
        reused += done - first + 1
        if done == slices - 1:
            continue
        if done >= first:
            state = model.load_checkpoint(s, done, req.id)
        elif first > 0:
            state = model.load_checkpoint(s, first - 1, req.base[s][first - 1])
        else:
            state = None
        train_shard(model.factory, model.x, model.y, model.plan, s, model.recipe, model.seed,
                    deleted=deleted, start_slice=done + 1, start_state=state,
                    on_checkpoint=saved)
        trained += slices - 1 - done
    return trained, reused


def status(model: SisaModel) -> dict:
    """The status of a model folder (read-only; no lock)."""
    now = time.time()
    rows = []
    for r in model.ledger.requests():
        alive = r.status == "pending" and r.owner_alive()
        state = {"pending": "in progress" if alive else "abandoned"}.get(r.status, r.status)
        rows.append({
            "id": r.id, "status": r.status, "state": state, "n_ids": len(r.ids),
            "shards": r.shards, "version": r.version, "seconds": r.seconds,
            "remaining_hash": r.remaining_hash, "reason": r.reason, "attempts": r.attempts,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created)),
            "owner": None if r.owner is None else {
                "pid": r.owner.pid, "host": r.owner.host, "alive": alive,
                "since": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.owner.since)),
                "heartbeat_age_s": None if r.heartbeat is None else round(now - r.heartbeat, 1)},
        })
    holder = model.lock.holder()
    if holder and not Owner(holder.get("pid", 0), holder.get("host"), None, "",
                            holder.get("since", 0)).alive(None):
        holder = None  # the line a killed holder left behind
    return {
        "dir": str(model.root), "model": model.config["model"],
        "source": model.config["source"], "shards": model.plan.shards,
        "slices": model.plan.slices, "n_train": model.plan.n,
        "deleted": int(len(model.ledger.deleted(complete_only=True))),
        "version": model.ledger.version(),
        "writer": holder,
        "pending": [r["id"] for r in rows if r["status"] == "pending"],
        "in_progress": [r["id"] for r in rows if r["state"] == "in progress"],
        "abandoned": [r["id"] for r in rows if r["state"] == "abandoned"],
        "failed": [r["id"] for r in rows if r["status"] == "failed"],
        "requests": rows,
    }
