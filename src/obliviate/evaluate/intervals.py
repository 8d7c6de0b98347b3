"""Confidence intervals for the bench's numbers: over seeds, and bootstraps within a seed.

Plain functions over arrays; nothing here trains or loads a model.

* Over seeds: ``seed_interval``, Student's t on the per-seed values (each seed trains its own
  original and references, so seeds are independent replicates of the whole protocol).
* Within one seed, for numbers made of many models and examples (the challenge's F, its ceiling,
  F/ceiling and score; U-LiRA's attack metrics; the quick protocol's loss MIA): a bootstrap.
  What is resampled, with replacement and independently of each other:

  - the challenge: the N unlearned runs, the N retrained models of population A (and B, for the
    ceiling) and the forget examples. Models, because F's noise comes mostly from having N
    models per side (the organisers' own critique); examples, so that the interval also speaks
    for another forget set of the same kind. Each model keeps its confidences on every example,
    so correlation across examples is kept. One set of draws per seed serves every row, so
    differences between rows are paired.
  - U-LiRA: the target models and the pool examples (the shadows' Gaussian fits are held fixed:
    the interval covers the evaluation sample, not the shadows').
  - the loss MIA: forget and test examples.

* Interval type: normal, centred on the estimate, with the bootstrap standard error:
  ``estimate +- z * sd(replicates)``, clipped to the metric's range. Why not percentiles: drawing
  N models with replacement repeats about a third of them, and the threshold attacks find a
  larger epsilon on fewer distinct models, so replicate F sits well below F (on Gaussian
  confidences with N = 64, 126 examples: replicates centre at 0.13-0.14 for F = 0.18, 4-5
  standard errors below) while their spread matches the spread of F over fresh models (0.0101
  against 0.0109). Percentile and bias-corrected intervals inherit that shift (the latter breaks
  down when every replicate is below the estimate); the centred interval does not, and its
  standard error needs far fewer replicates than percentile end points, which matters because a
  replicate of F costs as much as F itself. Coverage is checked in ``tests/test_intervals.py``.

Paired comparisons of rows are in :mod:`obliviate.evaluate.comparisons`, the collapse rule in
:mod:`obliviate.evaluate.collapse`.

References:
    Efron and Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall (1993), ch. 6 and 13
    (standard-error and normal intervals); Triantafillou et al., arXiv
    2406.09073 (2024), section 7 (N = 512 is "smaller-than-desired"; point estimates only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from obliviate.errors import ConfigError, DataError
from obliviate.evaluate.challenge import per_example_scores

LEVEL = 0.95
N_BOOT_FORGETTING = 50  # a replicate of F costs one F; 50 give its standard error to ~10%
N_BOOT_ATTACK = 200


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap estimate: the value on the data, its interval and the replicates.

    Attributes:
        estimate: The statistic on the original sample.
        lo, hi: The interval's ends (NaN when the replicates do not give a spread).
        se: Standard deviation of the replicates.
        replicates: The statistic on each resample, shape (n_boot,).
    """

    estimate: float
    lo: float
    hi: float
    se: float
    replicates: np.ndarray


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be in (0, 1), got {level}; use e.g. 0.95.")
    from scipy import stats  # here, not at the top: scipy.stats costs a second at CLI start

    return float(stats.norm.ppf(0.5 + level / 2))


