"""The interval family's fast maximum is bit-identical to scoring every threshold pair."""

from __future__ import annotations

import numpy as np
import pytest

from obliviate.evaluate import challenge as ch


def _case(rng: np.random.Generator, kind: int):
    n_u, n_r = rng.choice([2, 3, 5, 8, 16, 31, 64]), rng.choice([2, 3, 5, 8, 16, 32])
    e = int(rng.integers(1, 4))
    mu = rng.normal(0, 3, e)
    if kind == 0:  # Gaussian sides, random shift and spread
        u = rng.normal(mu, 1, (n_u, e))
        r = rng.normal(mu + rng.normal(0, 1), rng.uniform(0.2, 2), (n_r, e))
    elif kind == 1:  # values on a lattice, with ties across and within sides
        u, r = rng.integers(0, 5, (n_u, e)) * 0.25, rng.integers(0, 5, (n_r, e)) * 0.25 + 0.25
    elif kind == 2:  # well separated (perfect separation by some interval)
        u, r = rng.normal(mu, 0.3, (n_u, e)), rng.normal(mu + 5, 0.5, (n_r, e))
    elif kind == 3:  # ranges far below one grid step
        u, r = rng.normal(mu, 0.003, (n_u, e)), rng.normal(mu, 0.004, (n_r, e))
    elif kind == 4:  # heavy tails, wide grids
        u, r = rng.standard_t(2, (n_u, e)) * 3, rng.standard_t(2, (n_r, e)) * 3 + 1
    else:  # repeated models, as a bootstrap resample has them; saturated confidences
        u = rng.normal(mu, 1, (n_u, e))[rng.integers(0, n_u, n_u)]
        r = rng.normal(mu, 1.5, (n_r, e))[rng.integers(0, n_r, n_r)]
        r[: n_r // 2] = 103.6
    return u, r


@pytest.mark.parametrize("kind", range(6))
def test_fast_interval_maximum_equals_scoring_every_pair(kind, monkeypatch):
    rng = np.random.default_rng(100 + kind)
    cases = [_case(rng, kind) for _ in range(25)]
    real, answers = ch._interval_max_epsilon, []
    monkeypatch.setattr(ch, "_interval_max_epsilon", lambda *a: answers.append(real(*a)) or
                        answers[-1])
    fast = [ch.per_example_epsilons(u, r) for u, r in cases]
    assert answers and all(a is not None for a in answers)  # the fast path ran, every time
    monkeypatch.setattr(ch, "_interval_max_epsilon", lambda *args: None)  # score every pair
    for (u, r), got in zip(cases, fast, strict=True):
        assert np.array_equal(got, ch.per_example_epsilons(u, r))


def test_grid_rows_match_numpy_linspace():
    rng = np.random.default_rng(0)
    right = np.sort(rng.normal(5, 3, 57))
    width = 1.37
    grid = ch._LeftGrid(right, width, 400)
    full = np.linspace(right - width - 2.0, right - width + 2.0, 400, axis=-1)
    assert grid.exact
    assert np.array_equal(grid.at(np.arange(57)[:, None], np.arange(400)[None]), full)
    values = np.concatenate([rng.normal(5, 3, 40), full[3, 17:20], full[10, -1:]])
    counts = np.array([[np.searchsorted(row, v, side="right") for v in values] for row in full])
    assert np.array_equal(grid.counts(values), counts)
