"""LiRA / U-LiRA against known answers: analytic Gaussian AUCs, hand-computed ROCs and scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from obliviate.errors import ConfigError, DataError
from obliviate.evaluate.lira import attack_metrics, lira, lira_scores, ulira, ulira_split

AUC_D1 = norm.cdf(1 / math.sqrt(2))  # two unit-variance Gaussians one apart: 0.7602


def _simulate(seed: int, shift: float, *, spread: float = 3.0, n_shadows: int = 64,
              n_targets: int = 8, n_examples: int = 500):
    """OUT ~ N(m_j, 1), IN ~ N(m_j + shift, 1), with per-example means m_j ~ N(0, spread^2)."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, spread, n_examples)
    member = ulira_split(n_shadows + n_targets, n_examples, rng)
    conf = m + shift * member + rng.normal(size=member.shape)
    return conf[n_targets:], member[n_targets:], conf[:n_targets], member[:n_targets]


# --- LiRA on synthetic Gaussians -------------------------------------------------------------

@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fix_variance", [False, True])
def test_auc_matches_analytic_gaussian_auc(online, fix_variance):
    shadow, shadow_in, target, target_in = _simulate(0, 1.0)
    res = lira(target, target_in, shadow, shadow_in, online=online, fix_variance=fix_variance)
    # per example the optimal test is x - m_j, N(1, 1) vs N(0, 1) pooled: AUC = Phi(1/sqrt 2)
    assert res.auc == pytest.approx(AUC_D1, abs=0.03)
    assert res.online is online
    assert res.scores.shape == target.shape == res.is_member.shape


def test_identical_in_out_is_chance():
    shadow, shadow_in, target, target_in = _simulate(1, 0.0)
    res = lira(target, target_in, shadow, shadow_in)
    assert res.auc == pytest.approx(0.5, abs=0.03)
    assert 0.5 <= res.accuracy <= 0.54  # best threshold: at least 0.5, a little above by chance


def test_huge_shift_is_perfect():
    shadow, shadow_in, target, target_in = _simulate(2, 20.0)
    res = lira(target, target_in, shadow, shadow_in)
    assert res.auc > 0.999
    assert res.tpr_at_0_1pct_fpr > 0.99 and res.tpr_at_1pct_fpr > 0.99
    assert res.accuracy > 0.99


def test_per_example_fits_beat_a_global_threshold():
    shadow, shadow_in, target, target_in = _simulate(3, 1.0, spread=3.0)
    global_auc = roc_auc_score(target_in.ravel(), target.ravel())
    # pooled over examples: N(1, 1 + 9) vs N(0, 1 + 9)
    assert global_auc == pytest.approx(norm.cdf(1 / math.sqrt(20)), abs=0.04)
    assert lira(target, target_in, shadow, shadow_in).auc > global_auc + 0.12


def test_single_target_vector_and_offline_without_in_shadows():
    shadow, shadow_in, target, target_in = _simulate(4, 1.0, n_targets=1)
    assert lira_scores(target[0], shadow, shadow_in).shape == (500,)
    offline = lira_scores(target, shadow, np.zeros_like(shadow_in), online=False)
    assert np.all(np.isfinite(offline))


# --- LiRA scores by hand -----------------------------------------------------------------------

def test_scores_by_hand():
    # one example: IN {1, 3} -> N(2, 2), OUT {0, 2} -> N(1, 2) (ddof=1 variances)
    conf = np.array([[1.0], [3.0], [0.0], [2.0]])
    member = np.array([[True], [True], [False], [False]])
    on = lira_scores(np.array([[1.5], [2.0]]), conf, member)
    assert on[:, 0] == pytest.approx([0.0, 0.25])  # (2-1)^2 / (2*2)
    off = lira_scores(np.array([1.0, 1.0 + math.sqrt(2)]).reshape(2, 1), conf, member,
                      online=False)
    assert off[:, 0] == pytest.approx([math.log(2), -math.log(norm.sf(1.0))])


