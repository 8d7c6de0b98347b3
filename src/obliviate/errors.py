"""Typed exceptions. Every error a user can cause derives from :class:`ObliviateError`.

The CLI turns any ``ObliviateError`` into one line on stderr and exit status 2; messages
therefore name the problem and the fix in a single sentence.
"""

from __future__ import annotations


class ObliviateError(Exception):
    """Base class for every error obliviate raises on purpose.

    Its message is one line whatever it quotes: a line break inside a quoted value (a file's
    header, a pasted option) becomes a space, so Python users get the line the CLI prints.
    """

    def __init__(self, *args: object):
        super().__init__(*(" ".join(a.split()) if isinstance(a, str) else a for a in args))


class ConfigError(ObliviateError, ValueError):
    """A parameter, option or configuration value is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A method, scenario, model or other registered name does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(ObliviateError, ValueError):
    """Data is missing, malformed, or a selection of it is impossible."""


class ForgetSpecError(DataError):
    """A forget specification is malformed or selects an impossible set."""


class TrainingDivergedError(ObliviateError, RuntimeError):
    """A loss or a weight became NaN or infinite during training or unlearning."""


class StoreError(ObliviateError, OSError):
    """The run directory cannot be created, written or read."""


class ConcurrentWriterError(StoreError):
    """Another process is writing the same store, or changed it under this one."""


class DiskFullError(StoreError):
    """The disk filled up while obliviate wrote a file; nothing half-written was kept."""


class UntrustedCodeError(ConfigError):
    """A file names code (``module:function``) that obliviate imports only when the caller
    names it explicitly, on the command line or in Python."""
