"""One typed registry for methods, scenarios and models.

A :class:`Registry` refuses duplicate names and answers an unknown name with the closest
matches, in the manner of lm-eval's task registry.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from obliviate.errors import ConfigError, UnknownNameError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return a "Did you mean 'x'? " hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"Did you mean '{close[0]}'? " if close else ""


class Registry(Generic[T]):
    """A name -> entry mapping of one kind ("method", "scenario", "model")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ConfigError(f"A {self.kind} name must be a non-empty string without spaces. Got {name!r}.")
        if name in self._entries:
            raise ConfigError(
                f"A {self.kind} named '{name}' is already registered. Choose another name."
            )
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}'. {did_you_mean(name, names)}"
                f"Available: {', '.join(names)}."
            ) from None

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def view(self, keep: Callable[[T], bool], kind: str, why: Callable[[str, T], str]
             ) -> RegistryView[T]:
        """A read-only view of the entries for which ``keep(entry)`` holds.

        ``why(name, entry)`` says why an entry of this registry is not in the view (e.g. "npo is
        a language-model method"), so that a name in the wrong view is answered helpfully.
        """
        return RegistryView(self, keep, kind, why)


class RegistryView(Generic[T]):
    """The entries of a :class:`Registry` that pass a filter; see :meth:`Registry.view`."""

    def __init__(self, parent: Registry[T], keep: Callable[[T], bool], kind: str,
                 why: Callable[[str, T], str]) -> None:
        self.parent, self.keep, self.kind, self.why = parent, keep, kind, why

    def names(self) -> list[str]:
        return [n for n in self.parent.names() if self.keep(self.parent.get(n))]

    def get(self, name: str) -> T:
        if name in self.parent and not self.keep(self.parent.get(name)):
            raise UnknownNameError(f"{self.why(name, self.parent.get(name))} Available "
                                   f"{self.kind}s: {', '.join(self.names())}.")
        if name not in self.parent:
            names = self.names()
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}'. {did_you_mean(name, names)}"
                f"Available: {', '.join(names)}."
            )
        return self.parent.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.parent and self.keep(self.parent.get(name))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
