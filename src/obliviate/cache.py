"""Reference models (originals, retrained) and prepared deployments, stored once as safetensors.

A file is named by the scenario's fingerprint of the model (scenario, model, recipe, split
hashes, seed) and carries that description and its training time in its metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn


class ModelCache:
    """A folder of ``<fingerprint>.safetensors`` files."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, fingerprint: str) -> Path:
        return self.root / f"{fingerprint}.safetensors"

    def load(self, fingerprint: str, model: nn.Module) -> tuple[nn.Module, dict] | None:
        """Load weights into ``model``; None when absent or unreadable (then it is retrained)."""
        path = self.path(fingerprint)
        if not path.exists():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
            model.load_state_dict(load_file(str(path)))
        except Exception:
            return None  # a torn or foreign file: train again and overwrite it
        model.eval()
        return model, {**json.loads(meta.get("info", "{}"))}

    def save(self, fingerprint: str, model: nn.Module, info: dict) -> Path:
        return self.write(fingerprint, model.state_dict(), info)

    def read(self, fingerprint: str) -> tuple[dict, dict] | None:
        """(tensors, info) stored under ``fingerprint``; None when absent or unreadable."""
        path = self.path(fingerprint)
        if not path.exists():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
            return load_file(str(path)), json.loads(meta.get("info", "{}"))
        except Exception:
            return None  # a torn or foreign file: computed again and overwritten

    def write(self, fingerprint: str, tensors: dict, info: dict) -> Path:
        """Write ``tensors`` atomically: a reader sees the old file or the whole new one."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(fingerprint)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(state, str(tmp), metadata={"info": json.dumps(info, sort_keys=True)})
        os.replace(tmp, path)
        return path

    def save_population(self, fingerprint: str, population, info: dict) -> Path:
        """Store a population's stacked weights in one file."""
        tensors = {**{f"p.{k}": v for k, v in population.params.items()},
                   **{f"b.{k}": v for k, v in population.buffers.items()}}
        return self.write(fingerprint, tensors, info)

    def load_population(self, fingerprint: str, skeleton: nn.Module):
        """The cached population for ``fingerprint`` built on ``skeleton``, or None."""
        from obliviate.population import Population

        path = self.path(fingerprint)
        if not path.exists():
            return None
        try:
            from safetensors import safe_open

            state = load_file(str(path))
            with safe_open(str(path), framework="pt") as fh:
                info = json.loads(dict(fh.metadata() or {}).get("info", "{}"))
        except Exception:
            return None
        params = {k[2:]: v for k, v in state.items() if k.startswith("p.")}
        buffers = {k[2:]: v for k, v in state.items() if k.startswith("b.")}
        names = set(dict(skeleton.named_parameters()))
        if set(params) != names:
            return None
        return Population(skeleton.to("meta"), params, buffers, info.get("mode", "vmap"),
                          info.get("note", ""))

    def get_or_train(
        self,
        fingerprint: str,
        empty: Callable[[], nn.Module],
        train: Callable[[], tuple[nn.Module, float]],
        info: dict,
    ) -> tuple[nn.Module, float]:
        """(model, training seconds) for ``fingerprint``, trained only when not cached."""
        hit = self.load(fingerprint, empty())
        if hit is not None:
            model, meta = hit
            return model, float(meta.get("train_seconds", float("nan")))
        model, seconds = train()
        self.save(fingerprint, model, {**info, "train_seconds": seconds})
        return model, seconds

