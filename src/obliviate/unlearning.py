"""The unlearning API: :class:`UnlearnData`, the method registry, and :func:`unlearn`.

A method is a function ``(model, data: UnlearnData, cfg) -> nn.Module`` registered with
:func:`register_method`; the registration declares what the method works on (``tasks``), whether
it needs the retain set or refusals, and, for methods whose deployment is trained differently
from the original (SISA, certified removal, DP-SGD), an optional ``prepare`` phase.

``prepare(model, data: PrepareData, cfg) -> dict[str, Tensor]`` runs once at training time, on
the whole training set, before any deletion request is known; it is not part of the deletion's
cost (a bench times only the forget phase and caches the prepared state under a fingerprint).
The forget phase then reads that state as ``data.prepared``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import itertools
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from obliviate.calibrate import calibrate, requested
from obliviate.config import build_config, config_dict
from obliviate.errors import ConfigError, DataError
from obliviate.guard import Guard, check_guard, step_name
from obliviate.inputs import check_unlearn_inputs
from obliviate.registry import Registry, builtins
from obliviate.train import Recipe, check_finite_weights, resolve_device
from obliviate.user_code import import_named

FAMILIES = ("exact", "certified", "gradient", "distillation", "saliency", "second-order",
            "editing", "lora", "by-design", "user")
# What a model does; "lm" is a causal language model (token sequences, obliviate.llm).
MODEL_TASKS = ("classification", "regression", "anomaly")
TASKS = (*MODEL_TASKS, "lm")
Prepared = dict[str, torch.Tensor]


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
        prepared: what the method's ``prepare`` phase returned (None for other methods).
    """

    forget: DataLoader
    retain: DataLoader | None
    num_classes: int
    generator: torch.Generator
    val: DataLoader | None = None
    recipe: Recipe | None = None
    prepared: Prepared | None = None

    def seed(self) -> int:
        """A fresh integer seed drawn from the run's generator."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))


@dataclass
class PrepareData:
    """What a ``prepare`` phase receives: the whole training set, before any deletion request.

    Attributes:
        train: every batch of the training set (forget and retain alike, in no meaningful
            order: a prepared deployment must not depend on which rows will be deleted).
        num_classes: number of output classes.
        generator: the deployment's torch.Generator (seeded by the training seed).
        recipe: the original training recipe, when known.
    """

    train: Iterable
    num_classes: int
    generator: torch.Generator
    recipe: Recipe | None = None

    def seed(self) -> int:
        """A fresh integer seed drawn from the deployment's generator."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its function, config class and what it declares about itself."""

    name: str
    fn: Callable[..., nn.Module]
    config: type | None
    family: str
    needs_retain: bool
    paper: str
    summary: str
    tasks: tuple[str, ...] = MODEL_TASKS
    needs_refusals: bool = False
    default: bool = False
    prepare: Callable[..., Prepared] | None = None
    check: Callable[[nn.Module, Any], None] | None = None
    population: Callable[..., Any] | None = None

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

    def works_on(self, task: str) -> bool:
        return task in self.tasks

    def check_model(self, model: nn.Module, cfg: Any) -> None:
        """The method's own checks of ``cfg`` against ``model`` (e.g. k below the layer count)."""
        if self.check is not None:
            self.check(model, cfg)

    def refuse_task(self, task: str, where: str) -> None:
        """Raise ConfigError when the method does not work on ``task`` (``where`` names it)."""
        if not self.works_on(task):
            mine = " and ".join(TASK_WORDS[t] for t in self.tasks)
            raise ConfigError(f"Method '{self.name}' works on {mine}, and {where} is a "
                              f"{TASK_WORDS[task].rstrip('s')}; 'obliviate methods' lists the "
                              f"methods of each task.")


TASK_WORDS = {"classification": "classifiers", "regression": "regression models",
              "anomaly": "anomaly detectors", "lm": "language models"}


METHODS: Registry[MethodInfo] = Registry("method", populate=builtins)


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
    tasks: tuple[str, ...] = MODEL_TASKS,
    needs_refusals: bool = False,
    default: bool = False,
    prepare: Callable[..., Prepared] | None = None,
    check: Callable[[nn.Module, Any], None] | None = None,
    population: Callable[..., Any] | None = None,
) -> MethodInfo:
    if family not in FAMILIES:
        raise ConfigError(f"Unknown method family '{family}'. Use one of: {', '.join(FAMILIES)}.")
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise ConfigError(f"Method '{name}' declares tasks {tasks}; each must be one of: "
                          f"{', '.join(TASKS)}.")
    doc = inspect.getdoc(fn) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    return MethodInfo(name, fn, _config_class(fn), family, needs_retain, paper, summary,
                      tasks, needs_refusals, default, prepare, check, population)


