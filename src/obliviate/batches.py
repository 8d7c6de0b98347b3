"""What a batch and a model's output may look like, read in one place.

Every method, the training loop and the evaluation read batches and outputs through these
functions, so that users' models and loaders work unchanged:

- a batch is ``(inputs, labels, ...)`` (extra fields such as indices are ignored) or a mapping
  with ``labels`` whose other keys are the model's keyword arguments (Hugging Face style);
- a model's output is a tensor of logits, a tuple whose first element is the logits, or a
  mapping / ``ModelOutput`` with ``logits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

Inputs = Any  # a tensor, or a mapping of keyword arguments for the model


def split_batch(batch: Any) -> tuple[Inputs, torch.Tensor]:
    """(inputs, labels) of one batch."""
    if isinstance(batch, Mapping):
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "label")}
        return inputs, batch["labels"] if "labels" in batch else batch["label"]
    return batch[0], batch[1]


def inputs_to(inputs: Inputs, device: torch.device) -> Inputs:
    """``inputs`` moved to ``device`` (every tensor of a mapping)."""
    if isinstance(inputs, Mapping):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    return inputs.to(device)


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model's output: a tensor, a tuple's first element, or ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) or hasattr(output, "logits"):
        return output["logits"] if isinstance(output, Mapping) else output.logits
    if isinstance(output, tuple | list):
        return output[0]
    return output


def forward(model: nn.Module, inputs: Inputs) -> torch.Tensor:
    """The logits of ``model`` on ``inputs`` (keyword arguments when ``inputs`` is a mapping)."""
    out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    return logits_of(out)


def batch_size_of(inputs: Inputs) -> int:
    """Number of examples in ``inputs``."""
    if isinstance(inputs, Mapping):
        first = next(v for v in inputs.values() if isinstance(v, torch.Tensor))
        return len(first)
    return len(inputs)
