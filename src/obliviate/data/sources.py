"""Offline data sources: each returns plain numpy arrays, never touches the network."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from obliviate.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits: images (1797, 1, 8, 8) in [0, 1], labels (1797,)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).reshape(-1, 1, 8, 8).astype(np.float32), y.astype(np.int64)


def read_idx(path: Path) -> np.ndarray:
    """Read an MNIST-style idx file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"Missing idx file {path}.") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"Cannot read idx file {path}: {exc}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(
            f"{path} is not an unsigned-byte idx file (expected the magic bytes 00 00 08 NDIM)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise DataError(f"{path} is truncated: its header declares shape {shape}.")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_fashion_arrays(
    root: Path = FASHION_DIR,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package.

    Returns train images (60000, 1, 28, 28) in [0, 1], train labels, test images, test labels.
    """
    if not root.is_dir():
        raise DataError(
            f"Fashion-MNIST was not found in {root}. Install it with "
            f"'apt-get install dataset-fashion-mnist' (or run 'make install')."
        )
    arrays = []
    for part in ("train", "t10k"):
        images = read_idx(root / f"{part}-images-idx3-ubyte.gz")
        labels = read_idx(root / f"{part}-labels-idx1-ubyte.gz")
        arrays += [(images[:, None] / 255.0).astype(np.float32), labels.astype(np.int64)]
    return tuple(arrays)  # type: ignore[return-value]
