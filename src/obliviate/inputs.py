"""Check a user's model and loaders at the boundary, before any training.

:func:`check_unlearn_inputs` is what :func:`obliviate.unlearn` runs first. It refuses, each with
one sentence that names the problem and the fix:

- a model that is not an ``nn.Module`` (a state_dict, a path, a class), has no parameters, or
  mixes devices or floating dtypes;
- a loader that is a tensor, an ``(x, y)`` pair or a bare ``Dataset``, or that yields no batch
  (an empty forget set would otherwise return the model unchanged);
- a first batch whose labels are not integer class indices, whose floating inputs are of
  another dtype than the model's weights, on which the model fails, or whose outputs are not
  finite logits with one row per example and more columns than the largest label.

One batch of each DataLoader is read for this, without advancing a shuffling loader's sampler
(the examples are taken from the dataset and passed through the loader's ``collate_fn``), so
the run's data order is the same as without the check. Other iterables of batches get the
type checks only (see :func:`first_batch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from obliviate.batches import (
    MAPPING_CONVENTION,
    batch_size_of,
    forward,
    inputs_to,
    split_batch,
)
from obliviate.errors import ConfigError, DataError

UNSEEN = object()  # first_batch of an iterable it does not read
LOADER_FIX = "pass a DataLoader of (inputs, labels) batches, e.g. " \
             "DataLoader(TensorDataset(x, y), batch_size=64)"


@dataclass(frozen=True)
class ModelFacts:
    """What the checks learnt about the model: where it lives and what it outputs."""

    device: torch.device
    dtype: torch.dtype | None  # the floating dtype of its weights (None: no floating weight)
    num_outputs: int | None = None  # columns of its logits on the first batch


def check_model(model: Any, owner: str = "unlearn") -> ModelFacts:
    """Refuse anything but a usable ``nn.Module``; returns its device and weight dtype."""
    if isinstance(model, Mapping) and all(isinstance(v, torch.Tensor) for v in model.values()):
        raise ConfigError(f"{owner} got a state_dict (a mapping of tensors), not a model; build "
                          f"the model, call model.load_state_dict(state) and pass the model.")
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise ConfigError(f"{owner} got the class {model.__name__}, not a model; pass a trained "
                          f"instance of it.")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{owner} needs a torch.nn.Module (the trained model); got "
                          f"{type(model).__name__}. Load or build the model first.")
    params = list(model.parameters())
    if not params:
        raise ConfigError(f"{owner} got a model without parameters ({type(model).__name__}); "
                          f"there is nothing to unlearn in it.")
    devices = sorted({str(p.device) for p in params})
    if len(devices) > 1:
        raise ConfigError(f"The model's parameters are on several devices ({', '.join(devices)});"
                          f" move it to one with model.to(device).")
    floating = sorted({str(p.dtype) for p in params if p.is_floating_point()})
    if len(floating) > 1:
        raise ConfigError(f"The model's parameters mix floating dtypes ({', '.join(floating)}); "
                          f"give them one, e.g. model.float() or model.double().")
    dtype = next((p.dtype for p in params if p.is_floating_point()), None)
    return ModelFacts(params[0].device, dtype)


def check_loader(loader: Any, name: str) -> None:
    """Refuse a tensor, an (x, y) pair, a bare Dataset or a non-iterable as a loader."""
    if isinstance(loader, torch.Tensor):
        raise DataError(f"The {name} set is a tensor; {LOADER_FIX}.")
    if isinstance(loader, tuple | list) and len(loader) == 2 and all(
            isinstance(t, torch.Tensor) for t in loader):
        raise DataError(f"The {name} set is an (x, y) pair of tensors; {LOADER_FIX}.")
    if isinstance(loader, Dataset) and not isinstance(loader, DataLoader):
        raise DataError(f"The {name} set is a Dataset ({type(loader).__name__}); wrap it as "
                        f"DataLoader(dataset, batch_size=64).")
    if not isinstance(loader, Iterable):
        raise DataError(f"The {name} set is a {type(loader).__name__}, which cannot be iterated; "
                        f"{LOADER_FIX}.")


def first_batch(loader: Iterable) -> Any:
    """The first batch ``loader`` gives, None when it gives none, or UNSEEN when it cannot tell.

    For a DataLoader over a map-style dataset the batch is built from the first examples and
    the loader's ``collate_fn``, so its sampler (and the generator that shuffles it) is not
    advanced; a list or tuple of batches gives its first item. Other iterables are not read
    (a pass over them may have side effects, and an iterator would lose its first batch). The
    global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        if isinstance(loader, DataLoader):
            if isinstance(loader.dataset, IterableDataset) or loader.batch_size is None \
                    or not hasattr(loader.dataset, "__len__"):
                return next(iter(loader), None)  # DataLoader passes restart; nothing is lost
            n = len(loader.dataset)
            if n == 0 or (loader.drop_last and n < loader.batch_size):
                return None
            items = [loader.dataset[i] for i in range(min(loader.batch_size, n))]
            return loader.collate_fn(items)
        if isinstance(loader, Sequence):
            return loader[0] if len(loader) else None
    return UNSEEN


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_batch(model: nn.Module, batch: Any, name: str, facts: ModelFacts, *,
                task: str = "classification", num_classes: int | None = None) -> int | None:
    """Check one batch against the model; returns the number of logit columns (classifiers).

    Raises:
        DataError: labels that are not integer class indices, inputs of another floating
            dtype than the model's weights, a forward that fails, or outputs that are not
            finite logits (batch, classes) covering every label.
    """
    x, y = split_batch(batch)
    if not isinstance(y, torch.Tensor):
        raise DataError(f"The labels of the {name} set are a {type(y).__name__}; they must be "
                        f"a tensor of class indices, one per example.")
    n = batch_size_of(x)
    if task == "classification":
        _check_labels(y, n, name)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            logits = forward(model, inputs_to(x, facts.device))
    except DataError:
        raise
    except Exception as exc:  # the user's model on the user's data: report, do not crash
        _check_input_dtype(x, name, facts)  # the usual cause, with its own fix
        how = f" ({MAPPING_CONVENTION})" if isinstance(x, Mapping) else ""
        raise DataError(f"The model failed on the first batch of the {name} set "
                        f"({_first_line(exc)}); check that the inputs have the shape and type "
                        f"the model's forward expects{how}.") from None
    finally:
        model.train(was_training)
    if not isinstance(logits, torch.Tensor):
        raise DataError(f"The model's output on the {name} set holds {type(logits).__name__}, "
                        f"not a tensor of logits.")
    if not torch.isfinite(logits).all():
        raise DataError(f"The model's outputs on the first batch of the {name} set hold NaN or "
                        f"infinite values; check its weights and the scaling of the inputs.")
    if task != "classification":
        if len(logits) != n:
            raise DataError(f"The model returned {len(logits)} outputs for {n} examples of the "
                            f"{name} set; it must return one per example.")
        return None
    if logits.dim() != 2 or len(logits) != n:
        raise DataError(f"The model's logits on {n} examples of the {name} set have shape "
                        f"{tuple(logits.shape)}; a classifier must return (batch, classes), one "
                        f"row per example.")
    width = logits.shape[1]
    top = int(y.max()) if y.numel() else -1
    if top >= width:
        raise DataError(f"The {name} set has label {top} but the model outputs {width} "
                        f"logits (classes 0..{width - 1}); give the model {top + 1} outputs or "
                        f"relabel the data.")
    if num_classes is not None and (top >= num_classes or num_classes > width):
        raise DataError(f"num_classes={num_classes} does not fit: the model outputs {width} "
                        f"logits and the {name} set's labels go up to {top}; pass "
                        f"num_classes={width} or leave it out.")
    return width


