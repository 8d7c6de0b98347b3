"""A memory budget for per-example gradient work, and the chunk sizes it allows.

Per-example gradients (``vmap`` over a batch) hold one gradient per example: on an 11M-weight
ResNet-18 that is 45 MB each, and Fisher forgetting's per-class Jacobian ten times that; a
user's retain batch of 128 would ask for tens of gigabytes. Methods therefore split each
batch into chunks whose estimated peak fits a budget: by default :data:`DEFAULT_SHARE` of the
memory this process can still use (``MemAvailable`` in ``/proc/meminfo``, and the headroom
under an address-space limit ``RLIMIT_AS`` when one is set), or ``memory_mb`` from the method's
config. Chunking changes only the order of a sum, so results equal the unchunked ones up to
float rounding.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator

import torch
from torch import nn

from obliviate.batches import batch_size_of, forward, take

logger = logging.getLogger("obliviate.methods")
DEFAULT_SHARE = 0.5  # of the memory still available
UNKNOWN = 4 * 2**30  # assumed available where /proc cannot be read
MIB = 2**20


def _proc_kib(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes() -> int:
    """Memory this process can still allocate: MemAvailable, capped by the headroom under an
    address-space limit (RLIMIT_AS minus the current VmSize) where one is set."""
    avail = _proc_kib("/proc/meminfo", "MemAvailable")
    out = avail * 1024 if avail is not None else UNKNOWN
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    size = _proc_kib("/proc/self/status", "VmSize")
    if soft != resource.RLIM_INFINITY and size is not None:
        out = min(out, max(soft - size * 1024, 0))
    return out


def budget_bytes(memory_mb: float = 0.0) -> int:
    """``memory_mb`` MiB, or (0) :data:`DEFAULT_SHARE` of :func:`available_bytes`."""
    if memory_mb > 0:
        return int(memory_mb * MIB)
    return int(DEFAULT_SHARE * available_bytes())


def activation_bytes(model: nn.Module, one_example) -> int:
    """Bytes of every leaf module's output on one example: what a backward pass keeps."""
    total = 0

    def hook(_module, _inputs, out) -> None:
        nonlocal total
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            forward(model, one_example)
    finally:
        for h in handles:
            h.remove()
    return total


def gradient_bytes(params: dict[str, torch.Tensor], activations: int) -> int:
    """Estimated peak of one per-example gradient: the gradient, its flattened copy and the
    product taken of it (3 x the weights), plus the activations and their gradients."""
    n = sum(p.numel() for p in params.values())
    item = next(iter(params.values())).element_size() if params else 4
    return 3 * n * item + 2 * activations


def chunk_size(per_row: int, budget: int) -> int:
    """Rows whose estimated peak fits ``budget`` (0 when one row does not)."""
    return int(budget // max(per_row, 1))


def chunks(x, y, size: int) -> Iterator[tuple]:
    """``(x, y)`` rows in chunks of at most ``size`` (``y`` may be None)."""
    n = batch_size_of(x)
    size = max(int(size), 1)
    for start in range(0, n, size):
        rows = slice(start, min(start + size, n))
        yield take(x, rows), (y[rows] if y is not None else None)


def announce(owner: str, what: str, cost: str) -> None:
    """A fallback, at WARNING, with what it costs."""
    logger.warning("%s: %s; %s", owner, what, cost)