def register_method(
    name: str,
    *,
    family: str = "user",
    needs_retain: bool = True,
    paper: str = "",
    tasks: tuple[str, ...] = MODEL_TASKS,
    needs_refusals: bool = False,
    default: bool = False,
    prepare: Callable[..., Prepared] | None = None,
    check: Callable[[nn.Module, Any], None] | None = None,
    population: Callable[..., Any] | None = None,
) -> Callable[[Callable], Callable]:
    """Register ``fn(model, data: UnlearnData, cfg: SomeConfig) -> nn.Module`` under ``name``.

    The config class is read from the annotation of the third parameter (a dataclass); its
    defaults are the method's defaults. Rules that involve several fields of the config belong
    in its ``__post_init__`` (raise ConfigError); rules that need the model go in ``check``.

    Args:
        name: the method's name (``-m NAME``).
        family: one of ``FAMILIES``.
        needs_retain: the method reads the retain set.
        paper: the paper, as ``obliviate methods`` lists it.
        tasks: the model tasks it works on: ``classification`` (it reads class probabilities
            or labels), ``regression``, ``anomaly`` (it only needs the model's training loss),
            or ``lm`` (causal language models, :func:`obliviate.llm.unlearn_lm`). The default,
            every non-LM task, suits a method whose only contact with the labels is the loss.
        needs_refusals: an ``lm`` method trained on refusals of the forget questions.
        default: run by a bench that names no method.
        prepare: ``prepare(model, data: PrepareData, cfg) -> dict[str, Tensor]``, done once at
            training time and left out of the deletion's time; the forget phase reads its
            result as ``data.prepared``.
        check: ``check(model, cfg)`` raises ConfigError when ``cfg`` cannot work on ``model``;
            run before any training (``validate`` and ``bench`` run it on the scenario's model).
        population: ``population(original, x_retain, y_retain, cfg, seeds, *, batch_size,
            chunk_size) -> Population | str``, the M runs ``unlearn(original, ..., seed=s)``
            (s in ``seeds``, the retain set a shuffling loader of ``batch_size`` over
            ``(x_retain, y_retain)``) trained at once, or why they cannot be here (a str: the
            caller runs them one by one). The challenge bench uses it (``finetune`` has it).

    Example:
        >>> @register_method("my-method")
        ... def my_method(model, data, cfg): return model
    """

    def deco(fn: Callable) -> Callable:
        METHODS.add(name, method_info(fn, name, family=family, needs_retain=needs_retain,
                                      paper=paper, tasks=tasks, needs_refusals=needs_refusals,
                                      default=default, prepare=prepare, check=check,
                                      population=population))
        return fn

    return deco


