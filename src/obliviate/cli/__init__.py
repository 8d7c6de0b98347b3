"""The ``obliviate`` command line: a thin layer over the library.

Any :class:`~obliviate.errors.ObliviateError` and any usage error of the command-line framework
(whichever copy of click it uses) ends the command with one line on stderr and exit status 2;
an interrupted bench keeps every finished job and resumes on the next run.
"""

from __future__ import annotations

import importlib
import re
import sys

from obliviate.cli import listing, runs  # noqa: F401  (register their commands)
from obliviate.cli.app import SHORT_HELP, app

# Commands whose modules import torch and the bench: imported only when the command line
# names them, so that --help, scenarios, methods and report start at once.
HEAVY = {"bench": "obliviate.cli.bench", "validate": "obliviate.cli.bench",
         "tune": "obliviate.cli.tune", "sisa": "obliviate.cli.sisa"}
ORDER = ("bench", "validate", "scenarios", "methods", "report", "tune")


def _name(info) -> str:
    return info.name or info.callback.__name__


def _is_placeholder(info) -> bool:
    return getattr(info.callback, "placeholder", False)


def load_commands(argv: list[str]) -> None:
    """Register the heavy command that ``argv`` names, and for ``--help`` a placeholder for
    each heavy command not loaded yet (replaced by the real one when a later call names it)."""
    named = next((a for a in argv if not a.startswith("-")), None)
    if named in HEAVY:
        loaded = importlib.import_module(HEAVY[named])  # its decorators register its commands
        if named == "sisa" and not any(g.name == "sisa" for g in app.registered_groups):
            app.add_typer(loaded.app, name="sisa")
    real = {_name(c) for c in app.registered_commands if not _is_placeholder(c)} | \
        {g.name for g in app.registered_groups}
    app.registered_commands[:] = [c for c in app.registered_commands
                                  if not (_is_placeholder(c) and _name(c) in real)]
    listed = {_name(c) for c in app.registered_commands} | real
    for name in HEAVY:
        if name not in listed:
            _placeholder(name)
    app.registered_commands.sort(
        key=lambda c: ORDER.index(_name(c)) if _name(c) in ORDER else len(ORDER))


def _placeholder(name: str) -> None:
    """A command listed under its own name and help that never runs: :func:`load_commands`
    replaces it with the real one when a command line names it."""

    def placeholder() -> None:  # pragma: no cover - never called, see above
        raise RuntimeError(f"'{name}' was not loaded")

    placeholder.placeholder = True  # type: ignore[attr-defined]
    app.command(name=name, short_help=SHORT_HELP[name], add_help_option=False)(placeholder)


def _framework_error(exc: BaseException, kind: str) -> bool:
    """Whether ``exc`` is click's ``kind`` exception (click's own, or a vendored copy of it)."""
    return any(cls.__name__ == kind and "click" in cls.__module__ for cls in type(exc).__mro__)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def main(argv: list[str] | None = None) -> None:
    """Entry point: typed errors and usage errors become one line and exit status 2."""
    from obliviate.environment import check_thread_variables
    from obliviate.errors import ObliviateError

    args = sys.argv[1:] if argv is None else argv
    try:
        check_thread_variables()
        load_commands(args)
        code = app(args=args, standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) comes back as a return value here
            sys.exit(code)
    except ObliviateError as exc:
        print(f"obliviate: error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if _framework_error(exc, "Exit"):
            sys.exit(getattr(exc, "exit_code", 0))
        if _framework_error(exc, "Abort"):
            sys.exit(130)
        if _framework_error(exc, "ClickException"):
            ctx = getattr(exc, "ctx", None)
            where = f"{ctx.command_path} --help" if ctx is not None else "obliviate --help"
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            print(f"obliviate: error: {_one_line(message).rstrip('.')}. See '{where}'.",
                  file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
