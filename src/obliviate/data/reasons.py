"""The practical reasons to unlearn that change the training data itself.

``mislabeled:FRACTION`` flips that fraction of training labels, ``poisoned:FRACTION`` plants a
backdoor (a small trigger mapped to a target class) in that fraction of training inputs, and
``subclass:NAME`` trains on a scenario's super-classes and forgets one of their member classes.
Each returns new splits (the clean ones are never modified) and the forget set: the flipped,
poisoned or subclass examples. The original model is trained on the changed data and the
retrained model on what remains, so both, and every cache key and split hash derived from the
splits, reflect the change. Every draw comes from the forget seed.

References:
    Backdoors by data poisoning: Gu et al., "BadNets: Identifying vulnerabilities in the
    machine learning model supply chain", 2017. Unlearning them and mislabeled data: Goel et al.,
    "Corrective machine unlearning", TMLR 2024. Subclass forgetting: Foster et al., "Fast machine
    unlearning without retraining through selective synaptic dampening", AAAI 2024.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from obliviate.data.forget import ForgetSpec, fraction_arg, select_forget
from obliviate.data.scenario import Splits
from obliviate.errors import ForgetSpecError

BACKDOOR_TARGET = 0  # the class every triggered input is relabelled to


@dataclass(frozen=True)
class Backdoor:
    """A trigger (``mask`` positions set to ``pattern`` values) and the class it maps to."""

    target: int
    mask: torch.Tensor  # bool, one example's shape
    pattern: torch.Tensor  # float, one example's shape

    def stamp(self, x: torch.Tensor) -> torch.Tensor:
        """Copies of inputs ``x`` (a batch) carrying the trigger."""
        return torch.where(self.mask, self.pattern.to(x.dtype), x)

    def describe(self) -> dict[str, Any]:
        return {"target": self.target, "trigger_size": int(self.mask.sum())}


@dataclass
class PreparedForget:
    """Splits to train on, the forget set within them, and the backdoor when one was planted."""

    splits: Splits
    idx: np.ndarray
    backdoor: Backdoor | None = None


def make_trigger(x_train: torch.Tensor, target: int = BACKDOOR_TARGET) -> Backdoor:
    """A BadNets-style trigger for inputs shaped like ``x_train[0]``.

    Images (C, H, W): a bright square of side max(2, H/10) in the bottom-right corner, at the
    training set's maximum value. Any other shape: the last max(3, 5%) features, flattened,
    each set to its maximum over the training set.
    """
    if not x_train.is_floating_point():
        raise ForgetSpecError(
            f"poisoned: needs real-valued inputs to stamp a trigger on; this scenario's inputs "
            f"are {x_train.dtype} (token ids?). Use mislabeled:FRACTION or random:FRACTION here."
        )
    shape = x_train.shape[1:]
    mask = torch.zeros(shape, dtype=torch.bool)
    if len(shape) == 3 and min(shape[1:]) >= 4:
        side = max(2, round(shape[1] / 10))
        mask[:, -side:, -side:] = True
        pattern = torch.full(shape, float(x_train.max()))
    else:
        flat = mask.view(-1)
        k = min(flat.numel(), max(3, round(0.05 * flat.numel())))
        flat[-k:] = True
        pattern = x_train.reshape(len(x_train), -1).amax(dim=0).reshape(shape)
    return Backdoor(target, mask, pattern)


def _check_classification(splits: Splits, spec: ForgetSpec) -> None:
    if splits.y_train.dtype != torch.int64 or splits.num_classes < 2:
        raise ForgetSpecError(
            f"'{spec.text}' works on classification scenarios (integer labels, two or more "
            f"classes); this one has {splits.num_classes} class(es) and {splits.y_train.dtype} "
            f"targets."
        )


def _count(spec: ForgetSpec, n: int, available: int, what: str) -> int:
    count = int(round(fraction_arg(spec) * n))
    if count < 1:
        raise ForgetSpecError(f"'{spec.text}' selects no example out of {n}; use a larger "
                              f"fraction.")
    if count > available:
        raise ForgetSpecError(f"'{spec.text}' asks for {count} examples but only {available} "
                              f"{what}; use a smaller fraction.")
    return count


def mislabel(splits: Splits, spec: ForgetSpec, seed: int, **_: Any) -> PreparedForget:
    """Flip a seeded FRACTION of training labels, each to a different class drawn uniformly."""
    _check_classification(splits, spec)
    rng = np.random.default_rng(seed)
    y = splits.y_train.numpy().copy()
    n, k = len(y), splits.num_classes
    idx = np.sort(rng.choice(n, size=_count(spec, n, n - 1, "can be flipped"), replace=False))
    y[idx] = (y[idx] + rng.integers(1, k, size=len(idx))) % k
    return PreparedForget(dataclasses.replace(splits, y_train=torch.from_numpy(y)), idx)


def poison(splits: Splits, spec: ForgetSpec, seed: int, **_: Any) -> PreparedForget:
    """Stamp the trigger on a seeded FRACTION of training inputs outside the target class and
    relabel them to the target class (a BadNets backdoor)."""
    _check_classification(splits, spec)
    backdoor = make_trigger(splits.x_train)
    y = splits.y_train.numpy()
    candidates = np.flatnonzero(y != backdoor.target)
    count = _count(spec, len(y), len(candidates), f"are outside the target class "
                                                   f"{backdoor.target}")
    idx = np.sort(np.random.default_rng(seed).choice(candidates, size=count, replace=False))
    x_train, y_train = splits.x_train.clone(), splits.y_train.clone()
    at = torch.from_numpy(idx)
    x_train[at] = backdoor.stamp(x_train[at])
    y_train[at] = backdoor.target
    return PreparedForget(dataclasses.replace(splits, x_train=x_train, y_train=y_train), idx,
                          backdoor)


def subclass(splits: Splits, spec: ForgetSpec, seed: int, *, scenario: str = "this scenario",
             superclasses: Mapping[str, Sequence[str]] | None = None, **_: Any
             ) -> PreparedForget:
    """Relabel every split to the scenario's super-classes and forget one member class."""
    if not superclasses:
        raise ForgetSpecError(
            f"Scenario '{scenario}' has no super-classes, so '{spec.text}' cannot apply; "
            f"forget a whole class with class:K, or use a scenario with super-classes "
            f"(fashion: tops, bottoms, shoes, bags)."
        )
    names = list(splits.class_names)
    member = spec.arg
    if member.isdigit() and int(member) < len(names):
        member = names[int(member)]
    if member not in names:
        raise ForgetSpecError(
            f"'{spec.text}' names no class of '{scenario}'; its classes are {', '.join(names)}."
        )
    super_of = {c: i for i, members in enumerate(superclasses.values()) for c in members}
    missing = [c for c in names if c not in super_of]
    if missing:
        raise ForgetSpecError(f"Scenario '{scenario}' puts class '{missing[0]}' in no "
                              f"super-class; every class needs one.")
    lookup = torch.tensor([super_of[c] for c in names], dtype=torch.int64)
    fine = splits.y_train.numpy()
    idx = np.flatnonzero(fine == names.index(member))
    relabelled = dataclasses.replace(
        splits, y_train=lookup[splits.y_train], y_val=lookup[splits.y_val],
        y_test=lookup[splits.y_test], num_classes=len(superclasses),
        class_names=tuple(superclasses))
    return PreparedForget(relabelled, idx)


