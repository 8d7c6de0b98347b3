"""A SISA model on disk: its data, plan, per-slice safetensors checkpoints and deletion ledger.

Layout of a model directory::

    sisa.json                          model, input shape, classes, plan, recipe, seed, source
    data.safetensors                   x, y (and groups) of the training set the ids point into
    ledger.sqlite                      deletion requests and the served checkpoint versions
    shard003/slice01.v0.safetensors    weights of shard 3 after slice 1, model version 0

Version 0 is the trained ensemble; request k, once complete, is served by version k. Files of a
new version are written before the ledger points at them, so a crash at any moment leaves the
previous version whole and the request pending; :meth:`SisaModel.open` completes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from obliviate.config import build_config, config_dict
from obliviate.data.forget import index_hash
from obliviate.errors import DataError, StoreError
from obliviate.models import build_model
from obliviate.sisa.ensemble import SisaEnsemble
from obliviate.sisa.ledger import Ledger
from obliviate.sisa.plan import ShardPlan, check_ids
from obliviate.sisa.training import OnCheckpoint, State, train_shard
from obliviate.train import Recipe

FORMAT = "obliviate-sisa/1"


@dataclass(frozen=True)
class ForgetResult:
    """What one deletion request did: which shards from which slice, the new version, the time."""

    request: int
    ids: tuple[int, ...]
    shards: dict[int, int]
    version: int
    seconds: float
    remaining_hash: str


def _atomic_save(path: Path, state: State, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp),
              metadata={"info": json.dumps(info, sort_keys=True)})
    os.replace(tmp, path)


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
                 groups: np.ndarray | None):
        self.root, self.config, self.x, self.y, self.groups = Path(root), config, x, y, groups
        self.plan = ShardPlan.from_dict(config["plan"])
        self.recipe = build_config(Recipe, config["recipe"], "recipe")
        self.seed = int(config["seed"])
        self.ledger = Ledger(self.root / "ledger.sqlite")

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
        """Train S shards of R slices on (x, y) into the empty or new folder ``out``.

        Raises:
            StoreError: ``out`` already holds a SISA model or is not writable.
            ConfigError: impossible shards/slices or an unknown model or aggregation.
        """
        root = Path(out)
        if (root / "sisa.json").exists():
            raise StoreError(f"{root} already holds a SISA model; choose another --out or delete "
                             f"that folder first.")
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
        tensors = {"x": x.contiguous(), "y": y.contiguous()}
        if groups is not None:
            tensors["groups"] = torch.as_tensor(np.asarray(groups, dtype=np.int64))
        _atomic_save(root / "data.safetensors", tensors, {})
        model = cls(root, config, x, y, None if groups is None else np.asarray(groups))
        for s in range(plan.shards):
            train_shard(model.factory, x, y, plan, s, model.recipe, seed,
                        deleted=np.empty(0, dtype=np.int64),
                        on_checkpoint=model._saver(0, on_checkpoint))
        model.ledger.set_initial(plan.shards, plan.slices)
        # sisa.json last: a folder without it is an unfinished training, safe to train again
        tmp = root / ".sisa.json.tmp"
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, root / "sisa.json")
        return model

    @classmethod
    def open(cls, path: str | Path, *, recover: bool = True,
             on_checkpoint: OnCheckpoint | None = None) -> SisaModel:
        """Open a SISA model directory; with ``recover``, first complete any pending request."""
        root = Path(path)
        if not (root / "sisa.json").exists():
            raise StoreError(f"{root} is not a SISA model directory (no sisa.json); create one "
                             f"with 'obliviate sisa train SCENARIO --out {root}'.")
        config = json.loads((root / "sisa.json").read_text())
        if config.get("format") != FORMAT:
            raise StoreError(f"{root}/sisa.json has format {config.get('format')!r}; this "
                             f"version of obliviate reads {FORMAT!r}.")
        data = load_file(str(root / "data.safetensors"))
        groups = data["groups"].numpy() if "groups" in data else None
        model = cls(root, config, data["x"], data["y"], groups)
        if recover:
            model.resume(on_checkpoint=on_checkpoint)
        return model

    def close(self) -> None:
        self.ledger.close()

    # ------------------------------------------------------------------ models
    def factory(self, seed: int) -> nn.Module:
        cfg = self.config
        return build_model(cfg["model"], tuple(cfg["input_shape"]), cfg["num_classes"], seed=seed)

    def _path(self, shard: int, slice_: int, version: int) -> Path:
        return self.root / f"shard{shard:03d}" / f"slice{slice_:02d}.v{version}.safetensors"

    def _saver(self, version: int, then: OnCheckpoint | None) -> OnCheckpoint:
        def save(shard: int, slice_: int, state: State) -> None:
            _atomic_save(self._path(shard, slice_, version), state,
                         {"shard": shard, "slice": slice_, "version": version})
            if then is not None:
                then(shard, slice_, state)
        return save

    def _load(self, shard: int, slice_: int, version: int) -> State:
        path = self._path(shard, slice_, version)
        try:
            return load_file(str(path))
        except (OSError, Exception) as exc:
            raise StoreError(f"Checkpoint {path} is missing or unreadable ({exc}); the SISA "
                             f"model in {self.root} is damaged.") from None

    def ensemble(self) -> SisaEnsemble:
        """The served ensemble: each shard's last-slice checkpoint of the current version."""
        versions = self.ledger.checkpoint_versions()
        last = self.plan.slices - 1
        members = []
        for s in range(self.plan.shards):
            m = self.factory(0)
            m.load_state_dict(self._load(s, last, versions[(s, last)]))
            members.append(m.eval())
        return SisaEnsemble(members, self.config["aggregation"]).eval()

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
               groups: np.ndarray | list[int] | None = None,
               on_checkpoint: OnCheckpoint | None = None) -> ForgetResult:
        """Delete training indices ``ids`` (and every member of ``groups``) exactly.

        The request is recorded pending, the shards holding the ids are retrained from the
        checkpoint before the earliest slice that held one, and the new version is served.

        Raises:
            DataError: no ids, an id out of range, an id already deleted, an unknown group.
        """
        wanted = [] if ids is None else list(np.asarray(ids).ravel())
        if groups is not None:
            wanted += list(self.ids_of_groups(np.asarray(groups).ravel()))
        checked = check_ids(np.asarray(wanted, dtype=np.int64) if wanted else np.asarray([]),
                            self.plan.n)
        self.resume(on_checkpoint=on_checkpoint)
        request = self.ledger.open_request(checked)
        return self._complete(request, checked, on_checkpoint)

    def resume(self, on_checkpoint: OnCheckpoint | None = None) -> list[ForgetResult]:
        """Complete every pending request, oldest first (after a crash)."""
        return [self._complete(r.id, np.array(r.ids, dtype=np.int64), on_checkpoint)
                for r in self.ledger.pending()]

    def _complete(self, request: int, ids: np.ndarray,
                  on_checkpoint: OnCheckpoint | None) -> ForgetResult:
        start = time.perf_counter()
        deleted = self._deleted_upto(request)  # every id of this and earlier requests
        shards = self.plan.locate(ids)
        versions = self.ledger.checkpoint_versions()
        saver = self._saver(request, on_checkpoint)
        for s, first in shards.items():
            state = self._load(s, first - 1, versions[(s, first - 1)]) if first > 0 else None
            train_shard(self.factory, self.x, self.y, self.plan, s, self.recipe, self.seed,
                        deleted=deleted, start_slice=first, start_state=state,
                        on_checkpoint=saver)
        remaining = np.setdiff1d(np.arange(self.plan.n), deleted)
        seconds = time.perf_counter() - start
        self.ledger.complete(request, request, shards, index_hash(remaining), seconds)
        self._collect_garbage()
        return ForgetResult(request, tuple(int(i) for i in ids), shards, request, seconds,
                            index_hash(remaining))

    def _deleted_upto(self, request: int) -> np.ndarray:
        rows = self.ledger.conn.execute("SELECT idx FROM deleted WHERE request <= ?", (request,))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _collect_garbage(self) -> None:
        """Remove checkpoint files that no served version points to any more."""
        keep = {self._path(s, r, v) for (s, r), v in self.ledger.checkpoint_versions().items()}
        for path in self.root.glob("shard*/slice*.safetensors"):
            if path not in keep:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        """Sizes, plan, version, and every request with its state."""
        reqs = self.ledger.requests()
        return {
            "dir": str(self.root), "model": self.config["model"], "source": self.config["source"],
            "shards": self.plan.shards, "slices": self.plan.slices, "n_train": self.plan.n,
            "deleted": int(len(self.ledger.deleted(complete_only=True))),
            "version": self.ledger.version(),
            "pending": [r.id for r in reqs if r.status == "pending"],
            "requests": [{"id": r.id, "status": r.status, "n_ids": len(r.ids),
                          "shards": r.shards, "version": r.version, "seconds": r.seconds,
                          "remaining_hash": r.remaining_hash,
                          "created": time.strftime("%Y-%m-%d %H:%M:%S",
                                                   time.gmtime(r.created))} for r in reqs],
        }

