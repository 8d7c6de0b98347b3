"""Forgetting quality of the NeurIPS 2023 Machine Unlearning Challenge, as its official code scores.

Logit-scaled confidences of each forget example under N unlearned and N retrained models -> one
epsilon per example from the best threshold attack -> a bin score H per example -> F = mean H ->
final score F * RA ratio * TA ratio. A numpy reimplementation of ``metric.py`` and the scoring of
``main.py`` (google-deepmind/unlearning_evaluation, ffae0ff) that counts with ``np.searchsorted``
on each side sorted once instead of tiling GPU tensors. For the double-threshold family it finds
the maximum without scoring all ~160,000 threshold pairs: per right threshold, only the pair that
ends each run of left thresholds with the same inner count can hold it, because epsilon never
rises with the false-positive count (checked on every epsilon table; where it does not hold, or
numpy's grid cannot be reproduced, every pair is scored). The same thresholds, counts and float32
epsilons, so the result is bit-identical (tests/test_challenge_fast_path.py), 2-10x faster.

Details of the code that the team's summary (shared reference, challenge-protocol.md §2.3-2.6)
leaves out or states differently; this module follows the code:

1. Confidence: the max logit is subtracted and the exponential taken in the logits' own dtype
   (float32 for a network's output); only the probabilities are float64. With float32 logits a
   wrong-class gap beyond about 104 underflows to 0 and phi saturates at -log(1e-45) = 103.6.
2. Positive side: the retrained models are positive only if their median is strictly larger;
   ties make the unlearned side positive. In the interval family, equal ranges make the side that
   was negative the "peakier" one.
3. Peaky rule: it compares min/max of the two ranges; when both ranges are 0 that is 0/0 = NaN,
   so the rule does not fire and the attack families run.
4. Single-threshold grid: ``torch.linspace`` with the default float32 dtype, so the thresholds are
   float32 values (computed torch-style from both ends, with a fused multiply-add), compared
   against float64 confidences. If the union range is under 0.01 the grid has 0 or 1 points.
5. Rates are float32: torch's CUDA mean of 0/1 floats, i.e. count * (float32(T) / float32(N*T))
   for T thresholds. The per-threshold epsilon is then evaluated in float32 numpy, so each epsilon
   is a float32 value. (On CPU torch divides by N instead, which can move an epsilon by an ulp.)
6. A threshold is also discarded when both log terms are NaN (FPR = FNR = 1, possible for an
   interval); a term is NaN when 1 - delta - rate < 0.
7. Bins use the number of unlearned models, ``ceil(log(N - 1))`` with the natural log, so N = 2
   has no bins and scores 0.

Where the official code cannot be followed, this module departs from it:

a. ``assert thr_eps`` tests a numpy array, which raises ValueError whenever more than one threshold
   survives (the released code only runs under ``python -O``), and if none survives (e.g. both
   sides one and the same constant) the code stops too. Here such an example gets epsilon 0: no
   rule in the family tells the sides apart.
b. ``np.where`` on the (examples,) mask needs both sides to have the same number of models; here
   each side's rates use its own count, and the bins use the unlearned count as in the code.

Checked against a CPU transcription of ``metric.py`` under torch 2.13: identical per-example
epsilons and F for N = 8 to 512 when N is a power of two. The grid of item 4 follows torch >= 2.0
(the repository now pins 2.2.0); commit ffae0ff pinned 1.12.1, whose vectorised linspace can
round some float32 grid points one ulp differently.

References:
    Triantafillou et al., "Are we making progress in unlearning? Findings from the first NeurIPS
    unlearning competition", arXiv 2406.09073 (2024); github.com/google-deepmind/
    unlearning_evaluation, metric.py and main.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from obliviate.errors import ConfigError, DataError

DELTA = 1e-5
EPSILON_CAP = 50
NUM_THRESHOLDS_PER_UNIT = 100
# 2: the N runs are warmed up once per process, then timed once each; 3: the cut-off's retrain
# time is the retrain method through the runs' call, timed as they are (warm-up, mean of 3)
# 4: the N runs of a method with a population capability (finetune) train as populations;
# the cut-off reads one single run of it timed as the reference is, not the population / N
# 5: each method's row is judged by the mean of a retrain time timed right before and one right
# after its runs (time_retrain_s); the reference goes through the runs' very call (guard off: no
# probe passes the runs do not make)
PROTOCOL = "challenge/5"

_PEAKY_RATIO = 0.01
_BUFFER = 2.0
_BIN_WIDTH = 0.5
_TINY = 1e-45


@dataclass(frozen=True)
class ChallengeResult:
    """Forgetting quality and its per-example parts.

    Attributes:
        forgetting_quality: F, the mean of ``example_scores``.
        epsilons: Per-example epsilon in [0, EPSILON_CAP], shape (examples,).
        example_scores: Per-example bin score H, shape (examples,).
        n_models: Number of unlearned models, which sets the bins.
        protocol: Version tag of this metric.
    """

    forgetting_quality: float
    epsilons: np.ndarray
    example_scores: np.ndarray
    n_models: int
    protocol: str = PROTOCOL


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence log(p_y + 1e-45) - log(sum of the other p + 1e-45).

    Args:
        logits: Shape (..., n, classes). Integer input is taken as float64; a float dtype is kept
            for the exponential, as in the official code.
        labels: Integer class of each example, shape (..., n).

    Returns:
        float64 array of shape (..., n); always finite (within about +-103.6).

    Raises:
        DataError: If the shapes disagree, a label is out of range or a logit is not finite.
    """
    x = np.asarray(logits)
    y = np.asarray(labels)
    if x.ndim < 2 or y.shape != x.shape[:-1]:
        raise DataError(f"logits of shape {x.shape} and labels of shape {y.shape} do not match; "
                        "pass logits (..., n, classes) and labels (..., n).")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= x.shape[-1]):
        raise DataError(f"labels must be integers in [0, {x.shape[-1]}); convert or fix them.")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError("logits contain NaN or infinite values; check the model's outputs.")
    probs = np.ascontiguousarray(np.exp(x - x.max(axis=-1, keepdims=True)), dtype=np.float64)
    probs /= probs.sum(axis=-1, keepdims=True)
    idx = y[..., None].astype(np.intp)
    p_true = np.take_along_axis(probs, idx, axis=-1)[..., 0]
    np.put_along_axis(probs, idx, 0.0, axis=-1)
    return np.log(p_true + _TINY) - np.log(probs.sum(axis=-1) + _TINY)


