"""The NeurIPS 2023 unlearning challenge's forgetting quality, checked against hand-derived values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from obliviate.errors import DataError
from obliviate.evaluate import challenge as ch

LOG_TINY = math.log(1e-45)


def _columns(*values: list[float]) -> np.ndarray:
    """One example per argument; each list gives that example's confidence under each model."""
    return np.array(values, dtype=np.float64).T


def _gaussian_sides(n_models: int, n_examples: int, shift: float, seed: int):
    rng = np.random.default_rng(seed)
    mu, sd = rng.normal(0, 3, n_examples), rng.uniform(0.5, 1.5, n_examples)
    retrained = rng.normal(mu, sd, (n_models, n_examples))
    unlearned = rng.normal(mu + shift * sd, sd, (n_models, n_examples))
    return unlearned, retrained


def test_constants():
    assert (ch.DELTA, ch.EPSILON_CAP, ch.NUM_THRESHOLDS_PER_UNIT) == (1e-5, 50, 100)
    assert ch.PROTOCOL == "challenge/5"


# --- logit-scaled confidence ----------------------------------------------------------------

def test_confidence_hand_values():
    logits = np.array([[math.log(3.0), 0.0, 0.0]] * 2)  # softmax (3/5, 1/5, 1/5)
    phi = ch.logit_scaled_confidence(logits, np.array([0, 1]))
    assert phi.dtype == np.float64
    assert phi == pytest.approx([math.log(0.6 / 0.4), math.log(0.2 / 0.8)], rel=1e-12)
    assert ch.logit_scaled_confidence(np.zeros((1, 2)), np.array([1]))[0] == 0.0


def test_confidence_keeps_leading_axes():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(3, 5, 4)), rng.integers(0, 4, (3, 5))
    phi = ch.logit_scaled_confidence(logits, labels)
    assert phi.shape == (3, 5)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p_y = np.take_along_axis(p, labels[..., None], -1)[..., 0]
    assert phi == pytest.approx(np.log(p_y / (1 - p_y)), rel=1e-9)


def test_confidence_finite_for_extreme_logits():
    phi = ch.logit_scaled_confidence(np.array([[1e4, 0.0, -1e4]] * 2), np.array([0, 2]))
    assert np.all(np.isfinite(phi))
    # the other classes' mass underflows to 0, leaving only the 1e-45 floor
    assert phi[0] == pytest.approx(-LOG_TINY, rel=1e-12)
    assert phi[1] == pytest.approx(LOG_TINY, rel=1e-12)


def test_confidence_exponentiates_in_the_logits_dtype():
    # exp(-104.5) = 4.1e-46 is below float32's smallest subnormal, so float32 logits saturate
    logits = np.array([[104.5, 0.0]])
    phi32 = ch.logit_scaled_confidence(logits.astype(np.float32), np.array([0]))[0]
    phi64 = ch.logit_scaled_confidence(logits, np.array([0]))[0]
    assert phi32 == pytest.approx(-LOG_TINY, rel=1e-12)
    assert phi64 == pytest.approx(-math.log(math.exp(-104.5) + 1e-45), rel=1e-12)
    assert phi32 - phi64 > 0.3


# --- per-example epsilon -----------------------------------------------------------------------

def test_hand_computed_single_threshold_case():
    # t in (2, 2.5]: FPR = P(U >= t) = 1/4, FNR = P(R < t) = 1/4; every other threshold and every
    # interval gives a smaller epsilon or has one rate 0 (discarded)
    u, r = _columns([0, 1, 2, 3]), _columns([1.5, 2.5, 3.5, 4.5])
    expected = math.log((1 - 1e-5 - 0.25) / 0.25)
    assert ch.per_example_epsilons(u, r)[0] == pytest.approx(expected, rel=1e-6)
    result = ch.evaluate_forgetting(u, r)
    assert result.forgetting_quality == 0.25  # N = 4: ceil(log 3) = 2, eps in [1, 1.5)


def test_hand_computed_case_with_unequal_model_counts():
    # 4 unlearned, 5 retrained models; best is FPR = 1/4, FNR = 1/5 (t in (2, 2.5])
    u, r = _columns([0, 1, 2, 3]), _columns([1.5, 2.5, 3.5, 4.5, 5.5])
    expected = math.log((1 - 1e-5 - 0.25) / 0.2)
    assert ch.per_example_epsilons(u, r)[0] == pytest.approx(expected, rel=1e-6)
    assert ch.evaluate_forgetting(u, r).n_models == 4


def test_thresholds_with_one_zero_rate_are_discarded():
    # Sides touch at 3: every single threshold has FPR = 0 or FNR = 0 and is discarded. The best
    # interval, (0, 1] to [3, 4), holds U {1, 2, 3} and R {3}: FNR = FPR = 1/4.
    u, r = _columns([0, 1, 2, 3]), _columns([3, 4, 5, 6])
    expected = math.log((1 - 1e-5 - 0.25) / 0.25)
    assert ch.per_example_epsilons(u, r)[0] == pytest.approx(expected, rel=1e-6)


def test_perfect_separation_scores_cap_and_zero():
    low, high = list(np.linspace(0, 1, 8)), list(np.linspace(10, 11, 8))
    u, r = _columns(low, high), _columns(high, low)  # both orientations
    result = ch.evaluate_forgetting(u, r)
    assert np.array_equal(result.epsilons, [50.0, 50.0])
    assert np.array_equal(result.example_scores, [0.0, 0.0])
    assert result.forgetting_quality == 0.0


def test_deterministic_unlearner_scores_zero():
    unlearned, retrained = _gaussian_sides(64, 40, 0.0, seed=1)
    unlearned = np.tile(unlearned[0], (64, 1))  # every unlearned model identical
    result = ch.evaluate_forgetting(unlearned, retrained)
    assert np.all(result.epsilons == ch.EPSILON_CAP)
    assert result.forgetting_quality == 0.0


