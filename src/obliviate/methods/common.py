"""Small pieces that several methods share: plain functions, no base classes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from obliviate.errors import ConfigError

logger = logging.getLogger("obliviate.methods")


def cycle(batches: Iterable) -> Iterator:
    """Repeat a loader forever (reshuffling each pass when the loader shuffles)."""
    while True:
        yield from batches


def reinit_parameters(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every layer's initial weights (``reset_parameters``) from ``generator``."""
    return reset_parameters_from_seed(
        model, int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))


def reset_parameters_from_seed(model: nn.Module, seed: int) -> nn.Module:
    """Re-draw every layer's initial weights (``reset_parameters``) from ``seed``, in place."""
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


def lr_decay(milestones: Sequence[int], rate: float = 0.1):
    """The SCRUB code's step schedule: after each milestone epoch the lr is multiplied by rate.

    As its ``adjust_learning_rate``: epoch ``e`` (0-based) runs at ``rate ** #{m : e > m}``.
    """
    return lambda epoch: rate ** sum(epoch > m for m in milestones)


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


class PerExample:
    """Per-example quantities by ``vmap`` where the model can be traced, else by a loop.

    ``vmap`` refuses models with data-dependent control flow (Hugging Face attention masks) or
    random operations; the loop computes the same values one example at a time with autograd.
    The choice is made on the first batch and kept for the run.
    """

    def __init__(self, owner: str):
        self.owner, self.looped = owner, False

    def __call__(self, vectorised: Callable[..., Any], looped: Callable[..., Any], *args: Any):
        if not self.looped:
            try:
                return vectorised(*args)
            except (RuntimeError, NotImplementedError) as exc:
                self.looped = True
                logger.info("%s: vmap cannot trace this model (%s); computing per-example "
                            "values in a loop instead", self.owner, str(exc).splitlines()[0])
        return looped(*args)