def seed_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean over seeds and its Student-t interval.

    Args:
        values: One value per seed; NaN values are left out.
        level: Coverage of the interval.

    Returns:
        ``(mean, lo, hi)``; with one seed ``(value, nan, nan)`` (tables show the value alone),
        with none three NaNs.
    """
    _z(level)
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def normal_interval(estimate: float, replicates: np.ndarray, level: float = LEVEL,
                    bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float]:
    """``estimate +- z * sd(replicates)`` clipped to ``bounds``; NaNs when under 2 replicates."""
    z = _z(level)
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if reps.size < 2 or not math.isfinite(estimate):
        return math.nan, math.nan
    half = z * float(reps.std(ddof=1))
    return max(bounds[0], estimate - half), min(bounds[1], estimate + half)


def combine_seeds(estimates: Sequence[float], ses: Sequence[float], level: float = LEVEL,
                  bounds: tuple[float, float] = (-math.inf, math.inf)
                  ) -> tuple[float, float, float]:
    """Mean over seeds of bootstrap estimates and its interval, the seeds independent.

    The standard error of the mean is ``sqrt(sum se_s^2) / S``: the noise of each seed's N
    models and examples, given the seeds' original models.
    """
    est, se = np.asarray(estimates, np.float64), np.asarray(ses, np.float64)
    keep = np.isfinite(est) & np.isfinite(se)
    if not keep.any():
        return (float(np.nanmean(est)) if np.isfinite(est).any() else math.nan), math.nan, \
            math.nan
    mean = float(est[keep].mean())
    half = _z(level) * math.sqrt(float((se[keep] ** 2).sum())) / keep.sum()
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def _bootstrap(estimate: float, replicates: np.ndarray, level: float,
               bounds: tuple[float, float]) -> Bootstrap:
    reps = np.asarray(replicates, dtype=np.float64)
    finite = reps[np.isfinite(reps)]
    se = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    lo, hi = normal_interval(estimate, reps, level, bounds)
    return Bootstrap(float(estimate), lo, hi, se, reps)


# --------------------------------------------------------------------------- the challenge
@dataclass(frozen=True)
class ChallengeDraws:
    """Resampling indices shared by every row of one seed (so row differences are paired).

    Attributes:
        unlearned: (n_boot, N_u) indices into the unlearned runs (population B for the ceiling).
        retrained: (n_boot, N_r) indices into population A.
        examples: (n_boot, E) indices into the forget examples (each row ``arange(E)`` when
            examples are not resampled).
    """

    unlearned: np.ndarray
    retrained: np.ndarray
    examples: np.ndarray

    @property
    def n_boot(self) -> int:
        return int(self.examples.shape[0])


def challenge_draws(n_boot: int, n_unlearned: int, n_retrained: int, n_examples: int,
                    seed: int | np.random.Generator, *, resample_examples: bool = True
                    ) -> ChallengeDraws:
    """Draw ``n_boot`` resamples of the unlearned runs, population A and the forget examples."""
    if n_boot < 2:
        raise ConfigError(f"n_boot must be >= 2 for an interval, got {n_boot}; use e.g. 50.")
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_unlearned, (n_boot, n_unlearned))
    r = rng.integers(0, n_retrained, (n_boot, n_retrained))
    e = rng.integers(0, n_examples, (n_boot, n_examples)) if resample_examples else \
        np.broadcast_to(np.arange(n_examples), (n_boot, n_examples))
    return ChallengeDraws(u, r, e)


def forgetting_replicates(unlearned_conf: np.ndarray, retrained_conf: np.ndarray,
                          draws: ChallengeDraws, *, workers: int = 2) -> np.ndarray:
    """F on each resample: the challenge metric itself on resampled models and examples.

    Per replicate, the per-example bin scores are computed (``per_example_scores``: the
    metric's scores, skipping the double-threshold attack where the single one already scores
    0) from the resampled models, only for the examples the replicate drew (an example's epsilon
    does not depend on the others), and F is the mean bin score over the drawn examples.

    Args:
        unlearned_conf, retrained_conf: Confidences (models, examples), as for the metric.
        draws: From :func:`challenge_draws` with these models and examples.
        workers: Threads that share the replicates. Each replicate is computed alone and
            written to its own slot, so the result is the same for any number of threads; the
            metric's work is in large numpy operations that release the GIL.

    Returns:
        (n_boot,) float64.
    """
    u, r = np.asarray(unlearned_conf, np.float64), np.asarray(retrained_conf, np.float64)
    if draws.examples.shape[1] != u.shape[1] or draws.unlearned.shape[1] != u.shape[0] \
            or draws.retrained.shape[1] != r.shape[0]:
        raise DataError(f"the draws are for {draws.unlearned.shape[1]} and "
                        f"{draws.retrained.shape[1]} models and {draws.examples.shape[1]} "
                        f"examples, the confidences {u.shape} and {r.shape}; draw them anew.")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}.")
    out = np.empty(draws.n_boot)

    def replicate(b: int) -> None:
        used, where = np.unique(draws.examples[b], return_inverse=True)
        scores = per_example_scores(u[draws.unlearned[b]][:, used],
                                    r[draws.retrained[b]][:, used], u.shape[0])
        out[b] = scores[where].mean()

    if workers == 1 or draws.n_boot < 2:
        for b in range(draws.n_boot):
            replicate(b)
    else:
        with ThreadPoolExecutor(min(workers, draws.n_boot)) as pool:
            list(pool.map(replicate, range(draws.n_boot)))
    return out


def bootstrap_forgetting_quality(unlearned_conf: np.ndarray, retrained_conf: np.ndarray, *,
                                 n_boot: int = N_BOOT_FORGETTING,
                                 rng: int | np.random.Generator = 0, level: float = LEVEL,
                                 resample_examples: bool = True) -> Bootstrap:
    """F and its interval, resampling models on both sides and forget examples.

    Args:
        unlearned_conf, retrained_conf: Confidences (models, examples).
        n_boot: Replicates; each costs about one evaluation of F.
        rng: Seed or generator of the draws.
        level: Coverage of the interval.
        resample_examples: False keeps the forget set fixed (only the models' noise).

    Example:
        >>> b = bootstrap_forgetting_quality(u_conf, r_conf, n_boot=50, rng=0)
        >>> b.estimate, b.lo, b.hi
    """
    from obliviate.evaluate.challenge import forgetting_quality

    u, r = np.asarray(unlearned_conf, np.float64), np.asarray(retrained_conf, np.float64)
    estimate = forgetting_quality(u, r)
    draws = challenge_draws(n_boot, u.shape[0], r.shape[0], u.shape[1], rng,
                            resample_examples=resample_examples)
    return _bootstrap(estimate, forgetting_replicates(u, r, draws), level, (0.0, 1.0))


def ratio_bootstrap(numerator: Bootstrap, denominator: Bootstrap, level: float = LEVEL
                    ) -> Bootstrap:
    """``numerator / denominator`` with replicates paired by index (the same draws)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = numerator.replicates / denominator.replicates
        est = numerator.estimate / denominator.estimate if denominator.estimate else math.nan
    return _bootstrap(est, np.where(np.isfinite(reps), reps, np.nan), level, (0.0, math.inf))


def bootstrap_ceiling_ratio(unlearned_conf: np.ndarray, retrained_a: np.ndarray,
                            retrained_b: np.ndarray, *, n_boot: int = N_BOOT_FORGETTING,
                            rng: int | np.random.Generator = 0, level: float = LEVEL
                            ) -> dict[str, Bootstrap]:
    """F (unlearned vs A), the ceiling (B vs A) and F / ceiling, on shared draws.

    The ceiling's replicates draw B's models with the indices the unlearned side uses and A's
    and the examples with the same indices as F's, so the ratio's replicates are paired.

    Returns:
        ``{"F": ..., "F_ceiling": ..., "F_ratio": ...}``.
    """
    from obliviate.evaluate.challenge import forgetting_quality

    u, a, b = (np.asarray(x, np.float64) for x in (unlearned_conf, retrained_a, retrained_b))
    if b.shape[0] != u.shape[0]:
        raise DataError(f"population B has {b.shape[0]} models and the unlearned side "
                        f"{u.shape[0]}; the ceiling compares equal numbers.")
    draws = challenge_draws(n_boot, u.shape[0], a.shape[0], u.shape[1], rng)
    f = _bootstrap(forgetting_quality(u, a), forgetting_replicates(u, a, draws), level, (0, 1))
    c = _bootstrap(forgetting_quality(b, a), forgetting_replicates(b, a, draws), level, (0, 1))
    return {"F": f, "F_ceiling": c, "F_ratio": ratio_bootstrap(f, c, level)}


def score_replicates(f_replicates: np.ndarray, ra_u: np.ndarray, ra_r: np.ndarray,
                     ta_u: np.ndarray, ta_r: np.ndarray, draws: ChallengeDraws) -> np.ndarray:
    """The final score F x RA_U/RA_R x TA_U/TA_R on each resample (accuracies per model)."""
    ra_u, ra_r, ta_u, ta_r = (np.asarray(x, np.float64) for x in (ra_u, ra_r, ta_u, ta_r))
    ratio = (ra_u[draws.unlearned].mean(1) / ra_r[draws.retrained].mean(1)
             * ta_u[draws.unlearned].mean(1) / ta_r[draws.retrained].mean(1))
    return np.asarray(f_replicates, np.float64) * ratio


# --------------------------------------------------------------------------- attacks
def bootstrap_attack(scores: np.ndarray, is_member: np.ndarray,
                     metric_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, float]], *,
                     n_boot: int = N_BOOT_ATTACK, rng: int | np.random.Generator = 0,
                     level: float = LEVEL) -> dict[str, Bootstrap]:
    """Attack metrics and their intervals, resampling target models and pool examples.

    Args:
        scores: Attack scores, (targets, examples) or (examples,).
        is_member: Bool ground truth of the same shape.
        metric_fn: ``(scores, is_member) -> {name: value}``, e.g. accuracy, AUC, TPR at low FPR.
        n_boot, rng, level: As :func:`bootstrap_forgetting_quality`.

    Returns:
        One :class:`Bootstrap` per metric; a resample that ``metric_fn`` refuses with a
        DataError (e.g. one class only) counts as NaN and is left out of the spread. Rates are
        clipped to [0, 1].
    """
    s = np.atleast_2d(np.asarray(scores, np.float64))
    y = np.atleast_2d(np.asarray(is_member, bool))
    if s.shape != y.shape:
        raise DataError(f"scores {s.shape} and is_member {y.shape} differ; pass matching arrays.")
    if n_boot < 2:
        raise ConfigError(f"n_boot must be >= 2 for an interval, got {n_boot}; use e.g. 200.")
    estimate = dict(metric_fn(s, y))
    gen = np.random.default_rng(rng)
    reps = {k: np.full(n_boot, np.nan) for k in estimate}
    for b in range(n_boot):
        rows = gen.integers(0, s.shape[0], s.shape[0])
        cols = gen.integers(0, s.shape[1], s.shape[1])
        try:
            values = metric_fn(s[np.ix_(rows, cols)], y[np.ix_(rows, cols)])
        except DataError:
            continue
        for k in reps:
            reps[k][b] = values[k]
    return {k: _bootstrap(estimate[k], reps[k], level, (0.0, 1.0)) for k in estimate}


