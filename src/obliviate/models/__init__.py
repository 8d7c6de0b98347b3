"""Model zoo and users' models, built by name from the input shape and the number of classes.

A model is a factory registered under a name (the built-in ``mlp``, ``cnn``, ``resnet18``, ...)
or named as ``module:factory`` (imported on first use, so that worker processes find it too;
found on ``PYTHONPATH``, never in the current folder, and never because a file names it).
Every factory has one signature, called with keyword arguments::

    factory(num_classes: int, input_shape: tuple[int, ...], **options) -> nn.Module

``input_shape`` is the shape of one example without the batch axis (``(1, 8, 8)`` for digits
images, ``(seq_len,)`` for token ids). ``options`` are sizes the data decides (``vocab_size`` on
text, ``n_users``/``n_items`` on ratings); a factory receives the ones it declares.

Example:
    >>> import obliviate as ob
    >>> from torch import nn
    >>> @ob.register_model("tiny-linear")
    ... def tiny_linear(num_classes, input_shape):
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    >>> ob.models.build_model("tiny-linear", (1, 8, 8), 10, seed=0)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> ob.models.MODELS.remove("tiny-linear")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from obliviate.errors import ConfigError, ObliviateError
from obliviate.registry import Registry, builtins
from obliviate.user_code import import_named, qualified_name

Factory = Callable[..., nn.Module]
MODELS: Registry[Factory] = Registry("model", populate=builtins)
FACTORY_SIGNATURE = "factory(num_classes, input_shape) -> nn.Module"


def register_model(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory(num_classes, input_shape, **options) -> nn.Module`` under ``name``.

    The name then works everywhere a built-in model does: ``load_scenario(..., model=name)``,
    ``--model name`` on the command line, in YAML, and in every protocol (populations included).
    Processes that do not import the registering module (the process pool and Ray executors)
    cannot see the name; ``--model my_module:factory`` imports it wherever it is needed.

    Example:
        >>> @register_model("my-cnn")
        ... def my_cnn(num_classes, input_shape):
        ...     return MyCNN(input_shape[0], num_classes)
    """

    def deco(factory: Factory) -> Factory:
        if not callable(factory):
            raise ConfigError(f"register_model('{name}') decorates a function "
                              f"{FACTORY_SIGNATURE}; got {type(factory).__name__}.")
        MODELS.add(name, factory)
        return factory

    return deco


def resolve_factory(name: str) -> Factory:
    """The factory of a registered name or of ``module:factory`` (importing the module).

    Only for names the caller was given by the user: a name read from a file goes through
    :func:`obliviate.user_code.trusted_factory` first (see ``docs/security.md``).
    """
    if not isinstance(name, str):
        raise ConfigError(f"A model is named by a string (a registered name or module:factory);"
                          f" got {type(name).__name__}.")
    if name in MODELS or ":" not in name:
        return MODELS.get(name)
    return import_named(name, "model", FACTORY_SIGNATURE)


def _accepted(factory: Factory, options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` the factory declares (all of them when it takes ``**kwargs``)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return options
    names = {p.name for p in params}
    return {k: v for k, v in options.items() if k in names}


def build_model(
    name: str | Factory, input_shape: tuple[int, ...], num_classes: int, *, seed: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` (without the batch dimension).

    ``name`` is a registered model, ``module:factory`` or the factory itself. With ``seed``
    the initial weights are drawn from that seed, leaving the global RNG as it was. ``options``
    are sizes that the data decides (e.g. ``vocab_size``, ``n_users``); a scenario passes its
    ``model_options``.

    Raises:
        UnknownNameError: an unknown registered name (with the closest match).
        ConfigError: a module that cannot be imported, or a factory that does not take
            ``(num_classes, input_shape)`` or does not return an ``nn.Module``.
    """
    factory = name if callable(name) else resolve_factory(name)
    name = name if isinstance(name, str) else qualified_name(name)
    kwargs = {"num_classes": num_classes, "input_shape": tuple(input_shape),
              **_accepted(factory, options)}
    try:
        if seed is None:
            model = factory(**kwargs)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = factory(**kwargs)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise ConfigError(f"Model '{name}' could not be built (TypeError: {exc}); fix its "
                              f"factory.") from None
        raise ConfigError(f"Model '{name}' could not be built ({exc}); its factory must take "
                          f"{FACTORY_SIGNATURE} (called by keyword).") from None
    except ObliviateError:
        raise
    except Exception as exc:  # the user's factory raised: one line, not their traceback
        raise ConfigError(f"Model '{name}' could not be built: its factory raised "
                          f"{type(exc).__name__}: {exc}. Fix the factory.") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"Model '{name}' returned {type(model).__name__}, not an nn.Module; "
                          f"its factory must return the model.")
    return model


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

__all__ = ["FACTORY_SIGNATURE", "MODELS", "build_model", "register_model",
           "reset_parameters_from_seed", "resolve_factory"]
