"""Loaders for users' own data: idx folders, CIFAR pickles, .npz, CSV and image folders.

Each loader reads one path and returns :class:`UserArrays` (numpy, unstandardised); a missing
or malformed file raises :class:`~obliviate.errors.DataError` naming the file and what was
expected. ``load_user_data("npz:/path/data.npz")`` picks the loader by the KIND before the colon.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from obliviate.data.sources import read_idx
from obliviate.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# The most classes a label array may name: a label is a class index, and a classifier has one
# output per class (ImageNet-21k has 21,841); 10**12 would try to build a 10^12-way layer.
MAX_CLASSES = 100_000


@dataclass
class UserArrays:
    """Training arrays, an optional test split, optional groups and the class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    groups: np.ndarray | None = None
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadOptions:
    """What some loaders need besides the path."""

    target: str = ""  # csv: the label column (default: the last column)
    group_column: str = ""  # csv: a column of group ids (users, people, authors)
    image_size: int = 0  # images: resize to this square side (0: keep the first image's size)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{path} does not exist; expected {what}.")
    return path


# ---------------------------------------------------------------------------- idx
def _idx_file(root: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (root / name).exists():
            return root / name
    return None


def load_idx(path: Path, opts: ReadOptions) -> UserArrays:
    """An MNIST-style folder: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], and
    optionally the t10k-* test pair. Pixels are scaled to [0, 1]."""
    _need(path, "a folder of MNIST-style idx files")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; expected a folder holding "
                        f"train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz].")
    parts = {}
    for part in ("train", "t10k"):
        images = _idx_file(path, f"{part}-images-idx3-ubyte")
        labels = _idx_file(path, f"{part}-labels-idx1-ubyte")
        if part == "train" and (images is None or labels is None):
            missing = "train-images-idx3-ubyte" if images is None else "train-labels-idx1-ubyte"
            raise DataError(f"{path / missing} does not exist (nor its .gz); expected the "
                            f"training images and labels of an MNIST-style idx folder.")
        if images is None or labels is None:
            continue
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{images} holds shape {x.shape} and {labels} shape {y.shape}; "
                            f"expected images (N, H, W) and N labels.")
        parts[part] = ((x[:, None] / 255.0).astype(np.float32), y.astype(np.int64))
    x_test, y_test = parts.get("t10k", (None, None))
    return UserArrays(*parts["train"], x_test, y_test)


# ---------------------------------------------------------------------------- cifar
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so a data file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(_need(path, "a CIFAR python-pickle batch"), "rb") as fh:
            data = _ArrayUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a CIFAR python-pickle batch ({exc}); expected a dict "
                        f"with 'data' (N x 3072 uint8) and 'labels' or 'fine_labels'.") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} holds a {type(data).__name__}; expected a CIFAR batch dict.")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in data.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    labels = batch.get("labels", batch.get("fine_labels"))
    data = batch.get("data")
    if data is None or labels is None:
        raise DataError(f"{path} has keys {sorted(batch)}; expected 'data' and 'labels' "
                        f"(CIFAR-10) or 'fine_labels' (CIFAR-100).")
    data, labels = np.asarray(data), np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(f"{path} holds data of shape {data.shape} and {len(labels)} labels; "
                        f"expected N x 3072 (3 x 32 x 32) values and N labels.")
    return (data.reshape(-1, 3, 32, 32) / 255.0).astype(np.float32), labels


def _cifar_names(path: Path) -> tuple[str, ...]:
    for meta, key in (("batches.meta", "label_names"), ("meta", "fine_label_names")):
        if (path / meta).exists():
            names = _unpickle(path / meta).get(key, [])
            return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return ()


def load_cifar(path: Path, opts: ReadOptions) -> UserArrays:
    """A CIFAR-10 folder (data_batch_1..5, test_batch) or CIFAR-100 folder (train, test) of
    python-pickle batches, as distributed in the 'python version' archives."""
    _need(path, "a CIFAR-10 or CIFAR-100 python folder")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; expected the extracted cifar-10-batches-py "
                        f"or cifar-100-python folder.")
    train_files = sorted(path.glob("data_batch_*")) or [p for p in [path / "train"] if p.exists()]
    if not train_files:
        raise DataError(f"{path} holds no data_batch_* (CIFAR-10) or train (CIFAR-100) file; "
                        f"expected the extracted python-pickle batches.")
    batches = [_cifar_batch(f) for f in train_files]
    test_file = next((p for p in (path / "test_batch", path / "test") if p.exists()), None)
    x_test, y_test = _cifar_batch(test_file) if test_file else (None, None)
    return UserArrays(np.concatenate([b[0] for b in batches]),
                      np.concatenate([b[1] for b in batches]), x_test, y_test,
                      class_names=_cifar_names(path))