def loss_mia_replicates(member_losses: np.ndarray, nonmember_losses: np.ndarray, *,
                        n_boot: int = N_BOOT_ATTACK, rng: int | np.random.Generator = 0,
                        mia_seed: int = 0, chunk: int = 20) -> np.ndarray:
    """``simple_mia`` on resampled forget and test losses, the replicates fitted together.

    Each replicate draws the members and the non-members with replacement, then runs the quick
    protocol's attack as ``simple_mia`` defines it (balancing subsamples drawn from
    ``mia_seed``, 10 repeats, ``StratifiedShuffleSplit(10, random_state=0)``, the loss
    standardised on each training fold, ``LogisticRegression()``). The one-feature logistic
    regressions of ``chunk`` replicates are solved at once by Newton's method to 1e-10 (the same
    objective: C = 1, unpenalised intercept) instead of one lbfgs call each, 30x faster;
    lbfgs stops at its tol 1e-4, so the two agree to within about 0.005 accuracy (a test
    checks it).
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    from obliviate.evaluate.mia import LOSS_CAP

    def clean(x):
        return np.nan_to_num(np.asarray(x, np.float64).ravel(), nan=LOSS_CAP,
                             posinf=LOSS_CAP).clip(0, LOSS_CAP)

    members, nonmembers = clean(member_losses), clean(nonmember_losses)
    n = min(members.size, nonmembers.size)
    if n < 5:
        raise DataError(f"The loss MIA needs at least 5 members and 5 non-members; got "
                        f"{members.size} and {nonmembers.size}. Use a larger forget set.")
    y = np.concatenate([np.ones(n), np.zeros(n)])
    splits = list(StratifiedShuffleSplit(n_splits=10, random_state=0).split(y[:, None], y))
    train, test = np.stack([t for t, _ in splits]), np.stack([t for _, t in splits])
    gen = np.random.default_rng(rng)
    out = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        xs = []
        for _ in range(min(chunk, n_boot - lo)):
            m = members[gen.integers(0, members.size, members.size)]
            nm = nonmembers[gen.integers(0, nonmembers.size, nonmembers.size)]
            sub = np.random.default_rng(mia_seed)  # simple_mia's own draws, as on the data
            xs.append([np.concatenate([sub.choice(m, n, replace=False) if m.size > n else m,
                                       sub.choice(nm, n, replace=False) if nm.size > n else nm])
                       for _ in range(10)])
        x = np.asarray(xs)  # (replicates, repeats, 2n)
        out[lo:lo + len(xs)] = _cv_accuracy(x, y, train, test)
    return out


def _cv_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
                 ) -> np.ndarray:
    """Mean test accuracy over repeats and splits of a standardised 1-D logistic regression."""
    xtr = x[..., train]  # (replicates, repeats, splits, n_train)
    mean, std = xtr.mean(-1, keepdims=True), xtr.std(-1, keepdims=True)
    std = np.where(std == 0, 1.0, std)  # StandardScaler leaves a constant feature unscaled
    xtr = (xtr - mean) / std
    w, c = _logistic_newton(xtr, np.broadcast_to(y[train], xtr.shape))
    pred = (w[..., None] * ((x[..., test] - mean) / std) + c[..., None]) > 0
    return (pred == (y[test] == 1)).mean(-1).mean((-1, -2))


def _logistic_newton(x: np.ndarray, y: np.ndarray, tol: float = 1e-10
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Minimise 0.5 w^2 + sum log(1 + exp(-s (w x + c))), s = +-1, over the last axis."""
    s = 2 * y - 1
    w, c = np.zeros(x.shape[:-1]), np.zeros(x.shape[:-1])
    for _ in range(100):
        p = 1 / (1 + np.exp(np.clip(s * (w[..., None] * x + c[..., None]), -500, 500)))
        g = -s * p  # d loss / d margin per point
        gw, gc = (g * x).sum(-1) + w, g.sum(-1)
        h = p * (1 - p)
        hww, hwc, hcc = (h * x * x).sum(-1) + 1, (h * x).sum(-1), h.sum(-1)
        det = hww * hcc - hwc ** 2
        dw, dc = (hcc * gw - hwc * gc) / det, (hww * gc - hwc * gw) / det
        w, c = w - dw, c - dc
        if max(np.abs(dw).max(), np.abs(dc).max()) < tol:
            break
    return w, c
