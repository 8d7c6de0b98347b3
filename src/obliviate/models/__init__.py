"""Model zoo. Models are built by name from the input shape and the number of classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from obliviate.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, *, seed: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` (without the batch dimension).

    With ``seed`` the initial weights are drawn from that seed, leaving the global RNG as it was.
    ``options`` are sizes that the data decides (e.g. ``vocab_size``, ``n_users``); a scenario
    passes its ``model_options``.
    """
    factory = MODELS.get(name)
    if seed is None:
        return factory(input_shape, num_classes, **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(input_shape, num_classes, **options)


def reset_parameters_from_seed(model: nn.Module, seed: int) -> nn.Module:
    """Re-draw every layer's initial weights (``reset_parameters``) from ``seed``, in place."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


# registration
from obliviate.models import autoencoder, cnn, logreg, mf, mlp, resnet, text  # noqa: E402,F401

__all__ = ["MODELS", "build_model", "reset_parameters_from_seed"]