def test_fix_variance_pools_within_example_variance():
    # IN: {1, 3} and {10, 14} -> pooled variance (2 + 8) / 2 = 5; OUT: {0, 2}, {9, 11} -> 2
    conf = np.array([[1.0, 10.0], [3.0, 14.0], [0.0, 9.0], [2.0, 11.0]])
    member = np.array([[1, 1], [1, 1], [0, 0], [0, 0]], dtype=bool)
    s = lira_scores(np.array([0.0, 12.0]), conf, member, fix_variance=True)
    assert s[1] == pytest.approx(0.5 * math.log(2 / 5) + 1.0)  # x=mu_in, (12-10)^2 / (2*2) = 1


def test_sparse_group_fallbacks():
    conf = np.array([[1.0, 5.0], [3.0, 4.0], [0.0, 6.0], [2.0, 5.0]])
    member = np.array([[1, 1], [1, 0], [0, 0], [0, 0]], dtype=bool)
    # example 1 has one IN value (5): mean 5, pooled IN std sqrt(2); OUT {4, 6, 5}: N(5, 1)
    s = lira_scores(np.array([0.0, 5.0]), conf, member)
    assert s[1] == pytest.approx(-0.5 * math.log(2))
    # no IN value at all: the IN side's grand mean 2 and overall std sqrt(2)
    member[0, 1] = False
    s = lira_scores(np.array([0.0, 5.0]), conf, member)
    out_std = math.sqrt(2 / 3)  # OUT {5, 4, 6, 5}
    expected = norm.logpdf(5.0, 2.0, math.sqrt(2)) - norm.logpdf(5.0, 5.0, out_std)
    assert s[1] == pytest.approx(expected)


# --- attack_metrics on hand-made ROCs ------------------------------------------------------------

def test_metrics_perfect_and_inverted():
    member = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    good = attack_metrics(np.arange(6.0), member)
    assert (good["auc"], good["accuracy"], good["tpr_at_1pct_fpr"], good["tpr_at_0.1pct_fpr"]) \
        == (1.0, 1.0, 1.0, 1.0)
    bad = attack_metrics(-np.arange(6.0), member)
    assert (bad["auc"], bad["accuracy"], bad["tpr_at_1pct_fpr"], bad["tpr_at_0.1pct_fpr"]) \
        == (0.0, 0.5, 0.0, 0.0)
    assert (good["n_members"], good["n_nonmembers"]) == (3, 3)


def test_metrics_four_points():
    m = attack_metrics(np.array([4.0, 3.0, 2.0, 1.0]), np.array([1, 0, 1, 0], dtype=bool))
    fpr, tpr = m["roc"]
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert m["auc"] == 0.75 and m["accuracy"] == 0.75
    assert m["tpr_at_1pct_fpr"] == 0.5 and m["tpr_at_0.1pct_fpr"] == 0.5


def test_metrics_low_fpr_levels():
    # 200 non-members scored 0..199; members above all, above 199, 198 and 197 of them
    scores = np.concatenate([np.arange(200.0), [199.5, 198.5, 197.5, 196.5]])
    member = np.arange(204) >= 200
    m = attack_metrics(scores, member)
    assert m["tpr_at_0.1pct_fpr"] == 0.25  # only FPR 0 qualifies
    assert m["tpr_at_1pct_fpr"] == 0.75  # FPR exactly 2/200 is allowed
    assert m["auc"] == pytest.approx(794 / 800)
    assert m["accuracy"] == pytest.approx((1 + 197 / 200) / 2)


def test_metrics_all_ties():
    m = attack_metrics(np.zeros(10), np.arange(10) % 2 == 0)
    assert (m["auc"], m["accuracy"], m["tpr_at_1pct_fpr"]) == (0.5, 0.5, 0.0)


# --- U-LiRA ----------------------------------------------------------------------------------------

