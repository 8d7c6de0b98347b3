"""The ``custom`` scenario: users' own data, ``load_scenario("custom", data="npz:/path")``.

The data's own test split (idx t10k files, CIFAR test batch, npz X_test/y_test) is halved into
validation and test sets, as the challenge's starting kit does; without one, 20% of the examples
are held out for test and 10% for validation, whole groups at a time when the data has groups
(npz ``groups``, CSV ``group_column``), so that no group is split across train and test. Images are standardised with one mean and
standard deviation, flat features each with their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from obliviate.config import param
from obliviate.data.catalog import MODEL_HELP, SCENARIOS, ScenarioSpec, _split_three
from obliviate.data.scenario import Splits
from obliviate.data.user_data import DATA_HELP, ReadOptions, check_test_labels, load_user_data
from obliviate.errors import ConfigError, DataError
from obliviate.train import Recipe

RECIPES = {
    "mlp": Recipe(optimizer="sgd", lr=0.05, epochs=20, batch_size=64),
    "cnn": Recipe(optimizer="sgd", lr=0.05, epochs=15, batch_size=128),
    # The usual CIFAR recipe is 200 epochs at lr 0.1; 30 keeps a GPU run short.
    "resnet18": Recipe(optimizer="sgd", lr=0.1, epochs=30, batch_size=128),
}


@dataclass(frozen=True)
class CustomOptions:
    data: str = param("", help="KIND:PATH, KIND one of idx, cifar, npz, csv, images")
    model: str = param("mlp", choices=tuple(RECIPES), help=MODEL_HELP)
    target: str = param("", help="csv: the label column (default: the last column)")
    group_column: str = param("", help="csv: a column of group ids, for groups:FRACTION")
    image_size: int = param(0, ge=0, help="images: resize to NxN (0: the first image's size)")
    train_size: int = param(0, ge=0, help="use a random subset of this many training "
                                          "examples (0: all)")
    split_seed: int = param(42, ge=0, help="seed of the fixed subset and val/test split")


def _standardise(x_train: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    axis = 0 if x_train.ndim == 2 else None  # flat features: each its own scale
    mean = x_train.mean(axis=axis, keepdims=True)
    std = x_train.std(axis=axis, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return [torch.from_numpy(((a - mean) / std).astype(np.float32)) for a in (x_train, *others)]


def group_split(groups: np.ndarray, seed: int, test: float, val: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test rows with every group wholly in one of them.

    Groups are drawn in a random order (from ``seed``) into test until it holds ``test`` of
    the rows, then into validation until it holds ``val``; the rest are training groups. So a
    forgotten group's rows (a user's) are never among the test rows, the MIA's non-members.
    """
    ids, sizes = np.unique(groups, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test, n_val = round(test * len(groups)), round(val * len(groups))
    part, filled = np.zeros(len(ids), dtype=np.int64), 0
    for g in order:  # 2 = test, 1 = validation, 0 = train
        if filled < n_test:
            part[g] = 2
        elif filled < n_test + n_val:
            part[g] = 1
        else:
            break
        filled += sizes[g]
    if not (part == 0).any():
        raise DataError(f"The data has {len(ids)} groups, too few to hold whole groups out for "
                        f"validation and test and still train; give more groups.")
    where = part[np.searchsorted(ids, groups)]
    return tuple(np.flatnonzero(where == k) for k in (0, 1, 2))


def build_custom(opts: CustomOptions) -> Splits:
    if not opts.data:
        raise ConfigError(f"The custom scenario needs data=KIND:PATH (--data on the command "
                          f"line). {DATA_HELP}")
    a = load_user_data(opts.data, ReadOptions(opts.target, opts.group_column, opts.image_size))
    rng = np.random.default_rng(opts.split_seed)
    if a.x_test is not None:
        train = np.arange(len(a.y_train))
        held = rng.permutation(len(a.y_test))
        te, va = held[: len(held) // 2], held[len(held) // 2:]
        x_all = [a.x_train, a.x_test[va], a.x_test[te]]
        y_all = [a.y_train, a.y_test[va], a.y_test[te]]
    else:
        train, va, te = _split_three(len(a.y_train), opts.split_seed, test=0.2, val=0.1) \
            if a.groups is None else group_split(a.groups, opts.split_seed, test=0.2, val=0.1)
        x_all = [a.x_train[train], a.x_train[va], a.x_train[te]]
        y_all = [a.y_train[train], a.y_train[va], a.y_train[te]]
        for held, y_held in (("validation", y_all[1]), ("test", y_all[2])):
            check_test_labels(y_all[0], y_held, opts.data, held)
    if opts.train_size and opts.train_size < len(y_all[0]):
        sub = np.sort(rng.permutation(len(y_all[0]))[: opts.train_size])
        x_all[0], y_all[0], train = x_all[0][sub], y_all[0][sub], train[sub]
    xs = _standardise(*x_all)
    num_classes = int(max(y.max() for y in y_all if len(y))) + 1
    names = a.class_names if len(a.class_names) == num_classes else \
        tuple(str(i) for i in range(num_classes))
    groups = None if a.groups is None else torch.from_numpy(a.groups[train].astype(np.int64))
    return Splits(xs[0], torch.from_numpy(y_all[0]), xs[1], torch.from_numpy(y_all[1]), xs[2],
                  torch.from_numpy(y_all[2]), num_classes, names, groups)


SCENARIOS.add("custom", ScenarioSpec(
    name="custom",
    description="your own data: data=KIND:PATH (idx, cifar, npz, csv, images folders)",
    source="your files (--data KIND:PATH)",
    options=CustomOptions,
    build=build_custom,
    recipes=RECIPES,
    forgets="random, class, classes, ids, groups (npz/csv groups), mislabeled, poisoned",
))
