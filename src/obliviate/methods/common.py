"""Small pieces that several methods share: plain functions, no base classes."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.batches import split_batch
from obliviate.errors import ConfigError, first_sentence
from obliviate.models import reset_parameters_from_seed

logger = logging.getLogger("obliviate.methods")


def cycle(batches: Iterable) -> Iterator:
    """Repeat a loader forever (reshuffling each pass when the loader shuffles)."""
    while True:
        yield from batches


def reinit_parameters(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every layer's initial weights (``reset_parameters``) from ``generator``."""
    return reset_parameters_from_seed(
        model, int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))


def random_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator,
                  *, exclude_true: bool = False) -> torch.Tensor:
    """Uniform random labels; with ``exclude_true`` never the example's own label."""
    if not exclude_true:
        return torch.randint(0, num_classes, labels.shape, generator=generator).to(labels.device)
    shift = torch.randint(1, num_classes, labels.shape, generator=generator).to(labels.device)
    return (labels + shift) % num_classes


def interleave(*tagged: tuple[str, Iterable]) -> Iterator[tuple[str, object]]:
    """Yield (tag, batch) for each loader in turn: all of the first, then all of the second..."""
    return itertools.chain.from_iterable(((tag, b) for b in it) for tag, it in tagged)


def last_layers(model: nn.Module, k: int, owner: str) -> list[nn.Module]:
    """The last ``k`` layers of ``model``, counted from the output.

    A layer is a module that holds parameters of its own (not only through its children), in
    the order ``model.modules()`` registers them; for the usual ``features`` + ``classifier``
    models, k=1 is the classifier. Works on any nn.Module, and says so when it cannot.
    """
    layers = [m for m in model.modules() if next(m.parameters(recurse=False), None) is not None]
    if k > len(layers):
        raise ConfigError(
            f"The 'k' parameter of {owner} must be at most the model's number of layers with "
            f"parameters ({len(layers)}). Got {k} instead."
        )
    return layers[-k:]


def lr_decay(milestones: Sequence[int], rate: float = 0.1, *, first_epoch: int = 0):
    """The SCRUB code's step schedule, as a LambdaLR factor of run_loop's 0-based epoch.

    SCRUB's ``adjust_learning_rate(epoch)`` multiplies the lr by ``rate ** #{m : epoch > m}``,
    where ``epoch`` is its caller's counter: SCRUB's own loop counts from 1
    (``first_epoch=1``), the fine-tuning helper that CF-k and EU-k use counts from 0
    (``first_epoch=0``). One function, the caller's numbering explicit.
    """
    return lambda epoch: rate ** sum(epoch + first_epoch > m for m in milestones)


def train_only(model: nn.Module, layers: Sequence[nn.Module]) -> dict[nn.Parameter, bool]:
    """Freeze every parameter outside ``layers``; returns the old flags for :func:`restore`."""
    flags = {p: p.requires_grad for p in model.parameters()}
    keep = {id(p) for layer in layers for p in layer.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return flags


def restore(flags: dict[nn.Parameter, bool]) -> None:
    for p, flag in flags.items():
        p.requires_grad_(flag)


def rows(batches: Iterable, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (input, label) row of ``batches`` as two tensors (tensor inputs only)."""
    xs, ys = [], []
    for batch in batches:
        x, y = split_batch(batch)
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"{owner} keeps the training rows as one tensor, so it needs "
                              f"batches of (tensor inputs, labels); got {type(x).__name__} "
                              f"inputs. Use a method that takes the model's own batches "
                              f"(e.g. finetune, scrub).")
        xs.append(x.detach().cpu())
        ys.append(y.detach().cpu())
    return torch.cat(xs), torch.cat(ys)


def row_digests(x: torch.Tensor, y: torch.Tensor) -> list[bytes]:
    """A sha1 digest of each (input, label) row: finds the same rows in another set."""
    flat = x.reshape(len(x), -1).contiguous().numpy()
    return [hashlib.sha1(row.tobytes() + int(label).to_bytes(8, "little")).digest()
            for row, label in zip(flat, y.tolist(), strict=True)]


def canonical_rows(batches: Iterable, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of ``batches`` sorted by digest: the same set gives the same tensors, whatever
    order a loader yields it in."""
    x, y = rows(batches, owner)
    order = torch.from_numpy(np.argsort(row_digests(x, y), kind="stable"))
    return x[order], y[order]


def locate_rows(x: torch.Tensor, y: torch.Tensor, digests: Sequence[bytes], owner: str
                ) -> torch.Tensor:
    """Indices, into the rows whose ``digests`` are given, of the rows (x, y); sorted."""
    where = {d: i for i, d in enumerate(digests)}
    found = [where.get(d) for d in row_digests(x, y)]
    if None in found:
        raise ConfigError(f"{owner}: {found.count(None)} forget example(s) are not in the "
                          f"training set the deployment was prepared on; prepare it on the "
                          f"training set that holds them.")
    return torch.tensor(sorted(found), dtype=torch.int64)


class PerExample:
    """Per-example quantities by ``vmap`` where the model can be traced, else by a loop.

    ``vmap`` refuses models with data-dependent control flow (Hugging Face attention masks) or
    random operations; the loop computes the same values one example at a time with autograd.
    The choice is made on the first batch and kept for the run, and announced at WARNING with
    its ``cost`` (the loop's backward passes).
    """

    def __init__(self, owner: str, cost: str = "one backward pass per example"):
        self.owner, self.looped, self.cost = owner, False, cost

    def __call__(self, vectorised: Callable[..., Any], looped: Callable[..., Any], *args: Any):
        if not self.looped:
            try:
                return vectorised(*args)
            except (RuntimeError, NotImplementedError) as exc:
                self.looped = True
                logger.warning("%s: vmap cannot run on this model (%s); computing per-example "
                               "values in a loop instead: %s, several times slower",
                               self.owner, first_sentence(str(exc)), self.cost)
        return looped(*args)
