"""Where a result came from: package and library versions, commit, protocol versions, machine.

Every bench run directory's ``config.json`` records :func:`versions` and :func:`machine`; every
JSON under ``benchmarks/results/`` is written by :func:`write_results`, which adds the whole
:func:`provenance` record, so a number can always be traced to the code, protocol and machine
that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from obliviate.bench.store import atomic_write_text


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    """The commit of the source tree obliviate runs from, when it is a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files of that checkout differ from the commit (None: not a checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def versions() -> dict[str, str]:
    import numpy
    import sklearn

    from obliviate.version import __version__

    return {"obliviate": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version(),
            "git_commit": git_commit() or "unknown"}


def machine() -> dict[str, Any]:
    # the load when this was written (a run's config.json: at its end), beside every wall time
    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def protocol_versions(protocols: Iterable[str]) -> dict[str, str]:
    """``{name: versioned name}`` of registered protocols (``quick`` -> ``quick/1``)."""
    from obliviate.bench.spec import PROTOCOLS

    return {name: PROTOCOLS.get(name).version for name in protocols}


def provenance(protocols: Iterable[str] = (), benchmark: str | None = None) -> dict[str, Any]:
    """The record a benchmark result carries.

    Args:
        protocols: the registered protocols the result was measured with.
        benchmark: the versioned name of the script's own measurement (``baselines/1``); a
            change to what the script measures bumps it, so that an old JSON and a new one
            with the same name compare like with like.
    """
    v = versions()
    return {
        "obliviate": v["obliviate"],
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "benchmark": benchmark,
        "protocol_versions": protocol_versions(protocols),
        "machine": machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": v,
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(path: Path | str, payload: dict[str, Any], protocols: Iterable[str] = (),
                  benchmark: str | None = None) -> Path:
    """Write ``payload`` with its ``provenance`` as JSON to ``path``, atomically.

    A kill while writing leaves the previous file whole. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**payload, "provenance": provenance(protocols, benchmark)}
    atomic_write_text(path, json.dumps(doc, indent=2, default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, paths and tuples as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