TRANSFORMS: dict[str, Callable[..., PreparedForget]] = {
    "mislabeled": mislabel, "poisoned": poison, "subclass": subclass,
}


def prepare_forget(
    spec: ForgetSpec,
    splits: Splits,
    seed: int,
    *,
    scenario: str = "this scenario",
    superclasses: Mapping[str, Sequence[str]] | None = None,
) -> PreparedForget:
    """The splits to train on and the forget set that ``spec`` names, drawn from ``seed``."""
    transform = TRANSFORMS.get(spec.kind)
    if transform is not None:
        prepared = transform(splits, spec, seed, scenario=scenario, superclasses=superclasses)
        if len(prepared.idx) >= len(prepared.splits.y_train):
            raise ForgetSpecError(f"'{spec.text}' selects every training example, leaving "
                                  f"nothing to retain; forget a smaller part.")
        return prepared
    if spec.kind == "groups" and splits.groups is None:
        raise ForgetSpecError(
            f"Scenario '{scenario}' has no groups (users, people, authors), so '{spec.text}' "
            f"cannot apply; use a scenario with groups or custom data from an .npz holding a "
            f"'groups' array."
        )
    groups = None if splits.groups is None else splits.groups.numpy()
    return PreparedForget(splits, select_forget(spec, splits.y_train.numpy(), seed,
                                                groups=groups))
