"""Built-in scenarios and :func:`load_scenario`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from obliviate.config import build_config, config_dict, param
from obliviate.data import sources
from obliviate.data.forget import parse_forget_spec
from obliviate.data.reasons import prepare_forget
from obliviate.data.scenario import Scenario, Splits
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.evaluate.tasks import check_forget_kind
from obliviate.models import build_model, resolve_factory
from obliviate.registry import Registry, builtins
from obliviate.train import Recipe


@dataclass(frozen=True)
class ScenarioSpec:
    """A registered scenario: where its data comes from and how its models are trained."""

    name: str
    description: str
    source: str
    options: type
    build: Callable[[Any], Splits]
    recipes: Mapping[str, Recipe]
    forgets: str = "random, class, classes, ids, mislabeled, poisoned"
    method_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # the model whose recipe (in ``recipes``) the method_defaults were tuned with; None: the first
    defaults_tuned_on: str | None = None
    superclasses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # for subclass:
    task: str = "classification"  # "regression" or "anomaly": see obliviate.evaluate.tasks
    default_forget: str = "random:0.1"
    model_options: Callable[[Splits], dict[str, Any]] | None = None  # sizes read off the data
    # A scenario that is not built from Splits (the language-model track) loads itself:
    # load(forget, seed, recipe=..., **options) -> a scenario object with the same facts.
    load: Callable[..., Any] | None = None
    models: tuple[str, ...] = ()  # what 'obliviate scenarios' lists; default: the recipes


SCENARIOS: Registry[ScenarioSpec] = Registry("scenario", populate=builtins)

# Users' models (``model=`` a registered name or ``module:factory`` outside a scenario's recipes)
# train with Adam: its default step suits CNNs and transformers alike without tuning, where
# SGD's lr depends on the architecture. Override any field with ``recipe={...}`` or
# ``--set recipe.NAME=VALUE``.
USER_MODEL_RECIPE = Recipe(optimizer="adam", lr=1e-3, epochs=10, batch_size=64, momentum=0.9,
                           weight_decay=0.0, schedule="cosine")
MODEL_HELP = "model architecture: one of these, or any registered or module:factory model"


def _standardise(x_train: np.ndarray, *others: np.ndarray,
                 per_feature: bool = False) -> list[torch.Tensor]:
    """Float tensors scaled by ``x_train``'s mean and std: one overall, or one per feature."""
    if per_feature:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    else:
        mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    return [torch.from_numpy((a - mean) / std).float() for a in (x_train, *others)]


def _split_three(n: int, seed: int, test: float, val: float) -> tuple[np.ndarray, ...]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(test * n)), int(round(val * n))
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


# ---------------------------------------------------------------------------- digits
@dataclass(frozen=True)
class DigitsOptions:
    model: str = param("cnn", choices=("cnn", "mlp"), help=MODEL_HELP)
    split_seed: int = param(42, ge=0, help="seed of the fixed train/val/test split")


def _build_digits(opts: DigitsOptions) -> Splits:
    x, y = sources.load_digits_arrays()
    tr, va, te = _split_three(len(y), opts.split_seed, test=0.2, val=0.1)
    xs = _standardise(x[tr], x[va], x[te])
    ys = [torch.from_numpy(y[i]) for i in (tr, va, te)]
    return Splits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], 10, tuple(str(i) for i in range(10)))