def test_peaky_rule_boundary():
    wide = list(np.linspace(0, 1, 64))
    peaky = list(0.5 + np.linspace(0, 0.0099, 64))  # range ratio 0.0099 < 0.01
    narrow = list(0.5 + np.linspace(0, 0.02, 64))  # ratio 0.02: the attacks decide
    eps = ch.per_example_epsilons(_columns(peaky, narrow), _columns(wide, wide))
    assert eps[0] == 50.0
    assert eps[1] < 50.0


def test_constant_sides():
    # Both ranges 0: 0/0 is NaN and the peaky rule does not fire. Distinct constants are
    # separated perfectly (cap); equal constants leave no threshold, which scores epsilon 0 here
    # (the official code stops with an assertion error).
    u, r = _columns([0.0] * 8, [3.0] * 8), _columns([1.0] * 8, [3.0] * 8)
    assert np.array_equal(ch.per_example_epsilons(u, r), [50.0, 0.0])


# --- bins and F ------------------------------------------------------------------------------

def test_bin_edges():
    eps = [0, 0.25, 0.4999, 0.5, 0.9999, 1.0, 1.4999, 1.5]
    assert np.array_equal(ch.bin_scores(eps, 512), [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125])
    tail = [6.0, 6.4999, 6.5, 6.9999, 7.0, 50.0, np.inf, np.nan]
    assert np.array_equal(ch.bin_scores(tail, 512), [2**-12, 2**-12, 2**-13, 2**-13, 0, 0, 0, 0])
    assert np.array_equal(ch.bin_scores([4.9, 5.0], 64), [2**-9, 0.0])


def test_bin_counts_follow_ceil_log_n_minus_one():
    # 512 models: ceil(log 511) = 7 -> 14 bins over [0, 7); 64 and 128: ceil(log 63 or 127) = 5
    assert {n: ch.num_bins(n) for n in (32, 64, 128, 256, 512)} == \
        {32: 8, 64: 10, 128: 10, 256: 12, 512: 14}
    assert ch.num_bins(2) == 0
    # with 512 models the largest finite epsilon, FPR = FNR = 1/512, lands in [6, 6.5)
    largest = math.log((1 - 1e-5 - 1 / 512) * 512)
    assert ch.bin_scores([largest], 512)[0] == 2**-12


def test_identical_distributions_beat_shifted_ones():
    same = ch.forgetting_quality(*_gaussian_sides(64, 80, 0.0, seed=2))
    half = ch.forgetting_quality(*_gaussian_sides(64, 80, 0.5, seed=3))
    far = ch.forgetting_quality(*_gaussian_sides(64, 80, 3.0, seed=4))
    assert same > half > far
    assert 0.1 < same < 0.3  # the reference notes F of about 0.18 at N = 64
    assert far < 0.02


def test_same_inputs_same_result_and_entry_points_agree():
    _, retrained = _gaussian_sides(64, 30, 0.0, seed=5)
    a, b = retrained[:32], retrained[32:]  # retrained vs retrained: the ceiling for N = 32
    result = ch.evaluate_forgetting(a, b)
    assert ch.forgetting_quality(a, b) == result.forgetting_quality
    assert ch.evaluate_forgetting(a, b).forgetting_quality == result.forgetting_quality
    assert result.forgetting_quality == pytest.approx(result.example_scores.mean(), abs=0)
    assert np.array_equal(result.example_scores, ch.bin_scores(result.epsilons, 32))
    assert result.n_models == 32 and result.protocol == ch.PROTOCOL
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.n_models = 1  # type: ignore[misc]


# --- final score -------------------------------------------------------------------------------

def test_final_score_formula_without_clipping():
    assert ch.final_score(0.5, 0.9, 1.0, 0.5, 1.0) == pytest.approx(0.5 * 0.9 * 0.5)
    # an unlearner more accurate than retrain is rewarded: 0.2 * 1.25 * 1.5
    assert ch.final_score(0.2, 1.0, 0.8, 0.9, 0.6) == pytest.approx(0.375)
    with pytest.raises(DataError):
        ch.final_score(0.2, 1.0, 0.0, 0.9, 0.6)
    with pytest.raises(DataError):
        ch.final_score(float("nan"), 1.0, 1.0, 1.0, 1.0)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("unlearned, retrained", [
    (np.zeros(8), np.zeros((8, 1))),  # 1-D
    (np.zeros((8, 2, 1)), np.zeros((8, 2))),  # 3-D
    (np.zeros((8, 3)), np.zeros((8, 2))),  # different examples
    (np.zeros((1, 2)), np.zeros((8, 2))),  # one model
    (np.zeros((8, 0)), np.zeros((8, 0))),  # no examples
    (np.full((8, 2), np.nan), np.zeros((8, 2))),
    (np.zeros((8, 2)), np.full((8, 2), np.inf)),
])
def test_bad_confidences_raise_data_error(unlearned, retrained):
    with pytest.raises(DataError):
        ch.evaluate_forgetting(unlearned, retrained)
    with pytest.raises(DataError):
        ch.per_example_epsilons(unlearned, retrained)


def test_bad_logits_and_counts_raise_data_error():
    with pytest.raises(DataError):
        ch.logit_scaled_confidence(np.zeros((4, 3)), np.zeros(5, dtype=int))
    with pytest.raises(DataError):
        ch.logit_scaled_confidence(np.zeros((4, 3)), np.full(4, 3))
    with pytest.raises(DataError):
        ch.logit_scaled_confidence(np.full((4, 3), np.nan), np.zeros(4, dtype=int))
    with pytest.raises(DataError):
        ch.num_bins(1)
