"""YAML as obliviate reads it from users: safe tags only, every key once, errors on one line.

``yaml.safe_load`` keeps the last of two equal keys without a word (``methods:`` written twice
runs the second list only); :class:`UniqueKeyLoader` refuses the second one instead, naming
the key and its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from obliviate.errors import ConfigError


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, first: int, second: int):
        where = f"line {first}" if first == second else f"lines {first} and {second}"
        super().__init__(f"sets {str(key)!r} twice ({where}); keep one")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
        return super().construct_mapping(node, deep=deep)


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document ``text`` (from ``where``), or a ConfigError on one line."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{where} {exc}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {_one_line(exc)}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # SafeLoader's own conversions (a timestamp out of range, deep nesting)
        raise ConfigError(f"{where} is not valid YAML: {_one_line(exc)}") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file that must hold a flat mapping of settings (a bench description)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {_one_line(exc)}.") from None
    data = parse_yaml(text, f"Config file {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must be a flat mapping of settings "
                          f"(scenario, methods, forget, ...).")
    return data


def yaml_scalar(text: str, where: str) -> Any:
    """One command-line value read as a YAML scalar (``3`` -> 3, ``0.1`` -> 0.1, ``x`` -> 'x')."""
    return parse_yaml(text, where)