# ---------------------------------------------------------------------------- npz
def load_npz(path: Path, opts: ReadOptions) -> UserArrays:
    """An .npz with arrays X and y (integer labels), optionally groups, X_test and y_test."""
    _need(path, "an .npz file with arrays X and y")
    expected = "expected an .npz archive with arrays X and y (np.savez(path, X=X, y=y))"
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):
            raise DataError(f"{path} holds a single .npy array, not an archive; {expected}.")
        with data:
            arrays = {k: data[k] for k in data.files}
    except DataError:
        raise
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise DataError(f"{path} holds object arrays, which are not read (unpickling could "
                            f"run code); save X and y as numeric arrays.") from None
        raise DataError(f"{path} is not an .npz archive; {expected}.") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz archive ({exc}); {expected}.") from None
    if "X" not in arrays or "y" not in arrays:
        raise DataError(f"{path} holds arrays {sorted(arrays)}; expected X (inputs) and y "
                        f"(integer labels), optionally groups, X_test and y_test.")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path} holds only one of X_test and y_test; give both or neither.")
    out = UserArrays(_inputs(arrays["X"], path, "X"), _labels(arrays["y"], path, "y"),
                     groups=arrays.get("groups"))
    if "X_test" in arrays:
        out.x_test = _inputs(arrays["X_test"], path, "X_test")
        out.y_test = _labels(arrays["y_test"], path, "y_test")
    return out


def _inputs(x: np.ndarray, path: Path, name: str) -> np.ndarray:
    """``x`` as float32, refusing text, complex and one-value-per-example arrays."""
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{path}: {name} holds complex numbers ({x.dtype}), which would lose "
                        f"their imaginary part; save real features, e.g. np.stack([{name}.real, "
                        f"{name}.imag], axis=1).")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{path}: {name} holds {x.dtype} values, not numbers; encode text as "
                        f"numbers first (or write a CSV: csv: one-hot encodes text columns).")
    if x.ndim < 2:
        raise DataError(f"{path}: {name} has shape {x.shape}; expected one row per example, "
                        f"(n, features) or images (n, channels, height, width): for a single "
                        f"feature use {name}[:, None].")
    return x.astype(np.float32)


def _labels(y: np.ndarray, path: Path, name: str) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {name} has dtype {y.dtype} and shape {y.shape}; expected one "
                        f"integer class label per example.")
    return y.astype(np.int64)


# ---------------------------------------------------------------------------- csv
def load_csv(path: Path, opts: ReadOptions) -> UserArrays:
    """A CSV with a header row: numeric columns are kept, text columns one-hot encoded; the
    ``target`` column (default: the last) holds the class, ``group_column`` optional groups."""
    import pandas as pd

    _need(path, "a CSV file with a header row and a target column")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV ({exc}); expected a header row and "
                        f"one example per line.".replace("\n", " ")) from None
    if len(frame.columns) and all(_is_number(c) for c in frame.columns):
        raise DataError(f"{path}: the first row ({', '.join(map(str, frame.columns[:4]))}, ...) "
                        f"looks like data, not a header; add a header row naming the columns, "
                        f"or it would be read as names and lost.")
    target = opts.target or (frame.columns[-1] if len(frame.columns) else "")
    for what, col in (("target", target), ("group", opts.group_column)):
        if col and col not in frame.columns:
            raise DataError(f"{path} has no {what} column '{col}'; its columns are "
                            f"{', '.join(map(str, frame.columns))}.")
    if len(frame.columns) < 2 or len(frame) < 2:
        raise DataError(f"{path} has {len(frame.columns)} column(s) and {len(frame)} row(s); "
                        f"expected at least one feature column, the target, and two rows.")
    _check_label_column(frame[target], path, target)
    classes, y = np.unique(frame[target].astype(str).to_numpy(), return_inverse=True)
    groups = None
    drop = [target]
    if opts.group_column:
        groups = pd.factorize(frame[opts.group_column])[0].astype(np.int64)
        drop.append(opts.group_column)
    features = pd.get_dummies(frame.drop(columns=drop), dummy_na=False).astype(np.float32)
    if features.isna().any().any():
        bad = features.columns[features.isna().any()][0]
        raise DataError(f"{path}: column '{bad}' has missing values; fill or drop them.")
    return UserArrays(features.to_numpy(), y.astype(np.int64), groups=groups,
                      class_names=tuple(classes))


def _check_label_column(column, path: Path, name: str) -> None:
    """Refuse a numeric target column holding fractions or gaps: it is not a class label."""
    if column.isna().any():
        raise DataError(f"{path}: the target column '{name}' has missing values; give every "
                        f"row a class.")
    if column.dtype.kind in "fc":
        values = column.to_numpy()
        odd = values[~np.isfinite(values) | (values != np.round(values))] \
            if column.dtype.kind == "f" else values[values.imag != 0]
        if len(odd):
            raise DataError(f"{path}: the target column '{name}' holds {odd[0].item()!r}, which "
                            f"is not a class; class labels must be integers or names (a regression "
                            f"target is not supported by the custom scenario).")


