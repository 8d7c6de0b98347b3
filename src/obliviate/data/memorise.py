"""``fashion-mem``: a scenario where the original model memorises its training set.

On ``digits`` the original is barely attackable (U-LiRA 0.56 against 0.52 for retrained
models), so methods sit within noise of each other and nothing visible is forgotten. Here a
small Fashion-MNIST training subset (default 2,000 images) and a model trained far past 100%
train accuracy make membership plain: the forget examples' losses under the original and under
a retrained model differ at a glance, and U-LiRA tells members from non-members (numbers in
``benchmarks/results/winners_fashion-mem.json``). Images can be average-pooled to 14x14, which
makes every model about four times cheaper; the CPU default keeps 28x28 with the MLP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from obliviate.config import param
from obliviate.data import sources
from obliviate.data.catalog import SCENARIOS, ScenarioSpec, _standardise
from obliviate.data.scenario import Splits
from obliviate.train import Recipe


@dataclass(frozen=True)
class FashionMemOptions:
    model: str = param("mlp", choices=("mlp", "cnn"), help="model architecture")
    train_size: int = param(2000, ge=100, le=60000, help="training images drawn from the 60k")
    resolution: int = param(28, choices=(28, 14), help="image side (14: 2x2 average pooling)")
    split_seed: int = param(42, ge=0, help="seed of the fixed subset and val/test split")


def _pool(images: np.ndarray, resolution: int) -> np.ndarray:
    if resolution == images.shape[-1]:
        return images
    n, c, h, w = images.shape
    f = h // resolution
    return images.reshape(n, c, resolution, f, resolution, f).mean(axis=(3, 5))


def _build_fashion_mem(opts: FashionMemOptions) -> Splits:
    x_tr, y_tr, x_te, y_te = sources.load_fashion_arrays()
    rng = np.random.default_rng(opts.split_seed)
    sub = np.sort(rng.permutation(len(y_tr))[: opts.train_size])
    held = rng.permutation(len(y_te))
    te, va = held[:2000], held[2000:3000]  # enough for accuracy to +-1 point, cheap to score
    xs = _standardise(*(_pool(a, opts.resolution) for a in (x_tr[sub], x_te[va], x_te[te])))
    ys = [torch.from_numpy(a) for a in (y_tr[sub], y_te[va], y_te[te])]
    return Splits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], 10, sources.FASHION_CLASSES)


SCENARIOS.add("fashion-mem", ScenarioSpec(
    name="fashion-mem",
    description="Fashion-MNIST 28x28, 2,000 train / 1,000 val / 2,000 test; the original "
                "memorises its training set (loss MIA and U-LiRA well above retrained)",
    source="Debian dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)",
    options=FashionMemOptions,
    build=_build_fashion_mem,
    recipes={
        "mlp": Recipe(optimizer="sgd", lr=0.05, epochs=30, batch_size=64),
        "cnn": Recipe(optimizer="sgd", lr=0.05, epochs=30, batch_size=64),
    },
    # The NeurIPS 2023 winners and redraw: the best point of each grid in benchmarks/winners.py
    # by obliviate.tune (challenge score on held-out seeds 1-2, N=16, validation split, 20%
    # cut-off in CPU time, both sides timed warm; benchmarks/results/winners_tune_fashion-mem.json:
    # re-run in December 2026 with that timing, it moved the 4th and 6th prizes to 2 epochs, their
    # longer settings over the cut-off on seed 2). The write-ups'
    # learning rates were for fine-tuning a ResNet-18 trained by Adam at 1e-4; this MLP is
    # trained by SGD at 0.05, and 8 contrastive rounds exceed the cut-off. The other methods
    # keep their authors' defaults here (untuned).
    method_defaults={"winner-contrastive": {"epochs": 3, "uniform_lr": 0.025,
                                            "forget_lr": 0.0015, "retain_lr": 0.02},
                     "winner-grad-reinit": {"epochs": 3, "lr": 0.05},
                     "winner-conv-noise": {"lr": 0.035, "std": 0.2},
                     "winner-prune-reinit": {"lr": 0.05, "epochs": 2.0},
                     "redraw": {"epochs": 5},
                     # the 5th-7th prizes and DeepUnlearn's MSG, tuned the same way
                     "winner-conv-transpose": {"epochs": 2, "lr": 0.05},
                     "winner-reset-distill-val": {"retain_epochs": 2, "warmup_lr": 0.045,
                                                  "lr": 0.05},
                     "winner-random-noise-layers": {"epochs": 5, "lr": 0.02, "fine_lr": 0.02,
                                                    "last_fine_lr": 0.1},
                     "msg": {"epochs": 3, "lr": 0.05}},
    forgets="random, class, classes, ids, mislabeled, poisoned, subclass",
    superclasses={"tops": ("t-shirt", "pullover", "coat", "shirt"), "bottoms": ("trouser", "dress"),
                  "shoes": ("sandal", "sneaker", "ankle-boot"), "bags": ("bag",)},
))
