import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.evaluate.mia import simple_mia
from obliviate.evaluate.utility import accuracy, per_example_loss


def test_per_example_loss_matches_torch_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 7)) * 30  # large logits: needs the stable form
    labels = rng.integers(0, 7, 50)
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(labels), reduction="none").numpy()
    np.testing.assert_allclose(per_example_loss(logits, labels), expected, rtol=1e-10, atol=1e-10)
    assert accuracy(np.eye(3), np.array([0, 1, 0])) == pytest.approx(2 / 3)


def test_mia_is_chance_on_identical_distributions_and_perfect_on_separated():
    rng = np.random.default_rng(1)
    same = simple_mia(rng.exponential(size=400), rng.exponential(size=400), seed=0)
    assert abs(same - 0.5) < 0.06
    separated = simple_mia(rng.uniform(0, 1, 300), rng.uniform(2, 3, 300), seed=0)
    assert separated == 1.0
    # the kit's unscaled regression cannot see a leak at loss scale 1e-4; the standardised one can
    members, nonmembers = rng.uniform(0, 1e-4, 300), rng.uniform(1e-4, 2e-4, 300)
    assert simple_mia(members, nonmembers, standardize=False) < 0.6
    assert simple_mia(members, nonmembers) > 0.95


def test_mia_balances_groups_and_refuses_tiny_ones():
    rng = np.random.default_rng(2)
    value = simple_mia(rng.exponential(size=20), rng.exponential(size=2000), seed=0)
    assert 0.2 < value < 0.8
    capped = simple_mia(np.r_[np.inf, np.nan, np.ones(8)], np.zeros(10))  # a broken model's loss
    assert 0.0 <= capped <= 1.0
    with pytest.raises(ob.DataError, match="at least 5 members"):
        simple_mia(np.ones(3), np.ones(100))
