"""Intervals, paired comparisons and the collapse rule, on simulated cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from obliviate.errors import ConfigError
from obliviate.evaluate import collapse as cl
from obliviate.evaluate import comparisons as cmp
from obliviate.evaluate import intervals as iv
from obliviate.evaluate.challenge import forgetting_quality
from obliviate.evaluate.mia import simple_mia


def _binomial_floor(level: float, n: int, sigmas: float = 3.0) -> float:
    return level - sigmas * math.sqrt(level * (1 - level) / n)


# --- over seeds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 8])
def test_seed_interval_covers_the_mean_at_the_nominal_rate(n):
    rng = np.random.default_rng(n)
    reps = 4000
    samples = rng.normal(1.5, 0.3, (reps, n))
    covered = 0
    for x in samples:
        _, lo, hi = iv.seed_interval(x)
        covered += lo <= 1.5 <= hi
    tol = 3 * math.sqrt(0.95 * 0.05 / reps)
    assert abs(covered / reps - 0.95) < tol


def test_seed_interval_edge_cases():
    assert iv.seed_interval([0.7])[0] == 0.7 and all(map(math.isnan, iv.seed_interval([0.7])[1:]))
    assert all(map(math.isnan, iv.seed_interval([])))
    assert iv.seed_interval([0.5, np.nan, 0.5]) == (0.5, 0.5, 0.5)
    mean, lo, hi = iv.seed_interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    with pytest.raises(ConfigError):
        iv.seed_interval([1.0, 2.0], level=1.5)


def test_combined_seeds_interval_is_the_mean_with_pooled_errors():
    mean, lo, hi = iv.combine_seeds([0.2, 0.4], [0.03, 0.04])
    half = stats.norm.ppf(0.975) * math.sqrt(0.03 ** 2 + 0.04 ** 2) / 2
    assert (mean, lo, hi) == pytest.approx((0.3, 0.3 - half, 0.3 + half))
    assert iv.combine_seeds([0.01], [0.05], bounds=(0, 1))[1] == 0.0


# --- the challenge's F ------------------------------------------------------------------------

def _sides(rng, n_models: int, n_examples: int, shift: float):
    """Each call draws new forget examples (mean, spread) and new models on both sides."""
    mu, sd = rng.normal(0, 3, n_examples), rng.uniform(0.5, 1.5, n_examples)
    return (rng.normal(mu + shift * sd, sd, (n_models, n_examples)),
            rng.normal(mu, sd, (n_models, n_examples)))


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_bootstrap_of_F_covers_the_expected_F(shift):
    # known answer: E[F] at these sizes, over fresh examples and models, by Monte Carlo
    rng = np.random.default_rng(11)
    n_models, n_examples = 8, 6
    truth = np.mean([forgetting_quality(*_sides(rng, n_models, n_examples, shift))
                     for _ in range(200)])
    reps, covered, below = 40, 0, 0
    for _ in range(reps):
        u, r = _sides(rng, n_models, n_examples, shift)
        b = iv.bootstrap_forgetting_quality(u, r, n_boot=20, rng=rng)
        assert b.estimate == forgetting_quality(u, r) and 0 <= b.lo <= b.estimate <= b.hi <= 1
        covered += b.lo <= truth <= b.hi
        below += np.quantile(b.replicates, 0.975) < truth
    assert covered / reps >= _binomial_floor(0.95, reps)
    # why the interval is centred: the replicates on duplicated models sit below F
    assert below > 0 or shift > 0


def test_replicates_are_the_metric_on_the_resampled_models_and_examples():
    rng = np.random.default_rng(3)
    u, r = _sides(rng, 6, 5, 0.3)
    draws = iv.challenge_draws(4, 6, 6, 5, 0)
    reps = iv.forgetting_replicates(u, r, draws)
    for b in range(4):
        uu = u[draws.unlearned[b]][:, draws.examples[b]]
        rr = r[draws.retrained[b]][:, draws.examples[b]]
        assert reps[b] == pytest.approx(forgetting_quality(uu, rr), abs=1e-15)
    fixed = iv.challenge_draws(4, 6, 6, 5, 0, resample_examples=False)
    assert np.array_equal(fixed.examples, np.broadcast_to(np.arange(5), (4, 5)))


def test_ceiling_and_ratio_share_draws():
    rng = np.random.default_rng(4)
    u, a = _sides(rng, 8, 5, 1.0)
    b = rng.normal(a.mean(0), a.std(0), a.shape)
    out = iv.bootstrap_ceiling_ratio(u, a, b, n_boot=6, rng=1)
    assert out["F_ratio"].estimate == pytest.approx(out["F"].estimate / out["F_ceiling"].estimate)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = out["F"].replicates / out["F_ceiling"].replicates
    ok = np.isfinite(ratio)
    assert np.allclose(out["F_ratio"].replicates[ok], ratio[ok])


def test_deterministic_unlearner_has_a_zero_width_interval():
    rng = np.random.default_rng(5)
    u, r = _sides(rng, 6, 4, 0.0)
    b = iv.bootstrap_forgetting_quality(np.repeat(u[:1], 6, 0), r, n_boot=5)
    assert (b.estimate, b.lo, b.hi, b.se) == (0.0, 0.0, 0.0, 0.0)


# --- attacks ------------------------------------------------------------------------------------

def _auc(scores: np.ndarray, member: np.ndarray) -> dict[str, float]:
    """ROC AUC as the Mann-Whitney statistic (what roc_auc_score gives), fast."""
    s, y = scores.ravel(), member.ravel()
    ranks, n1 = stats.rankdata(s), y.sum()
    return {"auc": float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (y.size - n1)))}


def test_attack_bootstrap_covers_the_population_auc():
    # scores: target and example effects plus noise; members shifted by d, so the population AUC
    # of a member against a non-member is P(X_m > X_n) = Phi(d / sqrt(2 var)), var = 1 + 0.25 + 0.25
    rng = np.random.default_rng(6)
    d, var = 0.6, 1.5
    truth = stats.norm.cdf(d / math.sqrt(2 * var))
    reps, covered = 80, 0
    for _ in range(reps):
        member = rng.random((6, 40)) < 0.5
        s = (rng.normal(0, 0.5, (6, 1)) + rng.normal(0, 0.5, (1, 40)) + rng.normal(0, 1, (6, 40))
             + d * member)
        boot = iv.bootstrap_attack(s, member, _auc, n_boot=60, rng=rng)["auc"]
        covered += boot.lo <= truth <= boot.hi
    assert covered / reps >= _binomial_floor(0.95, reps)


def test_mia_replicates_are_simple_mia_on_the_resamples():
    rng = np.random.default_rng(7)
    members, nonmembers = rng.exponential(0.01, 60), rng.exponential(0.014, 150)
    reps = iv.loss_mia_replicates(members, nonmembers, n_boot=3, rng=3, mia_seed=2, chunk=2)
    gen = np.random.default_rng(3)
    for b in range(2):
        m = members[gen.integers(0, 60, 60)]
        nm = nonmembers[gen.integers(0, 150, 150)]
        assert reps[b] == pytest.approx(simple_mia(m, nm, seed=2), abs=0.005)


# --- paired comparisons ---------------------------------------------------------------------

def test_holm_adjusts_hand_example():
    assert cmp.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adj = cmp.holm([0.5, np.nan, 0.001])
    assert adj[0] == 0.5 and math.isnan(adj[1]) and adj[2] == pytest.approx(0.002)


def test_paired_bootstrap_test_keeps_its_level_under_the_null():
    # two methods measured on the same examples, equal in expectation: a paired bootstrap of
    # their mean on shared resamples rejects equality about 5% of the time
    rng = np.random.default_rng(8)
    reps, n, n_boot, rejected = 600, 40, 200, 0
    for _ in range(reps):
        shared = rng.normal(0, 1, n)  # example difficulty, common to both
        a, b = shared + rng.normal(0, 0.5, n), shared + rng.normal(0, 0.5, n)
        idx = rng.integers(0, n, (n_boot, n))
        p = cmp.paired_p_value(a[idx].mean(1), b[idx].mean(1), kind="bootstrap",
                              diff=a.mean() - b.mean())
        rejected += p < 0.05
    assert abs(rejected / reps - 0.05) < 3 * math.sqrt(0.05 * 0.95 / reps)


def test_paired_t_over_seeds_keeps_its_level_and_holm_the_family_error():
    rng = np.random.default_rng(9)
    reps, rejected, family_errors = 1000, 0, 0
    for _ in range(reps):
        seed_effect = rng.normal(0, 1, 5)
        rows = seed_effect + rng.normal(0, 0.3, (4, 5))  # four equal methods, five seeds
        ps = [cmp.paired_p_value(rows[k], rows[0], kind="seeds") for k in range(1, 4)]
        rejected += ps[0] < 0.05
        family_errors += bool((cmp.holm(ps) <= 0.05).any())
    tol = 3 * math.sqrt(0.05 * 0.95 / reps)
    assert abs(rejected / reps - 0.05) < tol
    assert family_errors / reps < 0.05 + tol


def test_paired_comparison_names_the_best_and_separates_a_worse_method():
    rng = np.random.default_rng(10)
    idx = rng.integers(0, 50, (300, 50))  # shared resamples of 50 examples
    shared, noise = rng.normal(0, 1, 50), rng.normal(0, 0.05, 50)
    data = {"good": shared + 0.5, "bad": shared - 0.5,  # retrain: good's mean, other examples
            "retrain (reference)": shared + 0.5 + noise - noise.mean()}
    est = {k: float(v.mean()) for k, v in data.items()}
    draws = {k: v[idx].mean(1) for k, v in data.items()}
    out = cmp.paired_comparison(est, draws, higher_is_better=True, kind="bootstrap",
                               reference="retrain (reference)")
    (bad,) = out["best"]
    assert (bad.method, bad.against) == ("bad", "good")
    assert bad.difference == pytest.approx(-1.0) and not bad.indistinguishable
    ref = {v.method: v for v in out["reference"]}
    assert ref["good"].indistinguishable and not ref["bad"].indistinguishable
    lower = cmp.paired_comparison(est, draws, higher_is_better=False, kind="bootstrap")
    assert lower["best"][0].against == "bad" and lower["reference"] == []
    with pytest.raises(ConfigError):
        cmp.paired_p_value(np.ones(3), np.ones(3), kind="wilcoxon")


def test_untestable_seed_comparison_is_nan():
    assert math.isnan(cmp.paired_p_value([0.1], [0.2], kind="seeds"))
    assert cmp.paired_p_value([0.1, 0.2], [0.1, 0.2], kind="seeds") == 1.0


# --- collapse -----------------------------------------------------------------------------------

ORIGINAL = {"RA": [0.989, 0.988, 0.982], "TA": [0.983, 0.972, 0.969]}
CHANCE = {"RA": 0.105, "TA": 0.125}


def test_collapse_flags_the_scrub_five_epoch_case():
    # digits, --set recipe.epochs=5, scrub.lr=0.05: per-seed RA and TA of the reproduced run
    scrub = {"RA": [0.917, 0.101, 0.633], "TA": [0.864, 0.097, 0.560]}
    flag = cl.collapse_flag(scrub, ORIGINAL, CHANCE)
    assert flag.level == "collapsed" and "seed 1" in flag.reason and "TA 0.097" in flag.reason
    # the same seeds without the collapsed one: seed 2 kept about half the margin
    assert cl.collapse_flag({m: [v[0], v[2]] for m, v in scrub.items()},
                            {m: [v[0], v[2]] for m, v in ORIGINAL.items()}, CHANCE).level == "ok"


def test_collapse_levels_on_constructed_cases():
    def level(ra, orig=0.99, chance=0.1):
        return cl.collapse_flag({"RA": [ra]}, {"RA": [orig]}, {"RA": chance}).level

    assert level(0.98) == "ok" and level(0.60) == "ok"
    assert level(0.50) == "degraded"  # (0.5 - 0.1) / 0.89 = 0.45
    assert level(0.25) == "collapsed" and level(0.05) == "collapsed"
    assert level(0.12, orig=0.13) == "ok"  # the original itself is at chance: nothing to lose
    assert cl.collapse_flag({"RA": [0.1]}, {"RA": [0.99]}, num_classes=10).level == "collapsed"
    assert cl.collapse_flag({"FA": [0.0]}, {"RA": [0.99]}, num_classes=10).level == "ok"
    with pytest.raises(ConfigError):
        cl.collapse_flag({"RA": [0.5]}, {"RA": [0.9]})


def test_chance_accuracy_is_the_majority_share():
    assert cl.chance_accuracy(np.array([0, 0, 0, 1])) == 0.75
    assert math.isnan(cl.chance_accuracy(np.array([])))
