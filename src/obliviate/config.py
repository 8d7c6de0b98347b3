"""Config dataclasses: declared bounds, string coercion and scikit-learn style validation.

Each method (and the training recipe) has a frozen dataclass whose fields are declared with
:func:`param`, which records the bounds and a one-line help text. :func:`build_config` turns
user overrides (Python values, or strings from ``--set key=value``) into a validated instance,
checking everything before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from obliviate.errors import ConfigError
from obliviate.registry import did_you_mean

C = TypeVar("C")


def param(
    default: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | None = None,
    help: str = "",
) -> Any:
    """Declare a config field with its bounds and meaning."""
    meta = {"gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices, "help": help}
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if origin is tuple:
        return "a tuple"
    return {int: "an int", float: "a float", bool: "a bool", str: "a str"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """Coerce ``value`` to ``tp``; strings (from the CLI or YAML) are parsed. Raises ValueError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except (ValueError, TypeError):
                continue
        raise ValueError
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp) or (str,)
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, list | tuple):
            raise ValueError
        return tuple(_coerce(v, inner) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError
    if tp is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value)
        raise ValueError
    if tp is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)
        raise ValueError
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError
    return value


def _bounds_text(meta: Mapping[str, Any]) -> str:
    parts = []
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if meta.get(key) is not None:
            parts.append(f"{sym} {meta[key]:g}")
    return " and ".join(parts)


def check_value(owner: str, name: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    """Coerce and check one value; raise the scikit-learn style :class:`ConfigError`."""
    bounds = _bounds_text(meta)
    want = _type_name(tp) + (f" {bounds}" if bounds else "")
    choices = meta.get("choices")
    if choices:
        want = "one of " + ", ".join(repr(c) for c in choices)
    msg = f"The '{name}' parameter of {owner} must be {want}. Got {value!r} instead."
    try:
        value = _coerce(value, tp)
    except (ValueError, TypeError):
        raise ConfigError(msg) from None
    if choices and value not in choices:
        raise ConfigError(msg)
    numbers = value if isinstance(value, tuple) else (value,)
    for v in numbers:
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if not math.isfinite(v):  # NaN or infinite: never a usable setting
            raise ConfigError(msg)
        if meta.get("gt") is not None and not v > meta["gt"]:
            raise ConfigError(msg)
        if meta.get("ge") is not None and not v >= meta["ge"]:
            raise ConfigError(msg)
        if meta.get("lt") is not None and not v < meta["lt"]:
            raise ConfigError(msg)
        if meta.get("le") is not None and not v <= meta["le"]:
            raise ConfigError(msg)
    return value


def field_info(cls: type) -> list[tuple[str, Any, Any, str]]:
    """(name, type, default, help) for each field of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return [
        (f.name, hints[f.name], f.default, f.metadata.get("help", ""))
        for f in dataclasses.fields(cls)
    ]


def build_config(cls: type[C], overrides: Mapping[str, Any] | None, owner: str) -> C:
    """Build a validated ``cls`` from defaults plus ``overrides``.

    Raises:
        ConfigError: an unknown key (with a "Did you mean" hint) or an invalid value.
    """
    overrides = dict(overrides or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in overrides:
        if key not in fields:
            raise ConfigError(
                f"{owner} has no parameter '{key}'. {did_you_mean(key, list(fields))}"
                f"Valid parameters: {', '.join(fields) or '(none)'}."
            )
    values = {}
    for name, f in fields.items():
        value = overrides.get(name, f.default)
        values[name] = check_value(owner, name, value, hints[name], f.metadata)
    return cls(**values)


def config_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (tuples become lists)."""
    if cfg is None:
        return {}
    if dataclasses.is_dataclass(cfg):
        out = dataclasses.asdict(cfg)
    elif isinstance(cfg, Mapping):
        out = dict(cfg)
    else:
        out = dict(vars(cfg))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def parse_assignments(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["scrub.epochs=5", "recipe.lr=0.1"]`` -> ``{"scrub": {"epochs": "5"}, ...}``.

    The owner is everything before the last dot of the key (the part before ``=``), so values
    may hold dots (``finetune.lr=0.01``) and owners may hold them (``my.module:fn.alpha=1``).
    """
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        owner, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not owner or not name:
            raise ConfigError(
                f"Malformed --set '{item}': write OWNER.PARAM=VALUE, e.g. finetune.lr=0.01, "
                f"recipe.epochs=5 or scenario.train_size=5000."
            )
        out.setdefault(owner, {})[name] = value.strip()
    return out