SCENARIOS.add("digits", ScenarioSpec(
    name="digits",
    description="8x8 handwritten digits; 1,258 train / 180 val / 359 test; the fast default",
    source="scikit-learn load_digits (bundled)",
    options=DigitsOptions,
    build=_build_digits,
    recipes={
        "cnn": Recipe(optimizer="sgd", lr=0.05, epochs=30, batch_size=64),
        "mlp": Recipe(optimizer="sgd", lr=0.05, epochs=40, batch_size=64),
    },
    # The authors' learning rates assume CIFAR-scale forget sets (thousands of examples, many
    # steps). Here the forget set is ~126 examples (2 steps an epoch) on a model at ~1e-5 loss,
    # so gradient ascent at lr 1e-4 and random labels at lr 0.01 change nothing. These values
    # were picked on seeds 0-4 as the smallest that move forget accuracy; gradient ascent stays
    # chaotic (from no change to collapse between seeds), as the literature reports.
    # The other methods below: the authors' values leave the forget set where it was (SSD's
    # alpha 10 cannot select any weight when the forget set is 1/10 of the data); these move it
    # toward the retrained model's (seeds 0-2) while test accuracy holds within ~2 points.
    method_defaults={"neggrad": {"lr": 0.15}, "random-label": {"lr": 0.03},
                     "bad-teacher": {"lr": 2e-3}, "scrub": {"lr": 0.05},
                     "l1-sparse": {"alpha": 3e-3}, "reset-distill": {"lr": 0.05},
                     "reset-layers-distill": {"lr": 0.05, "epochs": 4},
                     "prune-zero": {"fraction": 0.03}, "lora-unlearn": {"epochs": 3},
                     "salun": {"lr": 0.03}, "ssd": {"selection_weighting": 4},
                     "fisher": {"alpha": 2e-6}, "influence": {"alpha": 150},
                     # The NeurIPS 2023 winners: the best point of each grid in
                     # benchmarks/winners.py by obliviate.tune (challenge score on held-out
                     # seeds 1-2, N=16, validation split, 20% cut-off in CPU time, both sides
                     # timed warm since December 2026, which moved four settings that sit near
                     # the cut-off by an epoch, two each way); results in
                     # benchmarks/results/winners_tune_digits.json. Their learning rates were
                     # for fine-tuning a ResNet-18 trained by Adam at 1e-4; ours are trained by
                     # SGD at 0.05, and 8 contrastive rounds exceed the cut-off here.
                     "winner-contrastive": {"epochs": 5, "uniform_lr": 0.125,
                                            "forget_lr": 0.0075, "retain_lr": 0.1},
                     "winner-grad-reinit": {"epochs": 3},
                     "winner-conv-noise": {"lr": 0.007, "std": 0.2},
                     "winner-prune-reinit": {"lr": 0.05},
                     # The 5th-7th prizes and DeepUnlearn's MSG, tuned the same way (grids in
                     # winners.py; several bests sit at the grid's largest learning rate).
                     "winner-conv-transpose": {"epochs": 3, "lr": 0.05},
                     "winner-reset-distill-val": {"retain_epochs": 2, "warmup_lr": 0.045,
                                                  "lr": 0.05},
                     "winner-random-noise-layers": {"epochs": 5, "lr": 0.02, "fine_lr": 0.02,
                                                    "last_fine_lr": 0.1},
                     "msg": {"epochs": 3, "lr": 0.05}},
))


# ---------------------------------------------------------------------------- fashion
@dataclass(frozen=True)
class FashionOptions:
    model: str = param("cnn", choices=("cnn", "mlp"), help=MODEL_HELP)
    train_size: int = param(10000, ge=100, le=60000, help="training examples drawn from the 60k")
    split_seed: int = param(42, ge=0, help="seed of the fixed subset and val/test split")


def _build_fashion(opts: FashionOptions) -> Splits:
    x_tr, y_tr, x_te, y_te = sources.load_fashion_arrays()
    rng = np.random.default_rng(opts.split_seed)
    sub = np.sort(rng.permutation(len(y_tr))[: opts.train_size])
    held = rng.permutation(len(y_te))  # the starting kit's 50/50 test/val split of the test set
    te, va = held[: len(held) // 2], held[len(held) // 2:]
    xs = _standardise(x_tr[sub], x_te[va], x_te[te])
    ys = [torch.from_numpy(a) for a in (y_tr[sub], y_te[va], y_te[te])]
    return Splits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], 10, sources.FASHION_CLASSES)


SCENARIOS.add("fashion", ScenarioSpec(
    name="fashion",
    description="Fashion-MNIST 28x28, a train_size subset (default 10,000) / 5,000 val / 5,000 test",
    source="Debian dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)",
    options=FashionOptions,
    build=_build_fashion,
    recipes={
        "cnn": Recipe(optimizer="sgd", lr=0.05, epochs=10, batch_size=128),
        "mlp": Recipe(optimizer="sgd", lr=0.05, epochs=15, batch_size=128),
    },
    # Picked on seed 0 as the smallest values that move forget accuracy without collapse: the
    # authors' GA lr 1e-4 changes nothing here and 1e-3 collapses the model; random labels at
    # the authors' 0.01 cost 11 points of test accuracy, at 0.003 they cost 1.
    method_defaults={"neggrad": {"lr": 5e-4}, "random-label": {"lr": 3e-3}},
    forgets="random, class, classes, ids, mislabeled, poisoned, subclass",
    superclasses={"tops": ("t-shirt", "pullover", "coat", "shirt"), "bottoms": ("trouser", "dress"),
                  "shoes": ("sandal", "sneaker", "ankle-boot"), "bags": ("bag",)},
))


# ---------------------------------------------------------------------------- loading
def _tuned_with(spec: ScenarioSpec) -> dict[str, Any]:
    """The model and recipe the scenario's method_defaults were tuned with ({} if none)."""
    if not spec.method_defaults:
        return {}
    model = spec.defaults_tuned_on or next(iter(spec.recipes))
    if model not in spec.recipes:
        raise ConfigError(f"Scenario {spec.name} says its defaults were tuned on model "
                          f"'{model}', which has no recipe; add it to recipes or fix the name.")
    return {"model": model, **config_dict(spec.recipes[model])}


_SPLITS_CACHE: dict[tuple, Splits] = {}


