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


def builtins() -> None:
    """Register the package's built-in entries (see :func:`obliviate.load_builtins`)."""
    import obliviate

    obliviate.load_builtins()


class Registry(Generic[T]):
    """A name -> entry mapping of one kind ("method", "scenario", "model").

    ``populate`` (e.g. :func:`builtins`) is called once, at the first read, so that a registry
    whose entries register themselves on import is complete whoever reads it first, while
    importing the registry itself stays cheap. Adding does not populate (the built-in modules
    add while they are being imported).
    """

    def __init__(self, kind: str, populate: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._populate = populate

    def _ensure(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None  # once, even when it reads us
            populate()

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
        self._ensure()
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            raise UnknownNameError(
                f"Unknown {self.kind} '{name}'. {did_you_mean(name, names)}"
                f"Available: {', '.join(names)}."
            ) from None

    def remove(self, name: str) -> None:
        self._ensure()
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure()
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
