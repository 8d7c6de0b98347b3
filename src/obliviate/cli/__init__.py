"""The ``obliviate`` command line: a thin layer over the library.

Any :class:`~obliviate.errors.ObliviateError` and any usage error of the command-line framework
(whichever copy of click it uses) ends the command with one line on stderr and exit status 2;
an interrupted bench keeps every finished job and resumes on the next run.
"""

from __future__ import annotations

import re
import sys

from obliviate.cli import bench, listing, runs, tune  # noqa: F401  (register their commands)
from obliviate.cli.app import app
from obliviate.cli.sisa import app as sisa_app

app.add_typer(sisa_app, name="sisa")


def _framework_error(exc: BaseException, kind: str) -> bool:
    """Whether ``exc`` is click's ``kind`` exception (click's own, or a vendored copy of it)."""
    return any(cls.__name__ == kind and "click" in cls.__module__ for cls in type(exc).__mro__)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def main(argv: list[str] | None = None) -> None:
    """Entry point: typed errors and usage errors become one line and exit status 2."""
    from obliviate.environment import check_thread_variables
    from obliviate.errors import ObliviateError

    try:
        check_thread_variables()
        code = app(args=argv, standalone_mode=False)
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
