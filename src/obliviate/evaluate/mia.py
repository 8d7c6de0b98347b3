"""The NeurIPS 2023 starting kit's membership-inference attack on per-example losses."""

from __future__ import annotations

import numpy as np

from obliviate.errors import DataError

LOSS_CAP = 1e4

MIN_MEMBERS = 5  # members and non-members the loss MIA needs at least (10 folds of 2n)


def simple_mia(member_losses: np.ndarray, nonmember_losses: np.ndarray, *, seed: int = 0,
               n_splits: int = 10, repeats: int = 10, standardize: bool = True) -> float:
    """Attack accuracy of a logistic regression telling members from non-members by loss.

    The starting kit's attack: members are forget examples, non-members test examples; the larger
    group is subsampled to the size of the smaller (the kit subsamples forget to the test size,
    unseeded; here the subsample is drawn from ``seed``), then the mean accuracy of a default
    ``LogisticRegression`` over ``StratifiedShuffleSplit(n_splits=10, random_state=0)``.
    0.5 means the attack cannot tell them apart.

    One deliberate difference: the loss is standardised before the regression
    (``standardize=True``). The kit's regression is unscaled, and its L2 penalty is not scale
    invariant: with losses of order 1e-4, as on well-fit small data sets like digits, it pins the
    coefficient near zero and the attack reads about 0.5 for every model, original included.
    ``standardize=False`` gives the kit's exact pipeline.

    The balancing subsample is drawn ``repeats`` times and the accuracies averaged: on small
    forget sets one subsample of the larger group moves the result by several points, which hides
    the original model's leak; ``repeats=1`` is the kit's single draw.

    References:
        unlearning-challenge/starting-kit, unlearning-CIFAR10.ipynb (2023).
    """
    # a broken model can give infinite losses; cap them so the attack still runs
    members = np.nan_to_num(np.asarray(member_losses, dtype=np.float64).ravel(),
                            nan=LOSS_CAP, posinf=LOSS_CAP).clip(0, LOSS_CAP)
    nonmembers = np.nan_to_num(np.asarray(nonmember_losses, dtype=np.float64).ravel(),
                               nan=LOSS_CAP, posinf=LOSS_CAP).clip(0, LOSS_CAP)
    n = min(len(members), len(nonmembers))
    if n < MIN_MEMBERS:
        raise DataError(
            f"The loss MIA needs at least 5 members and 5 non-members; got {len(members)} and "
            f"{len(nonmembers)}. Use a larger forget set."
        )
    # here, not at the top: sklearn costs most of a second at CLI start
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    cv = StratifiedShuffleSplit(n_splits=n_splits, random_state=0)
    clf = make_pipeline(StandardScaler(), LogisticRegression()) if standardize \
        else LogisticRegression()
    scores = []
    for _ in range(repeats):
        m = rng.choice(members, n, replace=False) if len(members) > n else members
        nm = rng.choice(nonmembers, n, replace=False) if len(nonmembers) > n else nonmembers
        x = np.concatenate([m, nm])[:, None]
        scores.append(cross_val_score(clf, x, y, cv=cv, scoring="accuracy").mean())
    return float(np.mean(scores))
