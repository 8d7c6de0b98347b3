"""Where a command will write, checked before it starts and without creating anything.

A run that would fail at its first write (``--out`` under a file, ``--cache`` naming a file)
is refused here, before any training and before anything is created, so that the refusal
leaves the disk as it was.
"""

from __future__ import annotations

from pathlib import Path

from obliviate.errors import ConfigError


def _blocking_file(path: Path) -> Path | None:
    """The first existing non-folder among ``path`` and its ancestors, if any."""
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            return None if part.is_dir() else part
    return None


def check_folder_target(path: Path | str, what: str) -> Path:
    """``path`` as a folder a command may create or write into; refuses '' and files."""
    if not str(path).strip():
        raise ConfigError(f"{what} is empty; name a folder (e.g. {what} runs/mine), or '.' for "
                          f"the current one.")
    path = Path(path).expanduser()
    blocker = _blocking_file(path)
    if blocker is not None:
        where = "is a file" if blocker == path else f"lies under the file {blocker}"
        raise ConfigError(f"{what} {path} {where}, not a folder; choose a folder path.")
    return path


def check_file_target(path: Path | str, what: str) -> Path:
    """``path`` as a file a command will write at its end; refuses folders and paths under
    files, so that the work before the write is not lost."""
    if not str(path).strip():
        raise ConfigError(f"{what} is empty; name a file, e.g. {what} tune.json.")
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; name a file inside it, e.g. "
                          f"{path / 'tune.json'}.")
    blocker = _blocking_file(path.parent)
    if blocker is not None:
        raise ConfigError(f"{what} {path} lies under the file {blocker}, which cannot hold "
                          f"files; choose another path.")
    return path
