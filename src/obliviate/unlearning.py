"""The unlearning API: :class:`UnlearnData`, the method registry, and :func:`unlearn`."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from obliviate.config import build_config, config_dict
from obliviate.errors import ConfigError, DataError
from obliviate.evaluate.tasks import check_method_task
from obliviate.inputs import check_unlearn_inputs
from obliviate.registry import Registry
from obliviate.train import Recipe, check_finite_weights, resolve_device

FAMILIES = ("exact", "certified", "gradient", "distillation", "saliency", "second-order",
            "editing", "lora", "by-design", "user")


@dataclass
class UnlearnData:
    """What a method receives besides the model.

    Attributes:
        forget: loader of (inputs, labels) to forget.
        retain: loader of the data to keep, or None for methods that do not need it.
        num_classes: number of output classes.
        generator: the run's torch.Generator; methods draw all their randomness from it.
        val: optional validation loader.
        recipe: the original training recipe, when known (used by ``retrain``).
    """

    forget: DataLoader
    retain: DataLoader | None
    num_classes: int
    generator: torch.Generator
    val: DataLoader | None = None
    recipe: Recipe | None = None

    def seed(self) -> int:
        """A fresh integer seed drawn from the run's generator."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its function, config class and metadata."""

    name: str
    fn: Callable[..., nn.Module]
    config: type | None
    family: str
    needs_retain: bool
    paper: str
    summary: str

    def build_config(self, overrides: Mapping[str, Any] | None = None) -> Any:
        if self.config is None:
            if overrides:
                raise ConfigError(
                    f"{self.name} takes no parameters (its cfg argument has no dataclass "
                    f"annotation). Got {sorted(overrides)}."
                )
            return None
        return build_config(self.config, overrides, self.name)

    def defaults(self) -> dict[str, Any]:
        return config_dict(self.build_config()) if self.config else {}


METHODS: Registry[MethodInfo] = Registry("method")


