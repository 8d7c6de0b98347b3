"""Per-example outputs and accuracy of a classifier on a loader or on tensors."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    WeightedRandomSampler,
)

from obliviate.batches import forward
from obliviate.train import model_device, resolve_device, to_device


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable, *, device: str | torch.device | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, classes) as float64 and labels (n,) over every batch, in loader order.

    Batches are ``(inputs, labels)`` or mappings with ``labels`` (:mod:`obliviate.batches`).
    With ``device``, a copy of the model is evaluated there; by default the model's own device.
    """
    if device is not None and resolve_device(device) != model_device(model):
        model = copy.deepcopy(model).to(resolve_device(device))
    was_training = model.training
    model.eval()
    device = model_device(model)
    logits, labels = [], []
    for batch in batches:
        x, y = to_device(batch, device)
        logits.append(forward(model, x).double().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    if not logits:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def fixed_order(loader: Iterable) -> Iterable:
    """The same examples as ``loader``, in an order that does not change from call to call.

    A DataLoader over a map-style dataset whose sampler shuffles (``shuffle=True``, a
    ``SubsetRandomSampler``, a custom batch sampler) is read through a new, unshuffled
    DataLoader over the same dataset, with the same batch size, ``collate_fn`` and workers:
    each example the sampler would give, once, by increasing index. ``shuffle=True``'s
    ``RandomSampler`` and a ``WeightedRandomSampler`` read every example of the dataset once
    (drawn with replacement or a subsample, they would give other examples on every pass), and
    ``drop_last`` is ignored for the same reason. A sequential DataLoader, an iterable dataset
    and any other iterable are returned as they are: their order is theirs to fix.
    """
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return loader
    custom_batches = not isinstance(loader.batch_sampler, BatchSampler)
    sampler = loader.sampler
    if not custom_batches and isinstance(sampler, SequentialSampler) and not loader.drop_last:
        return loader
    with torch.random.fork_rng(devices=[]):  # listing a sampler may draw from the global RNG
        if custom_batches:
            batches = list(loader.batch_sampler)
            indices = sorted({i for batch in batches for i in batch})
            batch_size = max((len(b) for b in batches), default=1)
        elif isinstance(sampler, SequentialSampler | RandomSampler | WeightedRandomSampler):
            indices, batch_size = range(len(loader.dataset)), loader.batch_size
        else:
            indices, batch_size = sorted(set(sampler)), loader.batch_size
    return DataLoader(loader.dataset, batch_size=batch_size or 1, sampler=list(indices),
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, worker_init_fn=loader.worker_init_fn,
                      multiprocessing_context=loader.multiprocessing_context)


def tensor_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024):
    """Unshuffled (x, y) batches of in-memory tensors, without DataLoader overhead."""
    for i in range(0, len(y), batch_size):
        yield x[i:i + batch_size], y[i:i + batch_size]


def per_example_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each example, computed stably in float64."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return log_norm - z[np.arange(len(labels)), labels]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose arg-max logit is the label (nan for no examples)."""
    if len(labels) == 0:
        return float("nan")
    return float((logits.argmax(axis=1) == labels).mean())