def test_ulira_indistinguishable_unlearning_is_chance():
    shadow, forgot, target, target_forgot = _simulate(5, 0.0, n_examples=300)
    res = ulira(shadow, forgot, target, target_forgot)
    assert 0.5 <= res.accuracy <= 0.54
    assert res.accuracy_at_zero == pytest.approx(0.5, abs=0.03)
    assert res.auc == pytest.approx(0.5, abs=0.03)
    assert res.example_accuracy.shape == (300,)


def test_ulira_residual_shift_is_detected():
    shadow, forgot, target, target_forgot = _simulate(6, 1.0, n_examples=300)
    res = ulira(shadow, forgot, target, target_forgot)
    # best balanced accuracy between N(1, 1) and N(0, 1) is Phi(1/2) = 0.69
    assert res.accuracy == pytest.approx(norm.cdf(0.5), abs=0.03)
    assert res.accuracy_at_zero > 0.65
    assert res.auc == pytest.approx(AUC_D1, abs=0.035)  # fitted Gaussians lose a little power
    assert res.example_accuracy.mean() == pytest.approx(res.accuracy_at_zero, abs=0.01)


def test_ulira_split_balance():
    split = ulira_split(10, 40, 0)
    assert split.dtype == bool and split.shape == (10, 40)
    assert (split.sum(axis=1) == 20).all() and (split.sum(axis=0) == 5).all()
    np.testing.assert_array_equal(split, ulira_split(10, 40, np.random.default_rng(0)))
    assert not np.array_equal(split, ulira_split(10, 40, 1))
    odd = ulira_split(8, 41, 3)  # one example per pair of models is left out of both
    assert (odd.sum(axis=1) == 20).all()
    assert odd.sum(axis=0).max() <= 4 and odd.sum() == 8 * 20
    single = ulira_split(3, 10, 0)
    assert (single.sum(axis=1) == 5).all()


# --- bad input -------------------------------------------------------------------------------------

def test_bad_input_raises_data_error():
    shadow, shadow_in, target, target_in = _simulate(7, 1.0, n_shadows=8, n_targets=2,
                                                     n_examples=20)
    with pytest.raises(DataError, match="shadow_in has shape"):
        lira_scores(target, shadow, shadow_in[:, :-1])
    with pytest.raises(DataError, match="target_conf has shape"):
        lira_scores(target[:, :-1], shadow, shadow_in)
    with pytest.raises(DataError, match="must be 2-D"):
        lira_scores(target, shadow[0], shadow_in[0])
    for bad in (target.copy(), shadow.copy()):
        bad[0, 0] = np.nan
        args = (bad, shadow) if bad.shape == target.shape else (target, bad)
        with pytest.raises(DataError, match="NaN"):
            lira_scores(*args, shadow_in)
    with pytest.raises(DataError, match="boolean"):
        lira_scores(target, shadow, shadow_in * 0.5)
    one_in = np.zeros_like(shadow_in)
    one_in[0] = True
    with pytest.raises(DataError, match="2 or more IN"):
        lira_scores(target, shadow, one_in)
    assert lira_scores(target, shadow, one_in, online=False).shape == target.shape
    with pytest.raises(DataError, match="2 or more OUT"):
        lira_scores(target, shadow, ~one_in)
    with pytest.raises(DataError, match="target_in has shape"):
        lira(target, target_in[0], shadow, shadow_in)
    with pytest.raises(DataError, match="target_forgot has shape"):
        ulira(shadow, shadow_in, target, target_in.T)


def test_bad_metrics_input_raises_data_error():
    with pytest.raises(DataError, match="both members and non-members"):
        attack_metrics(np.arange(4.0), np.ones(4, dtype=bool))
    with pytest.raises(DataError, match="is_member has shape"):
        attack_metrics(np.arange(4.0), np.ones(3, dtype=bool))
    with pytest.raises(DataError, match="NaN"):
        attack_metrics(np.array([0.0, np.nan]), np.array([True, False]))
    with pytest.raises(ConfigError):
        ulira_split(0, 10, 0)
    with pytest.raises(ConfigError):
        ulira_split(4, 1, 0)
