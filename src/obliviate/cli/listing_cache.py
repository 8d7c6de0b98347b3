"""The rows of ``obliviate scenarios`` and ``obliviate methods``, kept on disk between calls.

Listing the registries means importing every built-in method and scenario, and so torch:
seconds of CPU for a table that changes only when the package does. The rows are computed
once and kept in ``$OBLIVIATE_CACHE_DIR`` (default ``$XDG_CACHE_HOME/obliviate``, else
``~/.cache/obliviate``) under a key made of the package's version and the path, size and
modification time of each of its source files, so that any edit or upgrade computes them
again. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import obliviate

PACKAGE = Path(obliviate.__file__).resolve().parent


def cache_dir() -> Path:
    if os.environ.get("OBLIVIATE_CACHE_DIR"):
        return Path(os.environ["OBLIVIATE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "obliviate"


def package_key() -> str:
    """A hash of the package's version and of every source file's path, size and mtime."""
    digest = hashlib.sha256(obliviate.__version__.encode())
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            stat = os.stat(os.path.join(root, name))
            digest.update(f"{root}/{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def cached_rows(kind: str, compute: Callable[[], list[list[str]]]) -> list[list[str]]:
    """``compute()``'s rows, from the cache when this version of the package computed them."""
    path = cache_dir() / f"{kind}-{package_key()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    rows = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         suffix=".tmp") as tmp:
            json.dump(rows, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass
    return rows
