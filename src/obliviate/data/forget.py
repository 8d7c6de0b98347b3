"""Forget specifications: parse a spec string, select training indices deterministically."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from obliviate.errors import ForgetSpecError

SPEC_HELP = (
    "Use random:FRACTION (e.g. random:0.1), random:COUNT (e.g. random:100), class:K, "
    "classes:K,L, ids:FILE (one training index per line), groups:FRACTION, mislabeled:FRACTION, "
    "poisoned:FRACTION or subclass:NAME."
)
KINDS = ("random", "class", "classes", "ids", "groups", "mislabeled", "poisoned", "subclass")
# An integer as users type it: ASCII digits only (Python's int() also reads '١٢' and '1_0').
ASCII_INT = re.compile(r"[+-]?[0-9]+")
ASCII_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|nan)",
                          re.IGNORECASE)
# Kinds whose fraction argument is a share of something: groups, flipped labels, poisoned inputs.
FRACTION_KINDS = ("groups", "mislabeled", "poisoned")


@dataclass(frozen=True)
class ForgetSpec:
    """A parsed forget specification."""

    kind: str
    arg: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.arg}"


def parse_forget_spec(text: str) -> ForgetSpec:
    """Parse ``random:0.1``, ``random:500``, ``class:3``, ``classes:3,5`` or ``ids:FILE``."""
    if not isinstance(text, str) or ":" not in text:
        raise ForgetSpecError(f"Malformed forget spec {text!r}. {SPEC_HELP}")
    if not text.isprintable():  # a newline or control character: a paste gone wrong
        raise ForgetSpecError(f"Forget spec {text!r} holds a line break, control or invisible "
                              f"character; write it on one line in plain text. {SPEC_HELP}")
    kind, arg = text.split(":", 1)
    kind, arg = kind.strip().lower(), arg.strip()
    if kind not in KINDS:
        from obliviate.registry import did_you_mean

        raise ForgetSpecError(
            f"Unknown forget kind '{kind}' in {text!r}. {did_you_mean(kind, list(KINDS))}{SPEC_HELP}"
        )
    if not arg:
        raise ForgetSpecError(f"Forget spec {text!r} has nothing after the colon. {SPEC_HELP}")
    spec = ForgetSpec(kind, arg)
    if kind == "random":
        _random_amount(spec)
    elif kind in ("class", "classes"):
        _class_list(spec)
    elif kind in FRACTION_KINDS:
        fraction_arg(spec)
    return spec


def fraction_arg(spec: ForgetSpec) -> float:
    """The FRACTION of ``groups:``, ``mislabeled:`` and ``poisoned:``, strictly in (0, 1)."""
    value = float(spec.arg) if ASCII_NUMBER.fullmatch(spec.arg) else None
    if value is None or not math.isfinite(value):
        what = "a number" if value is None else "a finite number"
        raise ForgetSpecError(
            f"Malformed forget spec '{spec.text}': '{spec.arg}' is not {what}; write "
            f"{spec.kind}:FRACTION, e.g. {spec.kind}:0.1."
        )
    if not 0.0 < value < 1.0:
        raise ForgetSpecError(
            f"The fraction in '{spec.text}' must be strictly between 0 and 1 "
            f"({spec.kind}:0.1 means 10%)."
        )
    return value


def _random_amount(spec: ForgetSpec) -> float | int:
    if not ASCII_NUMBER.fullmatch(spec.arg):
        raise ForgetSpecError(
            f"Malformed forget spec '{spec.text}': '{spec.arg}' is not a number. {SPEC_HELP}"
        )
    value = float(spec.arg)
    if not math.isfinite(value):
        raise ForgetSpecError(
            f"Malformed forget spec '{spec.text}': '{spec.arg}' is not a finite number; write "
            f"random:FRACTION (e.g. random:0.1) or random:COUNT (e.g. random:100)."
        )
    if "." in spec.arg or "e" in spec.arg.lower():
        if not 0.0 < value < 1.0:
            raise ForgetSpecError(
                f"Forget fraction in '{spec.text}' must be strictly between 0 and 1 "
                f"(random:0.1 forgets 10%); use random:COUNT for a number of examples."
            )
        return value
    if value < 1:
        raise ForgetSpecError(
            f"Forget count in '{spec.text}' must be at least 1; an empty forget set has nothing "
            f"to unlearn."
        )
    return int(value)


def _class_list(spec: ForgetSpec) -> list[int]:
    parts = [p.strip() for p in spec.arg.split(",") if p.strip()]
    if not all(ASCII_INT.fullmatch(p) for p in parts):
        raise ForgetSpecError(
            f"Malformed forget spec '{spec.text}': classes must be integers. {SPEC_HELP}"
        )
    classes = [int(p) for p in parts]
    repeated = sorted({k for k in classes if classes.count(k) > 1})
    if repeated:
        raise ForgetSpecError(f"'{spec.text}' names class {repeated[0]} more than once; name "
                              f"each class once.")
    if spec.kind == "class" and len(classes) != 1:
        raise ForgetSpecError(f"'{spec.text}' names several classes; write classes:{spec.arg}.")
    if not classes:
        raise ForgetSpecError(f"'{spec.text}' names no class. {SPEC_HELP}")
    return classes


def read_ids_file(path: Path) -> np.ndarray:
    """One integer index per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ForgetSpecError(f"The ids file {path} does not exist. {SPEC_HELP}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ForgetSpecError(f"Cannot read the ids file {path}: {exc}.") from None
    ids = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not ASCII_INT.fullmatch(line):
            raise ForgetSpecError(
                f"{path}, line {number}: {line!r} is not an integer training index; "
                f"write one index per line in ASCII digits (0-9)."
            )
        value = int(line)
        if not -(2**63) <= value < 2**63:
            raise ForgetSpecError(
                f"{path}, line {number}: {line} is far outside any training set; write the "
                f"training indices, one per line (0 to the training set's size - 1)."
            )
        ids.append(value)
    return np.asarray(ids, dtype=np.int64)


def select_groups(spec: ForgetSpec, groups: np.ndarray | None, seed: int) -> np.ndarray:
    """Every training index of a seeded random FRACTION of the distinct groups."""
    if groups is None:
        raise ForgetSpecError(
            f"'{spec.text}' needs a group id (user, person, author) per training example and "
            f"this data has none; use data with groups (e.g. custom data from an .npz holding a "
            f"'groups' array) or another spec such as random:0.1."
        )
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    count = int(round(fraction_arg(spec) * len(uniq)))
    if count < 1:
        raise ForgetSpecError(
            f"'{spec.text}' selects no group out of {len(uniq)}; use a larger fraction."
        )
    chosen = np.random.default_rng(seed).choice(uniq, size=count, replace=False)
    return np.flatnonzero(np.isin(groups, chosen))


def select_forget(
    spec: ForgetSpec | str, labels: np.ndarray, seed: int, *, groups: np.ndarray | None = None
) -> np.ndarray:
    """Sorted training indices selected by ``spec``; deterministic given ``seed``.

    ``groups`` (one id per training example) is needed by ``groups:FRACTION`` only. The kinds
    that change the training data (``mislabeled``, ``poisoned``, ``subclass``) are applied by
    :func:`obliviate.data.reasons.prepare_forget`, which :func:`load_scenario` calls.

    Raises:
        ForgetSpecError: the selection is empty, covers the whole training set, or names
            indices, classes or groups that do not exist.
    """
    if isinstance(spec, str):
        spec = parse_forget_spec(spec)
    n = len(labels)
    if spec.kind in ("mislabeled", "poisoned", "subclass"):
        raise ForgetSpecError(
            f"'{spec.text}' changes the training data, so it cannot select from labels alone; "
            f"load it with ob.load_scenario(NAME, forget='{spec.text}')."
        )
    if spec.kind == "groups":
        idx = select_groups(spec, groups, seed)
    elif spec.kind == "random":
        amount = _random_amount(spec)
        count = int(round(amount * n)) if isinstance(amount, float) else amount
        if count < 1:
            raise ForgetSpecError(
                f"'{spec.text}' selects no example out of {n}; use a larger fraction or a count."
            )
        if count > n:
            raise ForgetSpecError(
                f"'{spec.text}' asks for {count} examples but the training set has only {n}."
            )
        rng = np.random.default_rng(seed)
        idx = rng.choice(n, size=count, replace=False)
    elif spec.kind in ("class", "classes"):
        classes = _class_list(spec)
        present = set(np.unique(labels).tolist())
        for k in classes:
            if k not in present:
                raise ForgetSpecError(
                    f"Class {k} in '{spec.text}' has no training example; classes present: "
                    f"{sorted(present)}."
                )
        idx = np.flatnonzero(np.isin(labels, classes))
    else:
        path = Path(spec.arg)
        idx = read_ids_file(path)
        if idx.size == 0:
            raise ForgetSpecError(f"The ids file {path} lists no index; the forget set is empty.")
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise ForgetSpecError(
                f"The ids file {path} has index {int(bad[0])} out of range; training indices run "
                f"from 0 to {n - 1}."
            )
        uniq, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise ForgetSpecError(
                f"The ids file {path} lists index {int(uniq[counts > 1][0])} more than once; "
                f"list each index once."
            )
    idx = np.sort(np.asarray(idx, dtype=np.int64))
    if idx.size >= n:
        raise ForgetSpecError(
            f"'{spec.text}' selects all {n} training examples, leaving nothing to retain; "
            f"forget a smaller part."
        )
    return idx


def index_hash(idx: np.ndarray) -> str:
    """A short, stable fingerprint of an index set (sha256 of sorted int64 values)."""
    arr = np.sort(np.asarray(idx, dtype=np.int64))
    return hashlib.sha256(arr.tobytes()).hexdigest()[:16]
