"""A :class:`Scenario`: fixed splits, a forget set, a model and its training recipe."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from obliviate.config import config_dict
from obliviate.data.forget import index_hash
from obliviate.train import Recipe, tensor_loader, train_model

if TYPE_CHECKING:
    from obliviate.data.reasons import Backdoor


@dataclass
class Splits:
    """Standardised tensors of one data set, split once and for all."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...] = ()
    groups: torch.Tensor | None = None  # int64 group id (user, person, author) per train example


@dataclass
class Scenario:
    """A data set with its splits and forget set, the model to train and how to train it.

    Build one with :func:`obliviate.load_scenario`. The splits are fixed for a scenario and its
    options; ``seed`` chooses the forget set; the seed passed to :meth:`train_original` chooses
    the model's initialisation and data order.
    """

    name: str
    options: dict[str, Any]
    splits: Splits
    forget_spec: str
    forget_idx: np.ndarray
    seed: int
    model_name: str
    recipe: Recipe
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    backdoor: Backdoor | None = None  # the trigger planted by a poisoned:FRACTION forget spec
    task: str = "classification"  # or "regression", "anomaly" (obliviate.evaluate.tasks)
    model_options: dict[str, Any] = field(default_factory=dict)  # data-given sizes, e.g. vocab
    device: str = "cpu"  # where its models are built, trained and run (a bench's --device)
    # model and recipe fields the method_defaults were tuned with (see tuning_mismatch)
    tuned_with: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.splits.y_train)
        mask = np.ones(n, dtype=bool)
        mask[self.forget_idx] = False
        self.retain_idx = np.flatnonzero(mask)

    # ------------------------------------------------------------------ facts
    @property
    def num_classes(self) -> int:
        return self.splits.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits.x_train.shape[1:])

    def split_hashes(self) -> dict[str, str]:
        """Fingerprints of every index set: identical hashes mean identical data."""
        if getattr(self, "_hashes", None) is None:
            self._hashes = self._compute_hashes()
        return dict(self._hashes)

    def _compute_hashes(self) -> dict[str, str]:
        s = self.splits
        return {
            "train": _tensor_hash(s.x_train, s.y_train),
            "val": _tensor_hash(s.x_val, s.y_val),
            "test": _tensor_hash(s.x_test, s.y_test),
            "forget": index_hash(self.forget_idx),
            "retain": index_hash(self.retain_idx),
        }

    def tuning_mismatch(self) -> list[str]:
        """How this scenario's model and recipe differ from those its method_defaults were
        tuned with, e.g. ``["recipe.epochs=5 (tuned with 30)"]``, each named as ``--set``
        names it (``scenario.model``, ``recipe.lr``: the training recipe's, not a method's);
        empty when they match or when it has no tuned defaults. Tuned learning rates can
        collapse a model under another recipe."""
        current = {"model": self.model_name, **config_dict(self.recipe)}
        return [f"{'scenario' if k == 'model' else 'recipe'}.{k}={current.get(k)} "
                f"(tuned with {v})" for k, v in self.tuned_with.items() if current.get(k) != v]

    def describe(self) -> dict[str, Any]:
        """Everything that determines this scenario's data and models, as JSON-able values."""
        return {
            "scenario": self.name,
            "options": self.options,
            "forget": self.forget_spec,
            "forget_seed": self.seed,
            "model": self.model_name,
            "recipe": config_dict(self.recipe),
            "sizes": {
                "train": len(self.splits.y_train),
                "val": len(self.splits.y_val),
                "test": len(self.splits.y_test),
                "forget": len(self.forget_idx),
                "retain": len(self.retain_idx),
            },
            "split_hashes": self.split_hashes(),
            # only where they apply, so that classification scenarios keep their job keys
            **({"backdoor": self.backdoor.describe()} if self.backdoor is not None else {}),
            **({"task": self.task} if self.task != "classification" else {}),
            **({"model_options": self.model_options} if self.model_options else {}),
        }

    def fingerprint(self, kind: str, seed: int) -> str:
        """Cache key of a reference model: 'original' ignores the forget set, 'retrained' not."""
        hashes = self.split_hashes()
        parts = {
            "kind": kind,
            "seed": seed,
            "scenario": self.name,
            "model": self.model_name,
            "recipe": config_dict(self.recipe),
            "train": hashes["train"],
        }
        if kind != "original":
            parts["retain"] = hashes["retain"]
        blob = json.dumps(parts, sort_keys=True).encode()
        return f"{kind}-{hashlib.sha256(blob).hexdigest()[:20]}"

    # ------------------------------------------------------------------ data
    @property
    def x_forget(self) -> torch.Tensor:
        return self.splits.x_train[self.forget_idx]

    @property
    def y_forget(self) -> torch.Tensor:
        return self.splits.y_train[self.forget_idx]

    @property
    def x_retain(self) -> torch.Tensor:
        return self.splits.x_train[self.retain_idx]

    @property
    def y_retain(self) -> torch.Tensor:
        return self.splits.y_train[self.retain_idx]

    def _bs(self, batch_size: int | None) -> int:
        return batch_size or self.recipe.batch_size

    def forget_loader(self, batch_size: int | None = None, *, shuffle: bool = True,
                      seed: int = 0) -> DataLoader:
        return tensor_loader(self.x_forget, self.y_forget, self._bs(batch_size),
                             shuffle=shuffle, seed=seed)

    def retain_loader(self, batch_size: int | None = None, *, shuffle: bool = True,
                      seed: int = 0) -> DataLoader:
        return tensor_loader(self.x_retain, self.y_retain, self._bs(batch_size),
                             shuffle=shuffle, seed=seed + 1)

    def test_loader(self, batch_size: int = 512) -> DataLoader:
        return tensor_loader(self.splits.x_test, self.splits.y_test, batch_size)

    def val_loader(self, batch_size: int = 512) -> DataLoader:
        return tensor_loader(self.splits.x_val, self.splits.y_val, batch_size)

    # ------------------------------------------------------------------ models
    def new_model(self, seed: int = 0) -> nn.Module:
        from obliviate.models import build_model

        return build_model(self.model_name, self.input_shape, self.num_classes, seed=seed,
                           **self.model_options).to(self.device)

    def train_original(self, seed: int = 0, *, device: str | None = None) -> nn.Module:
        """Train on the full training set (forget and retain) with the scenario's recipe."""
        return self.train_original_timed(seed, device=device)[0]

    def train_retrained(self, seed: int = 0, *, device: str | None = None) -> nn.Module:
        """Train from scratch on the retain set only: the gold standard of unlearning."""
        return self.train_retrained_timed(seed, device=device)[0]

    def train_original_timed(self, seed: int = 0, *, device: str | None = None):
        """(original, training seconds); ``device`` defaults to the scenario's."""
        s = self.splits
        return train_model(self.model_name, self.input_shape, self.num_classes, s.x_train,
                           s.y_train, self.recipe, seed, owner="original",
                           device=device or self.device, model_options=self.model_options)

    def train_retrained_timed(self, seed: int = 0, *, device: str | None = None):
        """(model trained on the retain set only, training seconds)."""
        return train_model(self.model_name, self.input_shape, self.num_classes, self.x_retain,
                           self.y_retain, self.recipe, seed, owner="retrain",
                           device=device or self.device, model_options=self.model_options)


def _tensor_hash(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x.numpy()).tobytes())
    h.update(np.ascontiguousarray(y.numpy()).tobytes())
    return h.hexdigest()[:16]
