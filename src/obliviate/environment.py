"""Thread-count variables, screened before torch loads.

libgomp (torch's OpenMP) reads ``OMP_NUM_THREADS`` when it loads: a value that is not a
positive integer (``abc``, ``0``, ``-3``, empty) makes it print a warning and pick a count of
its own, which no result records. :func:`screen_thread_variables` runs when this module is
imported, first thing in ``import obliviate``: it takes such a value out of the environment (so libgomp neither warns
nor guesses) and remembers it; the command line then refuses to start with one line
(:func:`check_thread_variables`), and Python users can read :func:`refused_thread_variables`.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping

from obliviate.errors import ConfigError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# What libgomp accepts: a positive integer, or a comma-separated list of them (nested levels).
_COUNT = re.compile(r"\s*\+?0*[1-9][0-9]*\s*(,\s*\+?0*[1-9][0-9]*\s*)*")
_REFUSED: dict[str, str] = {}


def valid_thread_count(value: str) -> bool:
    return _COUNT.fullmatch(value) is not None


def screen_thread_variables(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Remove invalid thread counts from ``environ`` (default: ``os.environ``); returns them.

    Only the screening of ``os.environ`` is remembered for :func:`check_thread_variables`; a
    mapping passed in is screened on its own (it is not this process's environment)."""
    own = environ is None
    environ = os.environ if own else environ
    refused = {}
    for name in THREAD_VARIABLES:
        value = environ.get(name)
        if value is not None and not valid_thread_count(value):
            refused[name] = environ.pop(name)
    if own:
        _REFUSED.update(refused)
        return dict(_REFUSED)
    return refused


def refused_thread_variables() -> dict[str, str]:
    """The invalid thread-count variables ``import obliviate`` removed, with their values."""
    return dict(_REFUSED)


def check_thread_variables() -> None:
    """Raise a ConfigError naming the first invalid thread-count variable, if any."""
    for name, value in _REFUSED.items():
        raise ConfigError(f"{name}={value!r} is not a thread count; set it to a positive "
                          f"integer (e.g. {name}=1) or unset it.")


screen_thread_variables()  # at import, before torch loads (obliviate/__init__.py imports us first)
