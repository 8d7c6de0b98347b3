"""Files inside a folder obliviate owns: never followed out of it, never half-written.

Run directories, SISA model folders and model caches travel between machines as archives, so
anything in them may be a symbolic link, a hard link or a FIFO planted by whoever packed them.
Three rules keep every write and delete inside the folder:

* **Lock files** open with ``O_NOFOLLOW`` and ``O_CREAT`` (never ``O_TRUNC``) and must be a
  regular file with one link: a link to ``~/.bashrc`` is refused, not emptied.
* **New files** are written under a temporary name created with ``O_EXCL | O_NOFOLLOW`` (a
  planted link is removed, not written through), flushed, and renamed over the old one.
* **Deletes** remove only a regular file whose resolved path lies inside the folder.

A full disk (``ENOSPC``, ``EDQUOT``) or a read-only file system (``EROFS``) while writing is
turned into :class:`~obliviate.errors.DiskFullError` / :class:`~obliviate.errors.StoreError`
with one line naming the folder; the temporary file is removed, so nothing half-written stays.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from obliviate.errors import DiskFullError, StoreError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def open_lock_file(path: Path) -> int:
    """A read-write descriptor on the regular file ``path`` (created if absent, not truncated).

    Raises:
        StoreError: ``path`` is a symbolic link, not a regular file, has other hard links, or
            cannot be created.
    """
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(f"The lock file {path} is a symbolic link; obliviate never writes "
                             f"through links in a folder it owns: remove that link.") from None
        raise StoreError(f"Cannot create the lock file {path} ({exc.strerror}); choose a "
                         f"writable folder.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "has other hard links" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise StoreError(f"The lock file {path} {what}; obliviate only locks a plain file of its "
                         f"own: remove it.")
    return fd


def disk_error(exc: OSError, folder: Path, doing: str) -> StoreError:
    """The one-line error for an ``OSError`` met while ``doing`` something in ``folder``."""
    if exc.errno in NO_SPACE:
        return DiskFullError(f"The disk holding {folder} is full (while {doing}); nothing "
                             f"half-written was kept: free space there and run the same command "
                             f"again.")
    if exc.errno == errno.EROFS:
        return StoreError(f"{folder} is on a read-only file system (while {doing}); choose a "
                          f"writable folder.")
    return StoreError(f"Cannot write in {folder} while {doing}: {exc.strerror or exc}.")


def sqlite_code(exc: BaseException) -> int:
    """SQLite's primary result code of ``exc`` (0 when it carries none)."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


SQLITE_FULL = 13


def sqlite_disk_error(exc: BaseException, folder: Path, doing: str) -> StoreError | None:
    """The :func:`disk_error` for a SQLite error that says the disk is full, else None."""
    if sqlite_code(exc) == SQLITE_FULL:
        return disk_error(OSError(errno.ENOSPC, "No space left on device"), folder, doing)
    return None


def _new_temporary(path: Path) -> Path:
    """Create ``.NAME.tmp-PID`` beside ``path`` as a new regular file (a planted one is
    removed first: unlinking a link never touches what it points to)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
    except IsADirectoryError:
        raise StoreError(f"{tmp} is a folder; remove it.") from None
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644))
    return tmp


def write_atomic(path: Path, data: bytes | Callable[[Path], None], *, doing: str) -> None:
    """Write ``path`` so that readers see the old file or the whole new one.

    ``data`` is the content, or a function that writes the content into the path it is given
    (for writers that take a file name, like ``safetensors.torch.save_file``).

    Raises:
        DiskFullError: the disk filled up (the temporary file is removed).
        StoreError: the folder cannot be written, or its parent is a symbolic link.
    """
    path = Path(path)
    folder = path.parent
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if folder.is_symlink():
            raise StoreError(f"{folder} is a symbolic link; obliviate never writes through links "
                             f"in a folder it owns: remove that link.")
        tmp = _new_temporary(path)
        if callable(data):
            try:
                data(tmp)
            except OSError:
                raise
            except Exception as exc:  # e.g. safetensors' own error type around an OS error
                code = re.search(r"os error (\d+)", str(exc))
                if code is None:
                    raise
                raise OSError(int(code[1]), os.strerror(int(code[1]))) from None
        with open(tmp, "r+b") as fh:
            if not callable(data):
                fh.write(data)
                fh.flush()
            os.fsync(fh.fileno())  # a full disk may show only here
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, StoreError):
            raise
        raise disk_error(exc, folder, doing) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is a regular file (not a link) whose resolved path lies under ``root``."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def remove_inside(path: Path, root: Path) -> bool:
    """Delete ``path`` only if it is a regular file inside ``root``; whether it was deleted."""
    if not inside(path, root):
        return False
    Path(path).unlink(missing_ok=True)
    return True
