"""A SISA model on disk: its data, plan, per-slice safetensors checkpoints and deletion ledger.

Layout of a model directory::

    sisa.json                          model, input shape, classes, plan, recipe, seed, source
    data.safetensors                   x, y (and groups) of the training set the ids point into
    ledger.sqlite                      requests, served checkpoint versions, checkpoint hashes
    writer.lock                        the writer lock (flock); names its holder
    shard003/slice01.v0.safetensors    weights of shard 3 after slice 1 as first trained
    shard003/slice01.v5.safetensors    ... as retrained by deletion request 5

The rules of concurrency and recovery:

1. **One writer per folder.** Training, ``forget``, ``resume``, ``retry`` and ``cancel`` run
   under the folder's exclusive writer lock (:mod:`obliviate.sisa.lock`), held from planning
   through retraining, serving and garbage collection. A second writer waits (``wait=True``,
   told who holds it through ``on_wait``) or refuses with
   :class:`~obliviate.errors.ConcurrentWriterError` (``wait=False``, ``--no-wait``) having
   written nothing. Readers (:meth:`SisaModel.status`, :meth:`SisaModel.ensemble`) take no lock.
2. **A request's states.** ``pending`` (ids reserved; shards, base versions and owner
   recorded) -> ``complete`` (served) or ``failed`` (reason recorded, ids released);
   ``failed`` -> ``pending`` again (:meth:`SisaModel.retry`, re-planned from the served
   version) or ``cancelled``; a ``pending`` request whose owner is gone -> ``cancelled`` too.
   ``complete`` and ``cancelled`` are final.
3. **Owners.** A request records its owner (pid, host, process identity, start, heartbeat;
   :mod:`obliviate.sisa.owner`). A pending request whose owner is alive is never touched by
   another process. With a working lock a writer cannot even meet one (the owner holds the
   lock); if it does, the lock does not work on that file system and the writer stops with
   ``ConcurrentWriterError`` instead of retraining the request a second time. A pending request
   whose owner is gone is *abandoned*: the next writer takes it over (compare-and-set on the
   old owner's token) before anything else, and resumes it.
4. **Resuming reuses work.** Every checkpoint a request writes is recorded with its sha256; a
   resumed request keeps each checkpoint whose file still matches its hash and trains only from
   the first one missing. Training is deterministic given the checkpoint it starts from, so the
   result is bit-identical to an uninterrupted run.
5. **Completion is compare-and-set** (:meth:`Ledger.complete`): it serves the new checkpoints
   only if the request is still pending, still this owner's, and every shard it touches is
   still served from the versions it was planned from. Otherwise nothing new is served; on a
   changed shard the request is marked failed (``retry`` re-plans it). With the lock this never
   happens; it stops a writer that bypassed the lock from overwriting a newer version.
6. **Failures release ids.** A retrain that raises (a missing or corrupt checkpoint, a full
   disk, a diverged loss) marks the request failed with the reason and releases its ids; the
   previous version stays served and later deletions proceed. A kill or Ctrl-C leaves it
   pending, abandoned once the process is gone (so is a failure the ledger could not record).
7. **Files.** Every file is written under a temporary name, flushed to disk and renamed
   (:mod:`obliviate.files`: never through a planted link; a full disk is one line and leaves
   nothing half-written); checkpoint loads verify the recorded hash. A checkpoint file is
   garbage only when no served pointer, no pending request's base and no pending or failed
   request's own output names it; garbage is collected, under the lock, after each completion
   and cancellation. Garbage
   collection deletes only regular files whose resolved path lies inside the folder: a
   ``shardNNN`` that is a link to another folder is neither followed nor written through.
8. **Code.** ``sisa.json`` names the model. A registered name is built from the registry; a
   ``module:factory`` name is never imported because the folder says so: the caller passes the
   same factory explicitly (``--model module:factory``, ``model_factory=``), or the folder is
   refused before anything runs (see ``docs/security.md``).

Because every completion retrains a shard from a checkpoint that already excludes every
earlier completed deletion, the served ensemble after any sequence (and any interleaving) of
requests A and B equals, bit for bit, the one trained from scratch without the ids of A and B.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load, load_file, save
from torch import nn

from obliviate.config import build_config, config_dict
from obliviate.errors import ConcurrentWriterError, DataError, ObliviateError, StoreError
from obliviate.files import remove_inside, write_atomic
from obliviate.models import MODELS, build_model
from obliviate.sisa import deletion
from obliviate.sisa.deletion import ForgetResult
from obliviate.sisa.ensemble import SisaEnsemble
from obliviate.sisa.ledger import Ledger, Request
from obliviate.sisa.lock import WriterLock, describe_holder
from obliviate.sisa.owner import process_alive
from obliviate.sisa.plan import ShardPlan, check_ids
from obliviate.sisa.training import OnCheckpoint, State, train_shard
from obliviate.train import Recipe
from obliviate.user_code import is_code_name, refuse, trusted_factory

FORMAT = "obliviate-sisa/1"
CHECKPOINT = re.compile(r"slice(\d+)\.v(\d+)\.safetensors")
TEMPORARY = re.compile(r"\..+\.tmp-(\d+)")
# what an unfinished training leaves in its folder; anything else there is not ours to remove
OURS = re.compile(r"data\.safetensors|ledger\.sqlite(-journal)?|writer\.lock|shard\d{3}|"
                  r"\.(sisa\.json|data\.safetensors)\.tmp-\d+")
OnWait = Callable[[str], None]


def _write_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, data, doing=f"writing {path.parent.name}/{path.name}")


def _tensors_bytes(state: State, info: dict) -> bytes:
    return save({k: v.detach().cpu().contiguous() for k, v in state.items()},
                metadata={"info": json.dumps(info, sort_keys=True)})


class SisaModel:
    """A persistent SISA ensemble: train it once, then serve and delete from it by index or group.

    Example:
        >>> sc = ob.load_scenario("digits")
        >>> m = SisaModel.train("sisa-digits", sc.splits.x_train, sc.splits.y_train,
        ...                     model_name="cnn", shards=4, slices=2, recipe=sc.recipe)
        >>> m.forget(ids=[3, 17])          # retrains only the shards holding 3 and 17
        >>> m.ensemble()(sc.splits.x_test).argmax(1)
    """

    def __init__(self, root: Path, config: dict, x: torch.Tensor, y: torch.Tensor,
                 groups: np.ndarray | None, ledger: Ledger, lock: WriterLock | None = None,
                 model_factory: str | Callable[..., nn.Module] | None = None):
        self.root, self.config, self.x, self.y, self.groups = Path(root), config, x, y, groups
        # what builds a member: the recorded name, or the factory the caller named (rule 8)
        self.model_factory = config["model"] if model_factory is None else model_factory
        self.code_named = model_factory is not None
        self.plan = ShardPlan.from_dict(config["plan"])
        self.recipe = build_config(Recipe, config["recipe"], "recipe")
        self.seed = int(config["seed"])
        self.ledger = ledger
        self.lock = lock or WriterLock(self.root)

    # ------------------------------------------------------------------ creating, opening
    @classmethod
    def train(
        cls,
        out: str | Path,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        model_name: str,
        shards: int,
        slices: int,
        recipe: Recipe,
        seed: int = 0,
        aggregation: str = "mean",
        num_classes: int | None = None,
        groups: np.ndarray | None = None,
        source: dict | None = None,
        on_checkpoint: OnCheckpoint | None = None,
    ) -> SisaModel:
        """Train S shards of R slices on (x, y) into the new or empty folder ``out``.

        A folder left by an unfinished training (no ``sisa.json``) is trained again.

        Raises:
            StoreError: ``out`` already holds a SISA model, holds other files, or is not
                writable.
            ConcurrentWriterError: another process is training into ``out``.
            ConfigError: impossible shards/slices or an unknown model or aggregation.
        """
        root = Path(out)
        _check_out(root)
        SisaEnsemble([], aggregation)  # validates the aggregation before any training
        plan = ShardPlan.build(len(y), shards, slices, seed)
        num_classes = num_classes or int(y.max()) + 1
        config = {"format": FORMAT, "model": model_name, "input_shape": list(x.shape[1:]),
                  "num_classes": num_classes, "plan": plan.to_dict(),
                  "recipe": config_dict(recipe), "seed": seed, "aggregation": aggregation,
                  "source": source or {}}
        build_model(model_name, tuple(x.shape[1:]), num_classes)  # unknown model: fail now
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create {root}: {exc.strerror}. Choose a writable --out.") \
                from None
        lock = WriterLock(root)
        try:
            lock.acquire("sisa train", wait=False)
        except ConcurrentWriterError:
            raise ConcurrentWriterError(
                f"Another process ({describe_holder(lock.holder())}) is writing {root}; wait for "
                f"it to finish or choose another --out.") from None
        try:
            model = cls._train_locked(root, config, x, y, groups, lock, on_checkpoint)
        finally:
            lock.release()
        return model

    @classmethod
    def _train_locked(cls, root: Path, config: dict, x, y, groups, lock: WriterLock,
                      on_checkpoint: OnCheckpoint | None) -> SisaModel:
        model_name = config["model"]
        _check_out(root)  # again, under the lock: another training may have finished
        for p in root.iterdir():  # what an unfinished training left (a link: only the link)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.name != "writer.lock":
                p.unlink()
        tensors = {"x": x.contiguous(), "y": y.contiguous()}
        if groups is not None:
            tensors["groups"] = torch.as_tensor(np.asarray(groups, dtype=np.int64))
        _write_atomic(root / "data.safetensors", _tensors_bytes(tensors, {}))
        ledger = Ledger(root / "ledger.sqlite", create=True)
        model = cls(root, config, x, y, None if groups is None else np.asarray(groups), ledger,
                    lock, model_name)  # the caller named it: trusted
        hashes: dict[tuple[int, int], str] = {}

        def saved(shard: int, slice_: int, state: State) -> None:
            hashes[(shard, slice_)] = model.save_checkpoint(shard, slice_, 0, state)
            if on_checkpoint is not None:
                on_checkpoint(shard, slice_, state)

        for s in range(model.plan.shards):
            train_shard(model.factory, x, y, model.plan, s, model.recipe, model.seed,
                        deleted=np.empty(0, dtype=np.int64), on_checkpoint=saved)
        ledger.set_initial(model.plan.shards, model.plan.slices, hashes)
        # sisa.json last: a folder without it is an unfinished training, safe to train again
        _write_atomic(root / "sisa.json", (json.dumps(config, indent=2, sort_keys=True)
                                           + "\n").encode())
        return model

    @classmethod
    def open(cls, path: str | Path, *, recover: bool = True,
             on_checkpoint: OnCheckpoint | None = None,
             model_factory: str | Callable[..., nn.Module] | None = None) -> SisaModel:
        """Open a SISA model directory; with ``recover``, first resume any abandoned request
        (only if no other process is writing the folder right now: then it is served as is).

        Args:
            model_factory: the ``module:factory`` (or the function itself) that ``sisa.json``
                names, for a model trained with a user's own factory: obliviate never imports
                code because a folder names it. Not needed for registered models.

        Raises:
            StoreError: not a SISA model folder, or its sisa.json, data or ledger is damaged.
            UntrustedCodeError: ``model_factory`` is another factory than the recorded one; or
                (when an operation needs the model) the folder names code and none was given.
        """
        root = Path(path)
        config = _read_config(root)
        try:
            plan = ShardPlan.from_dict(config["plan"])
            build_config(Recipe, config["recipe"], "recipe")
            int(config["seed"])
            shape = tuple(int(d) for d in config["input_shape"])
            config["model"], config["num_classes"], config["aggregation"]  # noqa: B018
        except (KeyError, TypeError, ValueError, ObliviateError) as exc:
            raise StoreError(f"{root}/sisa.json is malformed ({type(exc).__name__}: {exc}); it is "
                             f"written by 'obliviate sisa train' and must not be edited: restore "
                             f"it from a backup or train the model again.") from None
        given = trusted_factory(config["model"], model_factory, f"{root}/sisa.json",
                                HOW_TO_TRUST.format(spec=config["model"]))
        x, y, groups = _read_data(root, plan.n, shape)
        ledger = Ledger(root / "ledger.sqlite")
        want = {(s, r) for s in range(plan.shards) for r in range(plan.slices)}
        if set(ledger.checkpoint_versions()) != want:
            raise StoreError(f"The SISA ledger {root}/ledger.sqlite does not match the plan in "
                             f"sisa.json; restore both from the same backup or train the model "
                             f"again.")
        model = cls(root, config, x, y, groups, ledger, model_factory=given)
        abandoned = recover and any(not r.owner_alive() for r in ledger.pending())
        if abandoned:
            try:
                model.check_code()  # resuming retrains: refuse now, before anything runs
            except BaseException:
                ledger.close()
                raise
        if abandoned and model.lock.try_acquire("sisa open (resume)"):
            try:
                model.ledger.migrate()
                deletion.resume_abandoned(model, on_checkpoint)
            finally:
                model.lock.release()
        return model

    def close(self) -> None:
        self.ledger.close()
        self.lock.release()

    def check_code(self) -> None:
        """Refuse (before anything runs) a model whose ``sisa.json`` names code the caller did
        not name explicitly (rule 8)."""
        spec = self.config["model"]
        if not self.code_named and is_code_name(spec, MODELS.names()):
            raise refuse(f"{self.root}/sisa.json", spec, HOW_TO_TRUST.format(spec=spec))

    @contextmanager
    def writing(self, doing: str, wait: bool = True, on_wait: OnWait | None = None
                ) -> Iterator[None]:
        """Hold the folder's writer lock for the block (see rule 1 of the module docstring)."""
        self.lock.acquire(doing, wait=wait, on_wait=on_wait)
        try:
            self.ledger.migrate()
            yield
        finally:
            self.lock.release()

    # ------------------------------------------------------------------ checkpoints
    def factory(self, seed: int) -> nn.Module:
        self.check_code()
        cfg = self.config
        return build_model(self.model_factory, tuple(cfg["input_shape"]), cfg["num_classes"],
                           seed=seed)

    def _path(self, shard: int, slice_: int, version: int) -> Path:
        return self.root / f"shard{shard:03d}" / f"slice{slice_:02d}.v{version}.safetensors"

    def save_checkpoint(self, shard: int, slice_: int, version: int, state: State) -> str:
        """Write a checkpoint atomically; returns its sha256 (which the caller records).

        Raises:
            DiskFullError: the disk filled up (nothing half-written is kept).
            StoreError: the shard folder is a link or cannot be written.
        """
        data = _tensors_bytes(state, {"shard": shard, "slice": slice_, "version": version})
        _write_atomic(self._path(shard, slice_, version), data)
        return hashlib.sha256(data).hexdigest()

    def _read(self, shard: int, slice_: int, version: int) -> bytes:
        path = self._path(shard, slice_, version)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"Checkpoint {path} is missing ({exc.strerror}); the SISA model in "
                             f"{self.root} is damaged: restore that file from a backup.") from None
        expected = self.ledger.file_hash(shard, slice_, version)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise StoreError(f"Checkpoint {path} is corrupt (its sha256 differs from the one "
                             f"recorded when it was written); restore that file from a backup.")
        return data

    def verified(self, shard: int, slice_: int, version: int) -> bool:
        """Whether a checkpoint is recorded and its file matches the recorded hash."""
        if self.ledger.file_hash(shard, slice_, version) is None:
            return False
        try:
            self._read(shard, slice_, version)
        except StoreError:
            return False
        return True

    def load_checkpoint(self, shard: int, slice_: int, version: int) -> State:
        data = self._read(shard, slice_, version)
        try:
            return load(data)
        except Exception as exc:  # safetensors raises its own error type on a damaged header
            raise StoreError(f"Checkpoint {self._path(shard, slice_, version)} is unreadable "
                             f"({exc}); restore that file from a backup.") from None

    def ensemble(self) -> SisaEnsemble:
        """The served ensemble: each shard's last-slice checkpoint of the current version."""
        self.check_code()
        last = self.plan.slices - 1
        for _ in range(3):  # a writer may serve a new version (and collect the old) meanwhile
            versions = self.ledger.checkpoint_versions()
            try:
                members = []
                for s in range(self.plan.shards):
                    m = self.factory(0)
                    m.load_state_dict(self.load_checkpoint(s, last, versions[(s, last)]))
                    members.append(m.eval())
                return SisaEnsemble(members, self.config["aggregation"]).eval()
            except StoreError:
                if self.ledger.checkpoint_versions() == versions:
                    raise
        raise ConcurrentWriterError(f"The served version of {self.root} kept changing while it "
                                    f"was read; try again.")

    def collect_garbage(self) -> list[Path]:
        """Remove checkpoint files nothing needs (rule 7); call under the writer lock."""
        found = []  # listed before the ledger is read: a file new since is then accounted for
        for path in _shard_files(self.root):
            m = CHECKPOINT.fullmatch(path.name)
            if m:
                found.append((path, int(path.parent.name[5:]), int(m[1]), int(m[2])))
            elif (t := TEMPORARY.fullmatch(path.name)) and not process_alive(int(t[1]), None):
                remove_inside(path, self.root)  # left by a killed writer
        keep_files, keep_versions = self.ledger.keep()
        removed = [(p, s, r, v) for p, s, r, v in found
                   if (s, r, v) not in keep_files and v not in keep_versions]
        removed = [item for item in removed if remove_inside(item[0], self.root)]
        self.ledger.forget_files([(s, r, v) for _, s, r, v in removed])
        return [p for p, *_ in removed]

    # ------------------------------------------------------------------ deletion
    def ids_of_groups(self, groups: np.ndarray) -> np.ndarray:
        """Training indices of every example in the given groups."""
        if self.groups is None:
            raise DataError(f"The SISA model in {self.root} was trained without group ids; delete "
                            f"by training index (--ids) instead.")
        groups = np.asarray(groups, dtype=np.int64)
        missing = np.setdiff1d(groups, self.groups)
        if missing.size:
            raise DataError(f"Group {int(missing[0])} does not occur in the training set; check "
                            f"the group ids.")
        return np.flatnonzero(np.isin(self.groups, groups))

    def forget(self, ids: np.ndarray | list[int] | None = None, *,
               groups: np.ndarray | list[int] | None = None, wait: bool = True,
               on_wait: OnWait | None = None,
               on_checkpoint: OnCheckpoint | None = None) -> ForgetResult:
        """Delete training indices ``ids`` (and every member of ``groups``) exactly.

        Under the writer lock: abandoned requests are resumed first, then this one is recorded
        pending, the shards holding the ids are retrained from the checkpoint before the
        earliest slice that held one, and the new version is served (compare-and-set).

        Args:
            wait: if another process is writing the folder, wait for it (``on_wait`` is told
                who it is); if false, refuse with ``ConcurrentWriterError``.
            on_checkpoint: called with (shard, slice, weights) after each slice retrained.

        Raises:
            DataError: no ids, an id that is not an integer, out of range, listed twice or
                already deleted, an unknown group.
            ConcurrentWriterError: the folder is busy (``wait=False``), or the served model
                changed under the request (it is marked failed; nothing new is served).
            StoreError: the retraining failed (the request is marked failed, its ids released).
        """
        wanted = [] if ids is None else np.asarray(ids).ravel().tolist()
        if groups is not None:
            wanted += self.ids_of_groups(np.asarray(groups).ravel()).tolist()
        checked = check_ids(np.asarray(wanted), self.plan.n)
        self.check_code()
        with self.writing("sisa forget", wait, on_wait):
            deletion.resume_abandoned(self, on_checkpoint)
            return deletion.plan_and_run(self, checked, on_checkpoint)

    def resume(self, *, wait: bool = True, on_wait: OnWait | None = None,
               on_checkpoint: OnCheckpoint | None = None) -> list[ForgetResult]:
        """Resume every abandoned request, oldest first (after a crash), and collect garbage
        (a process killed right after serving a version leaves the old files behind)."""
        self.check_code()
        with self.writing("sisa resume", wait, on_wait):
            done = deletion.resume_abandoned(self, on_checkpoint)
            self.collect_garbage()
            return done

    def retry(self, request: int, *, wait: bool = True, on_wait: OnWait | None = None,
              on_checkpoint: OnCheckpoint | None = None) -> ForgetResult:
        """Run a failed request again, planned from the version served now.

        Raises:
            DataError: no such request, it is not failed, or one of its ids was deleted since.
        """
        self.check_code()
        with self.writing(f"sisa retry {request}", wait, on_wait):
            return deletion.retry_request(self, request, on_checkpoint)

    def cancel(self, request: int, *, wait: bool = True,
               on_wait: OnWait | None = None) -> Request:
        """Drop a failed request, or a pending one whose owner is gone; its ids are released.

        Raises:
            DataError: no such request, or it is complete or cancelled already.
        """
        with self.writing(f"sisa cancel {request}", wait, on_wait):
            return deletion.cancel_request(self, request)

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        """Sizes, plan, version, the writer, and every request with its state."""
        return deletion.status(self)


