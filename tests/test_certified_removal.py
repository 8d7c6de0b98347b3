"""Certified removal: Newton removal lands near the exact minimiser, the residual bound holds."""

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.certified import CertifiedLogisticRegression
from obliviate.certified import objective as obj


@pytest.fixture(scope="module")
def rows():
    sc = ob.load_scenario("digits", model="mlp")
    return sc.splits.x_train[:400], sc.splits.y_train[:400]


@pytest.mark.parametrize("classes", [2, 10])
def test_newton_removal_is_close_to_the_retrained_minimiser_within_the_bound(rows, classes):
    x, y = rows
    if classes == 2:
        y = (y >= 5).long()  # binary: digits 0-4 against 5-9
    clf = CertifiedLogisticRegression(lam=1e-2, sigma=10.0, epsilon=1.0, delta=1e-4,
                                      generator=torch.Generator().manual_seed(0))
    clf.fit(x, y, classes)
    assert clf.gradient_residual() < 1e-8  # training reaches the exact minimiser
    w_before = clf.w.clone()
    cert = clf.remove([3, 50, 77, 120, 301], batch_size=1)
    assert cert.retrains == 0 and cert.removed == 5 and cert.certified
    residual = clf.gradient_residual()
    assert 0 < residual <= cert.used  # the tracked data-dependent bound holds
    n_kept = int(clf.kept.sum())
    exact = clf.exact_minimiser()
    # the objective is (lam n)-strongly convex: |w - w*| <= |grad L(w)| / (lam n)
    assert float((clf.w - exact).norm()) <= residual / (1e-2 * n_kept) + 1e-12
    assert float((clf.w - exact).norm()) < 0.05 * float((w_before - exact).norm())
    assert all(step <= obj.worst_case_bound(n_kept, 1e-2) for step in cert.steps)


def test_budget_exhausted_retrains_from_scratch(rows):
    x, y = rows
    clf = CertifiedLogisticRegression(lam=1e-2, sigma=1e-3, epsilon=1.0,
                                      generator=torch.Generator().manual_seed(1))
    clf.fit(x, y, 10)
    cert = clf.remove(np.arange(20), batch_size=10)
    assert cert.retrains == 2 and cert.used == 0.0 and cert.certified
    assert clf.gradient_residual() < 1e-8  # retrained: the exact minimiser of the kept rows
    assert cert.budget == pytest.approx(1e-3 / np.sqrt(2 * np.log(1.5 / 1e-4)))


def test_bad_requests_and_parameters_are_refused(rows):
    x, y = rows
    clf = CertifiedLogisticRegression(lam=1e-2).fit(x, y)
    clf.remove([4])
    with pytest.raises(ob.DataError, match="Row 4 was already removed"):
        clf.remove([4])
    with pytest.raises(ob.DataError, match="Row 400 is out of range"):
        clf.remove([400])
    with pytest.raises(ob.ConfigError, match="'sigma' parameter of certified removal"):
        CertifiedLogisticRegression(sigma=0)


def test_method_puts_a_certified_head_on_frozen_features(digits, digits_original):
    unlearned = ob.unlearn(digits_original, digits.forget_loader(), digits.retain_loader(),
                           method="certified-removal", lam=1e-2, batch_size=16, seed=0)
    cert = unlearned.classifier.certificate
    assert cert.removed == len(digits.forget_idx) and cert.certified
    assert torch.equal(unlearned.features[0].weight, digits_original.features[0].weight)
    report = ob.audit(unlearned, digits)
    assert report.metrics["TA"] > 0.9
