"""Users' own code, named ``module:function``: imported only when the caller names it.

The trust rule (see ``docs/security.md``): nothing obliviate reads from a file (``sisa.json``,
``config.json``, ``results.sqlite``, a YAML config, a model cache, TOFU/MUSE files, a Hugging
Face model folder) makes it import or run code. A user's own model factory or method is imported
only when the user names it on the command line (``--model my_models:cnn``, ``-m my_mod:f``,
``--trust-code NAME`` for a YAML config) or passes it in Python, the way transformers'
``trust_remote_code`` is explicit and off by default. A file that names code is refused with one
line saying how to name it explicitly.

The module is found on ``sys.path`` as the interpreter set it up (``PYTHONPATH``, the installed
packages); obliviate never adds the working directory to it, so a ``my_models.py`` dropped into
the folder a command runs in is not imported by accident.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

from obliviate.errors import ConfigError, UntrustedCodeError


def is_code_name(name: Any, registered: Iterable[str] = ()) -> bool:
    """Whether ``name`` is ``module:function`` (and not a registered name that holds a colon)."""
    return isinstance(name, str) and ":" in name and name not in registered


def import_named(spec: str, what: str, must_define: str = "") -> Callable[..., Any]:
    """The callable ``attr`` of ``module`` for ``spec = "module:attr"``.

    ``what`` names its role in messages ("model", "method"); ``must_define`` says what the
    function must be. The caller is responsible for ``spec`` coming from the user, not a file.

    Raises:
        ConfigError: a malformed spec, a module that cannot be imported or a missing function.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what.capitalize()} '{spec}' must look like module:function "
                          f"(e.g. my_module:{'cnn' if what == 'model' else 'forget'}).")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"Cannot import module '{module_name}' for {what} '{spec}': {exc}. "
                          f"obliviate does not search the current folder: add the folder that "
                          f"holds it to PYTHONPATH (e.g. PYTHONPATH=. obliviate ...).") from None
    except Exception as exc:  # the user's module fails as it loads (a SyntaxError, a raise)
        raise ConfigError(f"Module '{module_name}' for {what} '{spec}' failed to import "
                          f"({type(exc).__name__}: {exc}); fix the module.") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        extra = f"; it must define {must_define}" if must_define else ""
        raise ConfigError(f"Module '{module_name}' has no function '{attr}' for {what} "
                          f"'{spec}'{extra}.")
    return fn


def qualified_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function, as a ``module:function`` spec names it."""
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}"


def refuse(where: str, spec: str, how: str) -> UntrustedCodeError:
    """The one-line refusal of code named by a file."""
    return UntrustedCodeError(f"{where} names code '{spec}', which obliviate never imports "
                              f"because a file says so; if you trust it, {how}.")


def trusted_factory(recorded: str, given: str | Callable[..., Any] | None, where: str,
                    how: str) -> str | Callable[..., Any] | None:
    """The factory to build ``recorded`` (a name a file holds) with, given the caller's own.

    Returns ``given`` when it is the same ``module:function`` as ``recorded`` (a string equal to
    it, or a function whose ``module:qualname`` is it), None when no factory was given.

    Raises:
        UntrustedCodeError: ``given`` names other code than ``recorded``.
    """
    if given is None:
        return None
    name = given if isinstance(given, str) else qualified_name(given)
    if name != recorded:
        raise UntrustedCodeError(f"{where} was built with model '{recorded}', not '{name}'; "
                                 f"{how}.")
    return given


def check_config_code(data: dict[str, Any], trusted: Iterable[str], source: str,
                      registered: Callable[[str, str], bool]) -> None:
    """Refuse a YAML bench config whose ``model`` or ``methods`` name code not also named on
    the command line (``--trust-code NAME``). ``registered(kind, name)`` says whether ``name``
    is a registered model or method (a registered name never imports anything).

    Raises:
        UntrustedCodeError: naming the first such entry and the flag that allows it.
    """
    trusted = set(trusted)
    named = [("model", data.get("model"))]
    methods = data.get("methods")
    if isinstance(methods, str):
        methods = [methods]
    if isinstance(methods, list):
        named += [("method", m) for m in methods]
    for kind, name in named:
        if is_code_name(name) and not registered(kind, name) and name not in trusted:
            raise refuse(f"Config file {source}", name,
                         f"add '--trust-code {name}' to the command line")
