"""Model zoo. Models are built by name from the input shape and the number of classes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from obliviate.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, *, seed: int | None = None
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` (without the batch dimension).

    With ``seed`` the initial weights are drawn from that seed, leaving the global RNG as it was.
    """
    factory = MODELS.get(name)
    if seed is None:
        return factory(input_shape, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(input_shape, num_classes)


from obliviate.models import cnn, logreg, mlp, resnet  # noqa: E402,F401  (registration)

__all__ = ["MODELS", "build_model"]
