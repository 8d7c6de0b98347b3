"""Small pieces that several methods share: plain functions, no base classes."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import torch
from torch import nn


def cycle(batches: Iterable) -> Iterator:
    """Repeat a loader forever (reshuffling each pass when the loader shuffles)."""
    while True:
        yield from batches


def reinit_parameters(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every layer's initial weights (``reset_parameters``) from ``generator``."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


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