def load_scenario(
    name: str,
    forget: str | None = None,
    seed: int = 0,
    *,
    recipe: Mapping[str, Any] | None = None,
    **options: Any,
) -> Scenario:
    """Load scenario ``name`` with forget set ``forget`` chosen by ``seed``.

    Args:
        name: a registered scenario (``obliviate scenarios`` lists them).
        forget: a forget spec such as ``random:0.1``, ``class:3``, ``ids:FILE``,
            ``groups:0.1``, ``mislabeled:0.1``, ``poisoned:0.05`` or ``subclass:sneaker``;
            None takes the scenario's default (``random:0.1`` unless it says otherwise).
        seed: chooses the forget set (and the flipped or poisoned examples).
        recipe: overrides of the training recipe, e.g. ``{"epochs": 5}``.
        **options: scenario options, e.g. ``model="mlp"`` or ``train_size=5000``. On a
            classification scenario ``model`` may also be a registered model
            (:func:`obliviate.register_model`) or ``module:factory``; it is built once and run
            on two training examples here, and trains with ``USER_MODEL_RECIPE`` (Adam, lr
            1e-3, 10 epochs, batch 64) unless ``recipe`` says otherwise.

    Example:
        >>> sc = load_scenario("digits", forget="random:0.1", seed=0)
    """
    spec = SCENARIOS.get(name)
    if spec.load is not None:
        return spec.load(spec.default_forget if forget is None else forget, seed,
                         recipe=recipe, **options)
    if "data" in options and "data" not in {f.name for f in dataclasses.fields(spec.options)}:
        raise ConfigError(f"--data (scenario.data) gives your own data to the 'custom' scenario, "
                          f"and {name} brings its own; run `obliviate bench custom --data "
                          f"{options['data']}` (tune takes the same), or drop --data.")
    user_model = _user_model(spec, options.get("model"))
    if user_model:  # the option's choices list the built-in models; a user's replaces them
        options = {k: v for k, v in options.items() if k != "model"}
    opts = build_config(spec.options, options, f"scenario {name}")
    if user_model:
        opts = dataclasses.replace(opts, model=user_model)
    model = getattr(opts, "model", None) or next(iter(spec.recipes))
    if model not in spec.recipes and not user_model:
        raise ConfigError(f"Scenario {name} has no recipe for model '{model}'.")
    base = spec.recipes.get(model, USER_MODEL_RECIPE)
    recipe_cfg = build_config(Recipe, {**config_dict(base), **dict(recipe or {})}, "recipe")
    key = (name, tuple(sorted(config_dict(opts).items())))
    if key not in _SPLITS_CACHE:
        _SPLITS_CACHE[key] = spec.build(opts)
    splits = _SPLITS_CACHE[key]
    parsed = parse_forget_spec(spec.default_forget if forget is None else forget)
    check_forget_kind(spec.task, parsed.kind, parsed.text, name)
    prepared = prepare_forget(parsed, splits, seed, scenario=name,
                              superclasses=spec.superclasses)
    model_options = spec.model_options(prepared.splits) if spec.model_options else {}
    if user_model:
        _check_user_model(user_model, prepared.splits, model_options, name)
    return Scenario(
        name=name,
        options=config_dict(opts),
        splits=prepared.splits,
        forget_spec=parsed.text,
        forget_idx=prepared.idx,
        seed=seed,
        model_name=model,
        recipe=recipe_cfg,
        method_defaults={k: dict(v) for k, v in spec.method_defaults.items()},
        tuned_with=_tuned_with(spec),
        backdoor=prepared.backdoor,
        task=spec.task,
        model_options=model_options,
    )


def _user_model(spec: ScenarioSpec, model: Any) -> str | None:
    """``model`` when it names a model outside the scenario's recipes (registered or
    ``module:factory``); None for the scenario's own models and for no model at all."""
    if model is None or model in spec.recipes:
        return None
    if not isinstance(model, str) or not any(f.name == "model"
                                              for f in dataclasses.fields(spec.options)):
        return None  # build_config reports it
    try:
        resolve_factory(model)  # an unknown name or an unimportable module fails here, typed
    except UnknownNameError as exc:
        raise UnknownNameError(
            f"The 'model' parameter of scenario {spec.name} must be one of "
            f"{', '.join(map(repr, spec.recipes))}, or a registered or module:factory model. "
            f"{exc}") from None
    if spec.task != "classification":
        raise ConfigError(f"Scenario {spec.name} is a {spec.task} scenario; its models are "
                          f"{', '.join(spec.recipes)}. Your own models (here '{model}') work on "
                          f"the classification scenarios.")
    return model


def _check_user_model(model: str, splits: Splits, options: dict[str, Any], scenario: str
                      ) -> None:
    """Build the model once and run it on two training examples: typed errors now, not later."""
    from obliviate.inputs import check_batch, check_model

    built = build_model(model, tuple(splits.x_train.shape[1:]), splits.num_classes, seed=0,
                        **options)
    facts = check_model(built, f"model '{model}'")
    check_batch(built, (splits.x_train[:2], splits.y_train[:2]), f"{scenario} training", facts,
                num_classes=splits.num_classes)


from obliviate.data import (  # noqa: E402,F401  (register custom, mnist5k, ...)
    custom,
    domains,
    memorise,  # noqa: E402,F401  (register fashion-mem)
)