def _is_number(name: object) -> bool:
    try:
        float(str(name))
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- images
def load_images(path: Path, opts: ReadOptions) -> UserArrays:
    """A folder with one subfolder per class of image files (PNG, JPEG, ...), read with Pillow.
    All images take the first one's mode (grayscale or RGB) and size, or ``image_size``."""
    from PIL import Image, UnidentifiedImageError

    _need(path, "a folder with one subfolder of images per class")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    if len(classes) < 2:
        raise DataError(f"{path} has {len(classes)} class subfolder(s); expected one subfolder "
                        f"of images per class, at least two.")
    images, labels, mode, size = [], [], None, None
    for k, name in enumerate(classes):
        files = sorted(f for f in (path / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path / name} holds no image file; expected "
                            f"{', '.join(IMAGE_SUFFIXES)} files.")
        for f in files:
            try:
                with Image.open(f) as img:
                    img.load()
                    if mode is None:
                        mode = "L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                        size = (opts.image_size,) * 2 if opts.image_size else img.size
                    img = img.convert(mode)
                    if img.size != size and not opts.image_size:
                        raise DataError(f"{f} is {img.size[0]}x{img.size[1]} but the first "
                                        f"image is {size[0]}x{size[1]}; pass image_size=N to "
                                        f"resize all images to NxN.")
                    arr = np.asarray(img.resize(size) if img.size != size else img)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f} is not a readable image ({exc}).") from None
            images.append(arr.reshape(arr.shape[0], arr.shape[1], -1).transpose(2, 0, 1))
            labels.append(k)
    x = (np.stack(images) / 255.0).astype(np.float32)
    return UserArrays(x, np.asarray(labels, dtype=np.int64), class_names=tuple(classes))


LOADERS: dict[str, Callable[[Path, ReadOptions], UserArrays]] = {
    "idx": load_idx, "cifar": load_cifar, "npz": load_npz, "csv": load_csv, "images": load_images,
}
DATA_HELP = ("Write KIND:PATH with KIND one of idx (MNIST-style folder), cifar (CIFAR-10/100 "
             "python folder), npz (X, y, optional groups), csv (a header row and a target "
             "column) or images (one subfolder per class).")


def load_user_data(spec: str, opts: ReadOptions | None = None) -> UserArrays:
    """Read ``KIND:PATH`` with the loader for KIND and check the arrays agree with each other."""
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise DataError(f"Malformed data '{spec}'. {DATA_HELP}")
    if kind not in LOADERS:
        from obliviate.registry import did_you_mean

        raise DataError(f"Unknown data kind '{kind}' in '{spec}'. "
                        f"{did_you_mean(kind, list(LOADERS))}{DATA_HELP}")
    src = Path(path).expanduser()
    arrays = LOADERS[kind](src, opts or ReadOptions())
    _check(arrays, src)
    return arrays


def _check(a: UserArrays, path: Path) -> None:
    if len(a.x_train) != len(a.y_train):
        raise DataError(f"{path}: {len(a.x_train)} inputs but {len(a.y_train)} labels; expected "
                        f"one label per input.")
    if a.groups is not None and (a.groups.ndim != 1 or len(a.groups) != len(a.y_train)
                                 or not np.issubdtype(a.groups.dtype, np.integer)):
        raise DataError(f"{path}: groups has shape {a.groups.shape} and dtype {a.groups.dtype}; "
                        f"expected one integer group id per training example.")
    if a.x_test is not None and (a.x_test.shape[1:] != a.x_train.shape[1:]
                                 or len(a.x_test) != len(a.y_test)):
        raise DataError(f"{path}: test inputs of shape {a.x_test.shape} do not match the "
                        f"training inputs' {a.x_train.shape} (or their labels' count).")
    if len(a.y_train) == 0:
        raise DataError(f"{path}: the training set has no example (X has 0 rows); give at "
                        f"least one example per class.")
    if a.y_train.min() < 0 or len(np.unique(a.y_train)) < 2:
        raise DataError(f"{path}: labels must be class indices >= 0 covering at least two "
                        f"classes.")
    for name, y in (("labels", a.y_train), ("test labels", a.y_test)):
        if y is not None and len(y) and y.max() >= MAX_CLASSES:
            raise DataError(f"{path}: the {name} go up to {int(y.max())}, beyond the bound of "
                            f"{MAX_CLASSES} classes; a label is a class index (0..K-1): "
                            f"relabel with np.unique(y, return_inverse=True)[1].")
    for name, x in (("inputs", a.x_train), ("test inputs", a.x_test)):
        if x is not None and not np.isfinite(x).all():
            raise DataError(f"{path}: the {name} hold NaN or infinite values; clean them first.")
    if a.y_test is not None:
        check_test_labels(a.y_train, a.y_test, str(path))


def check_test_labels(y_train: np.ndarray, y_held: np.ndarray, where: str,
                      held: str = "test") -> None:
    """Refuse held-out labels that no training example has: no model can learn them."""
    unseen = np.setdiff1d(np.unique(y_held), np.unique(y_train))
    if len(unseen):
        raise DataError(f"{where}: {held} labels {unseen.tolist()[:5]} never occur in training; "
                        f"every class must have training examples (drop those rows or add "
                        f"training data).")
