"""What a batch and a model's output may look like, read in one place.

Every method, the training loop and the evaluation read batches and outputs through these
functions, so that users' models and loaders work unchanged:

- a batch is ``(inputs, labels, ...)`` (extra fields such as indices are ignored) or a mapping
  with ``labels`` whose other keys are the model's keyword arguments (Hugging Face style,
  ``BatchEncoding`` included); inputs that are a mapping go to a model whose ``forward(batch)``
  takes one positional argument as that argument (:func:`takes_mapping`);
- a model's output is a tensor of logits, a tuple whose first element is the logits, or a
  mapping / ``ModelOutput`` with ``logits``.

Anything else is a :class:`~obliviate.errors.DataError` that says what was found and what to
give instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from obliviate.errors import DataError

Inputs = Any  # a tensor, or a mapping of keyword arguments for the model
LABEL_KEYS = ("labels", "label")
BATCH_HELP = ("A batch must be (inputs, labels) or a mapping with 'labels' whose other keys are "
              "the model's keyword arguments")


def split_batch(batch: Any) -> tuple[Inputs, torch.Tensor]:
    """(inputs, labels) of one batch.

    Raises:
        DataError: the batch is neither a sequence of at least two items nor a mapping with
            ``labels``.
    """
    if isinstance(batch, Mapping):
        key = next((k for k in LABEL_KEYS if k in batch), None)
        if key is None:
            raise DataError(f"A mapping batch needs a 'labels' entry; this one has keys "
                            f"{sorted(map(str, batch))}. Add the labels to the batch (e.g. "
                            f"from your collate_fn).")
        return {k: v for k, v in batch.items() if k not in LABEL_KEYS}, batch[key]
    if isinstance(batch, tuple | list) and len(batch) >= 2:
        return batch[0], batch[1]
    found = type(batch).__name__ if not isinstance(batch, tuple | list) else \
        f"a {type(batch).__name__} of {len(batch)} item(s)"
    raise DataError(f"{BATCH_HELP}; got {found}. Wrap the data as "
                    f"DataLoader(TensorDataset(x, y)) or return labels from the collate_fn.")


def inputs_to(inputs: Inputs, device: torch.device | str, dtype: torch.dtype | None = None
              ) -> Inputs:
    """``inputs`` moved to ``device`` (every tensor of a mapping).

    With ``dtype``, floating-point tensors are cast to it (integer token ids are left alone).
    """

    def move(v: Any) -> Any:
        if not isinstance(v, torch.Tensor):
            return v
        if dtype is not None and v.is_floating_point() and v.dtype != dtype:
            return v.to(device, dtype)
        return v.to(device)

    if isinstance(inputs, Mapping):
        return {k: move(v) for k, v in inputs.items()}
    return move(inputs)


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model's output: a tensor, a tuple's first element, or ``.logits``.

    Raises:
        DataError: the output holds no tensor of logits in any of these forms.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if "logits" not in output:
            raise DataError(f"The model returned a mapping with keys {sorted(map(str, output))} "
                            f"and no 'logits'; return the logits (a tensor), a tuple with the "
                            f"logits first, or an output with .logits.")
        return logits_of(output["logits"])
    if hasattr(output, "logits"):
        return logits_of(output.logits)
    if isinstance(output, tuple | list) and output:
        return logits_of(output[0])
    raise DataError(f"The model returned {type(output).__name__}; return the logits (a tensor), "
                    f"a tuple with the logits first, or an output with .logits.")


MAPPING_CONVENTION = ("a mapping of inputs goes to the model as keyword arguments "
                      "(model(**inputs)), or as the one positional argument when forward takes "
                      "one and the keys are not its parameters")


def takes_mapping(model: nn.Module, inputs: Mapping) -> bool:
    """Whether ``model.forward`` takes the mapping ``inputs`` itself, as its one argument.

    Keyword arguments (Hugging Face style) when every key names a parameter of ``forward`` or
    it takes ``**kwargs``; the mapping as the one positional argument when ``forward`` has
    exactly one required positional parameter (``def forward(self, batch)``) and the keys are
    not its parameters.
    """
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    kinds = inspect.Parameter
    if any(p.kind is kinds.VAR_KEYWORD for p in params):
        return False
    named = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    if all(isinstance(k, str) and k in named for k in inputs):
        return False
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                  kinds.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty and p.kind not in (
        kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)]
    return bool(positional) and len(required) <= 1 and (not required or required[0] is
                                                       positional[0])


def forward(model: nn.Module, inputs: Inputs) -> torch.Tensor:
    """The logits of ``model`` on ``inputs``; a mapping is passed as :func:`takes_mapping`
    decides (keyword arguments, or the mapping itself)."""
    if isinstance(inputs, Mapping):
        out = model(inputs) if takes_mapping(model, inputs) else model(**inputs)
    else:
        out = model(inputs)
    return logits_of(out)


def batch_size_of(inputs: Inputs) -> int:
    """Number of examples in ``inputs``."""
    if isinstance(inputs, Mapping):
        first = next((v for v in inputs.values() if isinstance(v, torch.Tensor)), None)
        if first is None:
            raise DataError("A mapping batch holds no tensor; its inputs must be tensors with one "
                            "row per example.")
        return len(first)
    return len(inputs)


def take(inputs: Inputs, rows: slice | torch.Tensor | int) -> Inputs:
    """The given rows of ``inputs`` (every tensor of a mapping that has one row per example)."""
    if isinstance(inputs, Mapping):
        n = batch_size_of(inputs)
        return {k: v[rows] if isinstance(v, torch.Tensor) and v.dim() and len(v) == n else v
                for k, v in inputs.items()}
    return inputs[rows]


def unsqueeze(inputs: Inputs) -> Inputs:
    """One example as a batch of one (a leading axis on every tensor)."""
    if isinstance(inputs, Mapping):
        return {k: v.unsqueeze(0) if isinstance(v, torch.Tensor) else v
                for k, v in inputs.items()}
    return inputs.unsqueeze(0)


def functional_forward(model: nn.Module, tensors: Any, inputs: Inputs) -> torch.Tensor:
    """The logits of ``torch.func.functional_call(model, tensors, inputs)``.

    ``inputs`` is a tensor (the positional argument) or a mapping of keyword arguments.
    """
    from torch.func import functional_call

    if isinstance(inputs, Mapping) and not takes_mapping(model, inputs):
        return logits_of(functional_call(model, tensors, (), dict(inputs)))
    return logits_of(functional_call(model, tensors, (inputs,)))
