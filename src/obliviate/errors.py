"""Typed exceptions. Every error a user can cause derives from :class:`ObliviateError`.

The CLI turns any ``ObliviateError`` into one line on stderr and exit status 2; messages
therefore name the problem and the fix in a single sentence.
"""

from __future__ import annotations


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence (or line) of a long third-party message, cut only between words.

    Opacus, peft and torch explain themselves in paragraphs; a one-line error names their first
    sentence and adds its own fix.
    """
    head = text.strip().splitlines()[0].strip() if text.strip() else ""
    end = head.find(". ")
    head = head[:end + 1] if end >= 0 else head
    if len(head) > limit:
        head = head[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return head


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


class UnlearningCheckError(ObliviateError, RuntimeError):
    """An unlearning run's result failed its check (``guard="raise"``): it collapsed or did
    nothing. ``kind`` is ``"collapse"`` or ``"no-op"``."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class UnlearningWarning(UserWarning):
    """An unlearning run returned a model that is probably useless (``guard="warn"``)."""


class CollapseWarning(UnlearningWarning):
    """Retain accuracy fell towards chance: the run destroyed what it should have kept."""


class NoOpWarning(UnlearningWarning):
    """Nothing changed: the weights, or the forget loss and every prediction, are as before."""


class StoreError(ObliviateError, OSError):
    """The run directory cannot be created, written or read."""


class ConcurrentWriterError(StoreError):
    """Another process is writing the same store, or changed it under this one."""


class DiskFullError(StoreError):
    """The disk filled up while obliviate wrote a file; nothing half-written was kept."""


class UntrustedCodeError(ConfigError):
    """A file names code (``module:function``) that obliviate imports only when the caller
    names it explicitly, on the command line or in Python."""