def default_methods(task: str) -> list[str]:
    """The methods a bench runs on ``task`` when it names none (registered ``default=True``)."""
    return [n for n in METHODS.names() if METHODS.get(n).default and METHODS.get(n).works_on(task)]


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
    fn = import_named(spec, "method")
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
    prepared: Prepared | None = None,
    device: str | torch.device | None = None,
    guard: str = "warn",
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
        prepared: the result of :func:`prepare` for a method with a prepare phase (SISA,
            certified removal, DP original); computed here from forget + retain when omitted.
        device: where the unlearned copy lives and the method runs (``"auto"``, ``"cpu"``,
            ``"cuda"``...); default: the model's own device. Batches follow the model.
        guard: check the result on a slice of the data (:mod:`obliviate.guard`): ``"warn"``
            (default) emits a :class:`~obliviate.errors.CollapseWarning` when retain accuracy
            fell towards chance and a :class:`~obliviate.errors.NoOpWarning` when nothing
            changed; ``"raise"`` raises :class:`~obliviate.errors.UnlearningCheckError`
            instead; ``"off"`` skips the check.
        **overrides: method parameters, e.g. ``epochs=3, lr=0.01``. ``lr="auto"`` (or
            ``alpha="auto"``) calibrates that step size first with a short sweep on this
            model and data (:mod:`obliviate.calibrate`); the result is recorded on the
            returned model as ``obliviate_calibration``.

    Raises:
        ConfigError: unknown method or invalid parameters (checked before any training), or a
            method that needs class probabilities on a regression or anomaly model.
        DataError: missing retain data for a method that needs it, a loader that is not one
            (a tensor, a Dataset), an empty forget loader, or a first batch the model cannot
            take (float or out-of-range labels, non-finite or misshapen logits); see
            :mod:`obliviate.inputs`.
        TrainingDivergedError: the loss or the weights became NaN or infinite.
        UnlearningCheckError: with ``guard="raise"``, the result collapsed or is unchanged.

    Example:
        >>> unlearned = unlearn(model, forget_loader, retain_loader, method="finetune", epochs=1)
    """
    check_guard(guard)
    field, overrides, config = requested(overrides, config)  # lr="auto" or --set M.lr=auto
    if field is not None:  # lr="auto": a short sweep on this model (obliviate.calibrate)
        info = resolve_method(method)
        rest = {k: v for k, v in overrides.items() if k != field}
        info.build_config(rest)  # every other parameter is checked before the sweep
        common = dict(method=info, num_classes=num_classes, seed=seed, recipe=recipe)
        full = lambda value: unlearn(  # noqa: E731  the real run; the guard judges the one kept
            model, forget, retain, val=val, config=config, prepared=prepared, device=device,
            guard="off", **common, **rest, **{field: value})
        out, cal = calibrate(model, forget, retain, info=info, field=field, overrides=rest,
                             unlearn=unlearn, full=full, seed=seed, recipe=recipe,
                             num_classes=num_classes)
        if guard != "off":
            Guard(model, forget, val if val is not None else retain,
                  task=getattr(model, "task", "classification")).judge(out, info.name, guard,
                                                                         field)
        out.obliviate_calibration = cal.as_dict()
        return out
    info, cfg = _method_and_config(method, config, overrides)
    task = getattr(model, "task", "classification")  # regression/anomaly models say so
    info.refuse_task(task, "this model")
    if info.needs_retain and retain is None:
        raise DataError(
            f"Method '{info.name}' needs the retain set; pass retain=<DataLoader>, or choose a "
            f"method that works from the forget set alone (e.g. neggrad)."
        )
    # the model, the loaders and one batch of each, before any training (obliviate.inputs)
    num_classes = check_unlearn_inputs(model, forget, retain, val, num_classes=num_classes,
                                       needs_retain=info.needs_retain)
    info.check_model(model, cfg)
    if info.prepare is not None and prepared is None:
        prepared = prepare(model, forget, retain, method=info, num_classes=num_classes,
                           seed=seed, recipe=recipe, config=cfg)
    probe = Guard(model, forget, val if val is not None else retain, task=task) \
        if guard != "off" else None
    generator = torch.Generator().manual_seed(seed)
    forget, retain = reseeded(forget, seed), reseeded(retain, retain_order_seed(seed))
    data = UnlearnData(forget, retain, num_classes, generator, val=val, recipe=recipe,
                       prepared=prepared)
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
    if probe is not None:
        probe.judge(out, info.name, guard, step_name(cfg))
    return out


def prepare(
    model: nn.Module,
    forget: Iterable,
    retain: Iterable | None = None,
    *,
    method: str | MethodInfo,
    num_classes: int | None = None,
    seed: int = 0,
    recipe: Recipe | None = None,
    config: Any = None,
    **overrides: Any,
) -> Prepared:
    """Run the prepare phase of ``method`` on the training set ``forget`` + ``retain``.

    The result is what a deployment of the method holds before any deletion request (SISA's
    shard checkpoints, the certified model, the DP-trained model); pass it to :func:`unlearn`
    as ``prepared=`` to time or repeat deletions without training it again. The training set is
    read as one set: the result does not depend on which rows are in ``forget``.

    Raises:
        ConfigError: the method has no prepare phase, or an invalid parameter.

    Example:
        >>> state = prepare(model, forget_loader, retain_loader, method="sisa", shards=4)
        >>> unlearned = unlearn(model, forget_loader, retain_loader, method="sisa", shards=4,
        ...                     prepared=state)
    """
    info, cfg = _method_and_config(method, config, overrides)
    if info.prepare is None:
        raise ConfigError(f"Method '{info.name}' has no prepare phase; call unlearn() directly.")
    if num_classes is None:
        num_classes = infer_num_classes(model)
    # loaders that shuffle from their own generator are re-seeded, so a prepare is repeatable
    batches = itertools.chain(reseeded(forget, seed), reseeded(retain, seed + 1) or ())
    data = PrepareData(list(batches), num_classes, torch.Generator().manual_seed(seed), recipe)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = info.prepare(copy.deepcopy(model), data, cfg)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ConfigError(f"The prepare phase of '{info.name}' must return a dict of tensors "
                          f"(it is cached as safetensors).")
    return state


def _method_and_config(method: str | Callable | MethodInfo, config: Any,
                       overrides: Mapping[str, Any]) -> tuple[MethodInfo, Any]:
    info = resolve_method(method)
    if config is None:
        return info, info.build_config(overrides)
    if overrides:
        raise ConfigError("Pass either config= or keyword overrides, not both.")
    if dataclasses.is_dataclass(config):
        return info, build_config(type(config), config_dict(config), info.name)
    return info, config


def retain_order_seed(seed: int) -> int:
    """The seed of a shuffling retain loader's order in a run with ``seed`` (:func:`unlearn`
    re-seeds it so; a population of runs draws its orders the same way)."""
    return seed + 1


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