def _config_class(fn: Callable) -> type | None:
    """The dataclass annotated on a method's third parameter, if any."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < 3:
        raise ConfigError(
            f"A method must take (model, data, cfg); {getattr(fn, '__name__', fn)} takes "
            f"{len(params)} parameter(s)."
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    cfg_type = hints.get(params[2].name)
    return cfg_type if dataclasses.is_dataclass(cfg_type) else None


def method_info(
    fn: Callable,
    name: str,
    *,
    family: str = "user",
    needs_retain: bool = True,
    paper: str = "",
) -> MethodInfo:
    if family not in FAMILIES:
        raise ConfigError(f"Unknown method family '{family}'. Use one of: {', '.join(FAMILIES)}.")
    doc = inspect.getdoc(fn) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    return MethodInfo(name, fn, _config_class(fn), family, needs_retain, paper, summary)


def register_method(
    name: str, *, family: str = "user", needs_retain: bool = True, paper: str = ""
) -> Callable[[Callable], Callable]:
    """Register ``fn(model, data: UnlearnData, cfg: SomeConfig) -> nn.Module`` under ``name``.

    The config class is read from the annotation of the third parameter (a dataclass); its
    defaults are the method's defaults.

    Example:
        >>> @register_method("my-method")
        ... def my_method(model, data, cfg): return model
    """

    def deco(fn: Callable) -> Callable:
        METHODS.add(name, method_info(fn, name, family=family, needs_retain=needs_retain,
                                      paper=paper))
        return fn

    return deco


def resolve_method(spec: str | Callable | MethodInfo) -> MethodInfo:
    """A registered name, ``module:function``, a callable, or a MethodInfo -> MethodInfo."""
    if isinstance(spec, MethodInfo):
        return spec
    if callable(spec):
        name = getattr(spec, "__name__", "user-method")
        return method_info(spec, name)
    if isinstance(spec, str) and ":" in spec and spec not in METHODS:
        return _import_method(spec)
    return METHODS.get(spec)


def _import_method(spec: str) -> MethodInfo:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"Method '{spec}' must look like module:function (e.g. my_module:forget).")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"Cannot import module '{module_name}' for method '{spec}': {exc}. Run from the "
            f"folder that holds it or add it to PYTHONPATH."
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"Module '{module_name}' has no function '{attr}' for method '{spec}'.")
    for info in (METHODS.get(n) for n in METHODS.names()):
        if info.fn is fn:  # a decorated user method keeps its registered metadata
            return info
    return method_info(fn, spec)


def unlearn(
    model: nn.Module,
    forget: DataLoader,
    retain: DataLoader | None = None,
    *,
    method: str | Callable | MethodInfo = "finetune",
    num_classes: int | None = None,
    val: DataLoader | None = None,
    seed: int = 0,
    recipe: Recipe | None = None,
    config: Any = None,
    device: str | torch.device | None = None,
    **overrides: Any,
) -> nn.Module:
    """Return an unlearned copy of ``model``; ``model`` itself is never modified.

    Args:
        model: a trained classifier.
        forget: loader of (inputs, labels) to forget.
        retain: loader of data to keep (required when the method needs it).
        method: a registered name, ``module:function``, or a function (model, data, cfg).
        num_classes: output classes; inferred from the model's last layer when omitted.
        val: optional validation loader.
        seed: seeds all randomness of the run; the same seed gives the same weights on CPU.
        recipe: the original training recipe (``retrain`` uses it).
        config: a ready config instance; otherwise built from the defaults and ``overrides``.
        device: where the unlearned copy lives and the method runs (``"auto"``, ``"cpu"``,
            ``"cuda"``...); default: the model's own device. Batches follow the model.
        **overrides: method parameters, e.g. ``epochs=3, lr=0.01``.

    Raises:
        ConfigError: unknown method or invalid parameters (checked before any training), or a
            method that needs class probabilities on a regression or anomaly model.
        DataError: missing retain data for a method that needs it, a loader that is not one
            (a tensor, a Dataset), an empty forget loader, or a first batch the model cannot
            take (float or out-of-range labels, non-finite or misshapen logits); see
            :mod:`obliviate.inputs`.
        TrainingDivergedError: the loss or the weights became NaN or infinite.

    Example:
        >>> unlearned = unlearn(model, forget_loader, retain_loader, method="finetune", epochs=1)
    """
    info = resolve_method(method)
    if config is None:
        cfg = info.build_config(overrides)
    else:
        if overrides:
            raise ConfigError("Pass either config= or keyword overrides to unlearn, not both.")
        cfg = build_config(type(config), config_dict(config), info.name) \
            if dataclasses.is_dataclass(config) else config
    if info.needs_retain and retain is None:
        raise DataError(
            f"Method '{info.name}' needs the retain set; pass retain=<DataLoader>, or choose a "
            f"method that works from the forget set alone (e.g. neggrad)."
        )
    task = getattr(model, "task", "classification")  # regression/anomaly models say so
    check_method_task(info.name, info.family, task)
    # the model, the loaders and one batch of each, before any training (obliviate.inputs)
    num_classes = check_unlearn_inputs(model, forget, retain, val, num_classes=num_classes,
                                       needs_retain=info.needs_retain)
    generator = torch.Generator().manual_seed(seed)
    forget, retain = reseeded(forget, seed), reseeded(retain, seed + 1)
    data = UnlearnData(forget, retain, num_classes, generator, val=val, recipe=recipe)
    student = copy.deepcopy(model)
    if device is not None:
        student = student.to(resolve_device(device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = info.fn(student, data, cfg)
    if not isinstance(out, nn.Module):
        raise ConfigError(
            f"Method '{info.name}' returned {type(out).__name__}, not an nn.Module; a method must "
            f"return the unlearned model."
        )
    out.eval()
    check_finite_weights(out, info.name)
    return out


def reseeded(loader: DataLoader | None, seed: int) -> DataLoader | None:
    """A copy of a shuffling loader whose order is drawn from ``seed``.

    A loader with its own generator advances it on every pass, so the same loader used twice
    would give two data orders; unlearning from the same seed must not depend on that.
    """
    if loader is None or not isinstance(loader, DataLoader):
        return loader
    if not isinstance(loader.sampler, RandomSampler) or loader.sampler.generator is None:
        return loader  # unshuffled, or shuffled from the global RNG that unlearn() seeds
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(seed), num_workers=loader.num_workers,
        collate_fn=loader.collate_fn, drop_last=loader.drop_last, pin_memory=loader.pin_memory,
    )


def infer_num_classes(model: nn.Module) -> int:
    """The output width of the model's last Linear layer."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ConfigError("Cannot infer num_classes from the model; pass num_classes=.")
    return last.out_features