HOW_TO_TRUST = ("pass it explicitly: 'obliviate sisa ... --model {spec}', or "
                "SisaModel.open(path, model_factory='{spec}') in Python")


def _shard_files(root: Path) -> Iterator[Path]:
    """Files in the folder's own ``shardNNN`` folders (a linked shard folder is skipped)."""
    for shard in sorted(root.iterdir()):
        if re.fullmatch(r"shard\d+", shard.name) and shard.is_dir() and not shard.is_symlink():
            yield from sorted(shard.iterdir())


def _check_out(root: Path) -> None:
    """Refuse an --out that is a file, holds a model, or holds files that are not ours."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root} is a file, not a folder; choose another --out.")
    if (root / "sisa.json").exists():
        raise StoreError(f"{root} already holds a SISA model; choose another --out or delete "
                         f"that folder first.")
    foreign = sorted(p.name for p in root.iterdir() if not OURS.fullmatch(p.name)) \
        if root.is_dir() else []
    if foreign:
        raise StoreError(f"{root} is not empty and holds no SISA model (it has "
                         f"{foreign[0]!r}); choose a new or empty folder for --out.")


def _read_config(root: Path) -> dict:
    path = root / "sisa.json"
    if not path.is_file():
        raise StoreError(f"{root} is not a SISA model directory (no sisa.json); create one "
                         f"with 'obliviate sisa train SCENARIO --out {root}'.")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path} is unreadable ({exc}); it is written by 'obliviate sisa "
                         f"train' and must not be edited: restore it from a backup or train the "
                         f"model again.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise StoreError(f"{path} has format {found!r}; this version of obliviate reads "
                         f"{FORMAT!r}: open it with the version that wrote it, or train the "
                         f"model again.")
    return config


def _read_data(root: Path, n: int, shape: tuple[int, ...]):
    path = root / "data.safetensors"
    fix = ("it holds the training set that the ids point into: restore it from a backup, or "
           "train the model again with 'obliviate sisa train'")
    if not path.is_file():
        raise StoreError(f"{path} is missing; {fix}.")
    try:
        data = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type on a damaged file
        raise StoreError(f"{path} is unreadable ({exc}); {fix}.") from None
    if "x" not in data or "y" not in data or len(data["y"]) != n or \
            tuple(data["x"].shape) != (n, *shape):
        raise StoreError(f"{path} does not hold the {n} training examples of shape {shape} that "
                         f"sisa.json plans for; {fix}.")
    groups = data["groups"].numpy() if "groups" in data else None
    return data["x"], data["y"], groups
