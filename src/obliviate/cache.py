"""Reference models (originals, retrained) and prepared deployments, stored once as safetensors.

A file is named by the scenario's fingerprint of the model (scenario, model, recipe, split
hashes, seed) and carries that description and its training time in its metadata. Nothing in
a cache file is code: weights are safetensors and the metadata is read as JSON only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from obliviate.files import write_atomic


class ModelCache:
    """A folder of ``<fingerprint>.safetensors`` files.

    A file that is torn, foreign (not safetensors, or metadata that is not the JSON mapping this
    class writes) or does not fit the model is ignored: the caller trains again and overwrites
    it, and ``on_note`` is told once per file (a bench prints it with its notes).
    """

    def __init__(self, root: Path, on_note: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.notes: list[str] = []
        self.on_note = on_note

    def path(self, fingerprint: str) -> Path:
        return self.root / f"{fingerprint}.safetensors"

    def _ignore(self, path: Path, why: str) -> None:
        note = f"ignored the cached model {path.name} ({why}); it is trained again"
        if note not in self.notes:
            self.notes.append(note)
            if self.on_note is not None:
                self.on_note(note)

    def read(self, fingerprint: str) -> tuple[dict, dict] | None:
        """(tensors, info) stored under ``fingerprint``; None when absent or unreadable (with a
        note: it is computed again and overwritten)."""
        path = self.path(fingerprint)
        if not path.exists():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
            tensors = load_file(str(path))
            info = json.loads(meta.get("info", "{}")) if isinstance(meta, dict) else None
        except Exception as exc:  # safetensors raises its own error types on a torn file
            self._ignore(path, f"unreadable: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            return None
        seconds = info.get("train_seconds", 0.0) if isinstance(info, dict) else None
        if not isinstance(info, dict) or isinstance(seconds, bool) or \
                not isinstance(seconds, int | float):
            self._ignore(path, "its metadata is not the JSON mapping obliviate writes")
            return None
        return tensors, info

    def load(self, fingerprint: str, model: nn.Module) -> tuple[nn.Module, dict] | None:
        """Load weights into ``model``; None when absent or unreadable (then it is retrained)."""
        hit = self.read(fingerprint)
        if hit is None:
            return None
        tensors, info = hit
        try:
            model.load_state_dict(tensors)
        except (RuntimeError, ValueError, TypeError) as exc:
            self._ignore(self.path(fingerprint), f"does not fit the model: "
                                                 f"{str(exc).splitlines()[0]}")
            return None
        model.eval()
        return model, info

    def save(self, fingerprint: str, model: nn.Module, info: dict) -> Path:
        return self.write(fingerprint, model.state_dict(), info)

    def write(self, fingerprint: str, tensors: dict, info: dict) -> Path:
        """Write ``tensors`` atomically: a reader sees the old file or the whole new one.

        Raises:
            DiskFullError: the disk filled up (no partial file is left; the bench stops with one
                line and resumes when run again).
        """
        path = self.path(fingerprint)
        state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        metadata = {"info": json.dumps(info, sort_keys=True)}
        write_atomic(path, lambda tmp: save_file(state, str(tmp), metadata=metadata),
                     doing="writing the model cache")
        return path

    def save_population(self, fingerprint: str, population, info: dict) -> Path:
        """Store a population's stacked weights in one file."""
        tensors = {**{f"p.{k}": v for k, v in population.params.items()},
                   **{f"b.{k}": v for k, v in population.buffers.items()}}
        return self.write(fingerprint, tensors, info)

    def load_population(self, fingerprint: str, skeleton: nn.Module):
        """The cached population for ``fingerprint`` built on ``skeleton``, or None."""
        from obliviate.population import Population

        hit = self.read(fingerprint)
        if hit is None:
            return None
        state, info = hit
        params = {k[2:]: v for k, v in state.items() if k.startswith("p.")}
        buffers = {k[2:]: v for k, v in state.items() if k.startswith("b.")}
        names = set(dict(skeleton.named_parameters()))
        if set(params) != names:
            self._ignore(self.path(fingerprint), "it holds other parameters than the model")
            return None
        return Population(skeleton.to("meta"), params, buffers, str(info.get("mode", "vmap")),
                          str(info.get("note", "")))

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