def _check_labels(y: torch.Tensor, n: int, name: str) -> None:
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise DataError(f"The labels of the {name} set are {y.dtype}; class labels must be "
                        f"integer indices: pass y.long().")
    if y.dim() != 1 or len(y) != n:
        hint = " (one-hot? pass y.argmax(1))" if y.dim() == 2 else ""
        raise DataError(f"The labels of the {name} set have shape {tuple(y.shape)} for {n} "
                        f"examples; give one class index per example{hint}.")
    if y.numel() and int(y.min()) < 0:
        raise DataError(f"The {name} set has label {int(y.min())}; class labels must be "
                        f"indices >= 0.")


def _check_input_dtype(x: Any, name: str, facts: ModelFacts) -> None:
    tensors = x.values() if isinstance(x, Mapping) else [x]
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and facts.dtype is not None \
                and t.dtype != facts.dtype:
            raise DataError(
                f"The inputs of the {name} set are {t.dtype} but the model's weights are "
                f"{facts.dtype}; cast one to the other (x.to({facts.dtype}) or "
                f"model.to({t.dtype})).")


def check_unlearn_inputs(model: Any, forget: Any, retain: Any, val: Any = None, *,
                         num_classes: int | None = None, needs_retain: bool = True) -> int:
    """Every check :func:`obliviate.unlearn` needs; returns the number of classes.

    ``num_classes`` is checked against the model's outputs when given, and is their width
    otherwise (1 for models of other tasks, which declare ``task``).
    """
    facts = check_model(model)
    task = getattr(model, "task", "classification")
    loaders = {"forget": forget, "retain": retain if needs_retain or retain is not None else None,
               "validation": val}
    width = None
    for name, loader in loaders.items():
        if loader is None:
            continue
        check_loader(loader, name)
        if name == "validation":
            continue
        batch = first_batch(loader)
        if batch is UNSEEN:
            continue
        if batch is None:
            fix = "select at least one example to forget" if name == "forget" else \
                "give it at least one example"
            raise DataError(f"The {name} loader yields no batch (an empty set, or drop_last "
                            f"with fewer examples than batch_size); {fix}.")
        got = check_batch(model, batch, name, facts, task=task, num_classes=num_classes)
        width = width or got
    if task != "classification":
        return num_classes or 1
    return num_classes or width or infer_num_classes(model)


def infer_num_classes(model: nn.Module) -> int:
    """The output width of the model's last Linear layer (when no batch could be read)."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ConfigError("Cannot infer num_classes from the model; pass num_classes=.")
    return last.out_features