def _check_confidences(unlearned_conf: np.ndarray,
                       retrained_conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, conf in (("unlearned_conf", unlearned_conf), ("retrained_conf", retrained_conf)):
        a = np.asarray(conf, dtype=np.float64)
        if a.ndim != 2:
            raise DataError(f"{name} has shape {a.shape} but must be 2-D (models, examples); "
                            "stack one row of confidences per model.")
        if a.shape[0] < 2:
            raise DataError(f"{name} holds {a.shape[0]} model(s); the metric needs at least 2 "
                            "per side, so evaluate more runs.")
        if a.shape[1] < 1:
            raise DataError(f"{name} holds no examples; pass at least one forget example.")
        if not np.all(np.isfinite(a)):
            raise DataError(f"{name} contains NaN or infinite confidences; recompute them with "
                            "logit_scaled_confidence, which is always finite.")
        out.append(a)
    if out[0].shape[1] != out[1].shape[1]:
        raise DataError(f"unlearned_conf has {out[0].shape[1]} examples but retrained_conf has "
                        f"{out[1].shape[1]}; score the same forget examples in the same order.")
    return out[0], out[1]


def _cuda_mean_factor(n_models: int, n_thresholds: int) -> float:
    """The float32 factor torch's CUDA mean multiplies a sum by: float(T) / float(N * T)."""
    return float(np.float32(n_thresholds) / np.float32(n_models * n_thresholds))


@functools.lru_cache(maxsize=64)
def _epsilon_table(n_pos: int, f_pos: float, n_neg: int, f_neg: float, delta: float) -> np.ndarray:
    """Epsilon for FNR = i * f_pos and FPR = j * f_neg at [i, j]; NaN marks a discarded threshold."""
    with np.errstate(divide="ignore", invalid="ignore"):
        fnr = (np.arange(n_pos + 1, dtype=np.float32) * np.float32(f_pos))[:, None]
        fpr = (np.arange(n_neg + 1, dtype=np.float32) * np.float32(f_neg))[None]
        keep = np.float32(1 - delta)
        eps = np.fmax(np.log(keep - fpr) - np.log(fnr), np.log(keep - fnr) - np.log(fpr))
        eps = np.clip(eps, np.float32(0), None)
    eps[0, :], eps[:, 0] = np.nan, np.nan
    eps[0, 0] = np.inf
    eps.setflags(write=False)
    return eps


def _threshold_epsilons(fn: np.ndarray, n_pos: int, fp: np.ndarray, n_neg: int,
                        delta: float) -> np.ndarray:
    """Per-threshold epsilon from false-negative and false-positive counts."""
    if fn.size == 0:
        return np.zeros(0, dtype=np.float32)
    return _epsilon_table(n_pos, _cuda_mean_factor(n_pos, fn.size), n_neg,
                          _cuda_mean_factor(n_neg, fn.size), delta)[fn, fp]


def _float32_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32, as torch's CPU kernel computes it."""
    s, e = np.float32(start), np.float32(end)
    if steps <= 1:
        return np.full(steps, s, dtype=np.float32)
    step = np.float32(e - s) / np.float32(steps - 1)
    i = np.arange(steps)
    lower = i < steps // 2
    base = np.where(lower, s, e).astype(np.float64)
    offset = np.where(lower, i, -(steps - 1 - i)) * np.float64(step)  # exact in float64
    exact = base + offset
    # One rounding to float32, as a fused multiply-add gives: round the float64 sum to odd first.
    err = (base - (exact - (exact - base))) + (offset - (exact - base))
    bits = exact.view(np.uint64)
    fix = (err != 0) & (bits & 1 == 0)
    exact[fix] = np.nextafter(exact[fix], np.where(err[fix] > 0, np.inf, -np.inf))
    return exact.astype(np.float32)


def _single_threshold_epsilons(pos: np.ndarray, neg: np.ndarray, delta: float) -> np.ndarray:
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    thresholds = _float32_linspace(lo, hi, int(np.ceil((hi - lo) * NUM_THRESHOLDS_PER_UNIT)))
    thresholds = thresholds.astype(np.float64)
    fn = np.searchsorted(pos, thresholds, side="left")  # positives below t
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")  # negatives at or above t
    return _threshold_epsilons(fn, pos.size, fp, neg.size, delta)


def _interval_epsilons(pos: np.ndarray, neg: np.ndarray, pos_range: float, neg_range: float,
                       delta: float) -> np.ndarray:
    width = neg_range if pos_range > neg_range else pos_range
    inner, outer = (neg, pos) if pos_range >= neg_range else (pos, neg)
    lo, hi = inner[0] + width - _BUFFER, inner[-1] + _BUFFER
    right = np.linspace(lo, hi, int(np.ceil((hi - lo) * NUM_THRESHOLDS_PER_UNIT)))
    n_left = int(np.ceil(2 * _BUFFER * NUM_THRESHOLDS_PER_UNIT))
    left = np.linspace(right - width - _BUFFER, right - width + _BUFFER, n_left, axis=-1)

    def inside(side: np.ndarray) -> np.ndarray:  # members with left <= x <= right
        upto = np.searchsorted(side, right, side="right")[:, None]
        return np.maximum(upto - np.searchsorted(side, left, side="left"), 0).ravel()

    fn, fp = inner.size - inside(inner), inside(outer)
    return _threshold_epsilons(fn, inner.size, fp, outer.size, delta)


@functools.lru_cache(maxsize=64)
def _is_monotone(n_pos: int, f_pos: float, n_neg: int, f_neg: float, delta: float) -> bool:
    """Whether the kept cells (both counts >= 1) never rise as the false-positive count grows."""
    eps = _epsilon_table(n_pos, f_pos, n_neg, f_neg, delta)[1:, 1:]
    eps = np.where(np.isnan(eps), -np.inf, eps)  # a discarded cell never wins the max
    return bool(np.all(eps[:, 1:] <= eps[:, :-1]))


class _LeftGrid:
    """Row i of ``np.linspace(right - width - 2, right - width + 2, n_left, axis=-1)`` without
    building the (rows, n_left) array: ``at(i, j)`` is the same float as numpy's element.

    numpy computes element j < n_left - 1 as ``j * step + start`` and sets the last to ``stop``;
    ``exact`` says whether that holds for this numpy, checked on the first and last rows (else
    the caller builds the grid with numpy).
    """

    def __init__(self, right: np.ndarray, width: float, n_left: int):
        self.start = right - width - _BUFFER
        self.stop = right - width + _BUFFER
        self.step = (self.stop - self.start) / (n_left - 1)
        self.n = n_left
        ends = np.array([0, right.size - 1])
        check = np.linspace(self.start[ends], self.stop[ends], n_left, axis=-1)
        self.exact = bool(np.array_equal(check, self.at(ends[:, None], np.arange(n_left)[None])))

    def at(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        i, j = np.broadcast_arrays(i, j)
        value = j * self.step[i] + self.start[i]
        return np.where(j == self.n - 1, self.stop[i], value)

    def counts(self, values: np.ndarray) -> np.ndarray:
        """(rows, values): how many of row i's points are <= each value (numpy's
        ``searchsorted(row, v, 'right')``); ``values`` (k,) for every row, or (rows, k), row i
        against its own. Read off the row's progression, which is exact unless a value lies
        within 1e-6 steps of a point (rounding is under 1e-9 steps); those few (e.g. inner[0],
        a grid point by design) are settled against the points themselves.
        """
        values = np.broadcast_to(values, (self.start.size, values.shape[-1]))
        at = (values - self.start[:, None]) / self.step[:, None]
        count = np.clip(np.floor(at) + 1, 0, self.n).astype(np.intp)
        r, c = np.nonzero(np.abs(at - np.rint(at)) < 1e-6)
        if r.size:
            v, n = values[r, c], count[r, c]
            for _ in range(self.n + 1):
                up = (n < self.n) & (self.at(r, np.minimum(n, self.n - 1)) <= v)  # one more
                down = (n > 0) & (self.at(r, np.maximum(n - 1, 0)) > v)  # one fewer
                if not (up.any() or down.any()):
                    break
                n = n + up - down
            count[r, c] = n
        return count


def _interval_max_epsilon(pos: np.ndarray, neg: np.ndarray, pos_range: float,
                          neg_range: float, delta: float) -> float | None:
    """The max kept epsilon of ``_interval_epsilons`` (NaN: none kept) without scoring each pair.

    The same thresholds and counts. Epsilon never rises with the false-positive count (checked
    on the table; None when it does not hold, or when numpy's grid cannot be reproduced, and
    the caller scores every pair), so per right threshold and per number k of inner values
    below the left threshold (a run of consecutive left thresholds) only the run's last left
    threshold whose false-positive count is still >= 1 can give the max; a count of 0 is
    discarded, except 0 and 0 (inf). Counts come from where each distinct inner value (and
    each row's one outer value that bounds the runs) falls in each row; the outer values below
    a run's end are those below its left point, found by searching that point.
    """
    width = neg_range if pos_range > neg_range else pos_range
    inner, outer = (neg, pos) if pos_range >= neg_range else (pos, neg)
    lo, hi = inner[0] + width - _BUFFER, inner[-1] + _BUFFER
    right = np.linspace(lo, hi, int(np.ceil((hi - lo) * NUM_THRESHOLDS_PER_UNIT)))
    n_left = int(np.ceil(2 * _BUFFER * NUM_THRESHOLDS_PER_UNIT))
    if right.size == 0:
        return np.nan
    n_in, n_out, n_right = inner.size, outer.size, right.size
    n_thr = n_right * n_left
    key = (n_in, _cuda_mean_factor(n_in, n_thr), n_out, _cuda_mean_factor(n_out, n_thr), delta)
    grid = _LeftGrid(right, width, n_left)
    if not (grid.exact and _is_monotone(*key)):
        return None
    upto_in = np.searchsorted(inner, right, side="right")[:, None]  # values <= right threshold
    upto_out = np.searchsorted(outer, right, side="right")[:, None]
    step, start, stop = grid.step[:, None], grid.start[:, None], grid.stop[:, None]

    def outer_below(count: np.ndarray) -> np.ndarray:
        """Outer values strictly below left[i, count - 1] (0 where count is 0): the values
        whose own count is smaller, i.e. that fall below a run that ends at that count.
        The left point is ``grid.at``'s float, computed per row without gathering."""
        j = np.maximum(count - 1, 0)
        point = np.where(j == n_left - 1, stop, j * step + start)
        return np.where(count > 0, np.searchsorted(outer, point, side="left"), 0)

    new = np.concatenate([[True], inner[1:] != inner[:-1]])  # a value's count is counted once
    at_in = grid.counts(inner[new])[:, np.cumsum(new) - 1]  # left points <= inner k, per row
    # run k (k inner values below the left threshold) ends at left index at[k] - 1 (L - 1)
    first = np.concatenate([np.zeros((n_right, 1), np.intp), at_in], 1)
    last = np.concatenate([at_in, np.full((n_right, 1), n_left, np.intp)], 1) - 1
    below_last = np.concatenate([outer_below(at_in),
                                 np.searchsorted(outer, grid.stop, side="left")[:, None]], 1)
    fn = n_in - np.maximum(upto_in - np.arange(n_in + 1)[None], 0)
    best = np.nan
    whole = (fn[:, 0] == 0) & (first[:, 0] <= last[:, 0])  # every inner value inside...
    if np.any(upto_out[whole, 0] <= below_last[whole, 0]):
        best = np.inf  # ...and no outer one: a perfect separation
    # the last left index with fp >= 1 is just before the upto_out-th outer value goes below
    at_top = grid.counts(outer[np.maximum(upto_out - 1, 0)])  # that outer value's count
    cut = at_top - 1
    below_j = np.minimum(below_last, outer_below(at_top))
    ok = (fn >= 1) & (upto_out >= 1) & (np.minimum(last, cut) >= first)
    if ok.any():
        kept = _epsilon_table(*key)[fn[ok], (upto_out - below_j)[ok]]
        kept = kept[~np.isnan(kept)]
        if kept.size:
            best = np.fmax(best, kept.max())
    return best


def _example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float,
                     enough: float = math.inf) -> float:
    """The example's epsilon; or, when the single-threshold family alone reaches ``enough``,
    that family's max (a lower bound of the epsilon that is already >= ``enough``)."""
    pos_range, neg_range = pos.max() - pos.min(), neg.max() - neg.min()
    larger, smaller = (pos_range, neg_range) if pos_range > neg_range else (neg_range, pos_range)
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.float64(smaller) / np.float64(larger) < _PEAKY_RATIO:
            return float(EPSILON_CAP)
    pos, neg = np.sort(pos), np.sort(neg)
    single = _single_threshold_epsilons(pos, neg, delta)
    if enough < math.inf:
        kept = single[~np.isnan(single)]
        if kept.size and kept.max() >= enough:
            return float(kept.max())
    interval = _interval_max_epsilon(pos, neg, pos_range, neg_range, delta)
    if interval is None:  # the table is not monotone: score every pair
        eps = np.concatenate([_interval_epsilons(pos, neg, pos_range, neg_range, delta), single])
    else:
        eps = np.append(single, interval)
    kept = eps[~np.isnan(eps)]
    return float(kept.max()) if kept.size else 0.0


def per_example_epsilons(unlearned_conf: np.ndarray, retrained_conf: np.ndarray,
                         delta: float = DELTA) -> np.ndarray:
    """Epsilon of the best single- or double-threshold attack on each forget example.

    Args:
        unlearned_conf: Confidences (models, examples) under the unlearned models.
        retrained_conf: Confidences (models, examples) under the retrained models; the number of
            models may differ from the unlearned side.
        delta: The delta of (epsilon, delta)-unlearning.

    Returns:
        float64 array (examples,) in [0, EPSILON_CAP]; EPSILON_CAP for a peaky side or perfect
        separation.

    Raises:
        DataError: If a shape is wrong, a side has fewer than 2 models or a value is not finite.
    """
    return _epsilons(*_check_confidences(unlearned_conf, retrained_conf), delta, math.inf)


def _epsilons(u: np.ndarray, r: np.ndarray, delta: float, enough: float) -> np.ndarray:
    """``per_example_epsilons`` of checked confidences; an example whose single-threshold
    epsilon reaches ``enough`` gets that value (see ``_example_epsilon``)."""
    if not 0.0 <= delta < 1.0:
        raise ConfigError(f"delta must be in [0, 1), got {delta}; use the challenge's {DELTA}.")
    retrained_positive = np.median(r, axis=0) > np.median(u, axis=0)
    u, r = np.ascontiguousarray(u.T), np.ascontiguousarray(r.T)
    eps = np.array([_example_epsilon(r[i], u[i], delta, enough) if retrained_positive[i]
                    else _example_epsilon(u[i], r[i], delta, enough) for i in range(u.shape[0])])
    return np.clip(eps, 0.0, EPSILON_CAP)


def per_example_scores(unlearned_conf: np.ndarray, retrained_conf: np.ndarray,
                       n_models: int | None = None, delta: float = DELTA) -> np.ndarray:
    """Per-example bin scores H, equal to ``bin_scores(per_example_epsilons(...), n_models)``.

    Faster where many examples score 0: an example whose single-threshold attack already
    reaches the last bin's end (``num_bins(n_models) / 2``) scores 0 whatever the
    double-threshold family finds (epsilon is the max of both), so that family, the costly
    part, is skipped for it. The scores, hence F, are the same numbers; only the epsilons of
    such examples are not computed in full, which is why the bootstrap (which needs scores
    only) uses this and ``evaluate_forgetting`` (which reports epsilons) does not.

    Args:
        unlearned_conf, retrained_conf: Confidences (models, examples), as for
            ``per_example_epsilons``.
        n_models: Sets the bins; the number of unlearned models when None.
        delta: The delta of (epsilon, delta)-unlearning.
    """
    u, r = _check_confidences(unlearned_conf, retrained_conf)
    n = u.shape[0] if n_models is None else n_models
    return bin_scores(_epsilons(u, r, delta, num_bins(n) * _BIN_WIDTH), n)


def num_bins(n_models: int) -> int:
    """Number of half-unit epsilon bins the code uses for ``n_models`` models per side."""
    if n_models < 2:
        raise DataError(f"n_models is {n_models}; the bins need at least 2 models per side.")
    return 2 * max(math.ceil(math.log(n_models - 1)), 0)


def bin_scores(epsilons: np.ndarray, n_models: int) -> np.ndarray:
    """Per-example score H = 2 / 2**(floor(eps / 0.5) + 1), and 0 past the last bin.

    Args:
        epsilons: Per-example epsilons.
        n_models: Models per side (the unlearned count), which sets the bins via ``num_bins``.

    Returns:
        float64 array of H in {0} U {2**-k}; NaN or eps >= num_bins(n_models) / 2 scores 0.
    """
    eps = np.asarray(epsilons, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        k = np.floor(np.maximum(eps, 0.0) / _BIN_WIDTH)
        scored = k < num_bins(n_models)
    return np.where(scored, 0.5 ** np.where(scored, k, 0.0), 0.0)


def evaluate_forgetting(unlearned_conf: np.ndarray, retrained_conf: np.ndarray) -> ChallengeResult:
    """Forgetting quality F with its per-example epsilons and scores.

    Args:
        unlearned_conf, retrained_conf: Confidences (models, examples), as for
            ``per_example_epsilons``.

    Raises:
        DataError: On malformed confidences, as ``per_example_epsilons``.
    """
    u, r = _check_confidences(unlearned_conf, retrained_conf)
    eps = per_example_epsilons(u, r)
    scores = bin_scores(eps, u.shape[0])
    eps.setflags(write=False)
    scores.setflags(write=False)
    return ChallengeResult(float(scores.sum()) / scores.size, eps, scores, int(u.shape[0]))


def forgetting_quality(unlearned_conf: np.ndarray, retrained_conf: np.ndarray) -> float:
    """Forgetting quality F in [0, 1]: the mean per-example bin score (higher is better).

    Args:
        unlearned_conf, retrained_conf: Confidences (models, examples), as for
            ``per_example_epsilons``.
    """
    return evaluate_forgetting(unlearned_conf, retrained_conf).forgetting_quality


def final_score(F: float, ra_u: float, ra_r: float, ta_u: float, ta_r: float) -> float:
    """Challenge score F * (RA_U / RA_R) * (TA_U / TA_R); ratios above 1 are not clipped.

    Args:
        F: Forgetting quality.
        ra_u, ra_r: Mean retain accuracy of the unlearned and of the retrained models.
        ta_u, ta_r: Mean test accuracy of the unlearned and of the retrained models.

    Raises:
        DataError: If a value is not finite or a retrained accuracy is not positive.
    """
    values = [float(v) for v in (F, ra_u, ra_r, ta_u, ta_r)]
    if not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[4] <= 0:
        raise DataError(f"final_score got {values}; pass finite values and positive retrained "
                        "accuracies.")
    f, ra_u, ra_r, ta_u, ta_r = values
    return f * (ra_u / ra_r) * (ta_u / ta_r)
