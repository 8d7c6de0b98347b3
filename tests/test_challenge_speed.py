"""The challenge's overheads made cheap without changing a number: population outputs predicted
in one pass and cached, bootstrap replicates shared by threads."""

import numpy as np
import torch

from obliviate.bench.populations import population_outputs, retain_masks
from obliviate.cache import ModelCache
from obliviate.data import load_scenario
from obliviate.evaluate.challenge import bin_scores, per_example_epsilons
from obliviate.evaluate.intervals import challenge_draws, forgetting_replicates
from obliviate.population import Population, predict_population


def test_threaded_replicates_equal_the_serial_loop():
    rng = np.random.default_rng(0)
    u, r = rng.normal(2, 1, (8, 12)), rng.normal(2.4, 1.3, (8, 12))
    draws = challenge_draws(6, 8, 8, 12, np.random.default_rng([3, 2023]))
    old = []  # the loop forgetting_replicates ran before it took workers
    for b in range(draws.n_boot):
        used, where = np.unique(draws.examples[b], return_inverse=True)
        eps = per_example_epsilons(u[draws.unlearned[b]][:, used], r[draws.retrained[b]][:, used])
        old.append(bin_scores(eps, 8)[where].mean())
    assert np.array_equal(forgetting_replicates(u, r, draws, workers=1), old)
    assert np.array_equal(forgetting_replicates(u, r, draws, workers=3), old)
    assert len(set(old)) > 1  # the draws differ, so a copied replicate would be caught


def test_population_outputs_are_the_per_part_predictions_and_cached(tmp_path, monkeypatch):
    sc = load_scenario("digits", recipe={"epochs": 1})
    parts = (sc.x_forget, sc.x_retain[:50], sc.splits.x_test[:40])
    cache, seeds = ModelCache(tmp_path), [7, 8, 9]
    masks = retain_masks(sc, 3)
    first = population_outputs(cache, sc, "retrainedA", 0, masks, seeds, parts)
    monkeypatch.setattr(Population, "predict", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("predicted again")))
    again = population_outputs(cache, sc, "retrainedA", 0, masks, seeds, parts)
    monkeypatch.undo()
    from obliviate.bench.populations import cached_population

    pop = cached_population(cache, sc, "retrainedA", 0, masks, seeds)
    for got, cached, x in zip(first.logits, again.logits, parts, strict=True):
        want = predict_population(pop, x)
        assert got.dtype == np.float64 and np.array_equal(got, want)
        assert np.array_equal(cached, want)
    assert first.mode == again.mode == pop.mode
    other = population_outputs(cache, sc, "retrainedA", 0, masks, seeds, parts[:2])
    assert [len(o[0]) for o in other.logits] == [len(p) for p in parts[:2]]
    assert not torch.equal(torch.from_numpy(first.logits[0][0]), torch.from_numpy(
        first.logits[0][1]))  # three different models


def test_scores_skip_the_double_threshold_only_where_the_example_scores_zero(monkeypatch):
    from obliviate.evaluate import challenge as ch

    rng = np.random.default_rng(5)
    n, e = 24, 30
    u = rng.normal(2, 1, (n, e))
    r = rng.normal(2.3, 1.2, (n, e))
    u[:, :10] += 9  # these examples are separated by a single threshold: they score 0
    want = bin_scores(per_example_epsilons(u, r), n)
    calls = []
    real = ch._interval_max_epsilon
    monkeypatch.setattr(ch, "_interval_max_epsilon", lambda *a: calls.append(1) or real(*a))
    got = ch.per_example_scores(u, r)
    assert np.array_equal(got, want)
    assert np.all(got[:10] == 0) and np.all(got[10:] > 0)  # both kinds are present
    assert len(calls) == e - 10  # skipped for exactly the separated ones
    assert np.array_equal(ch.per_example_scores(u[:3], r[:3]), bin_scores(
        per_example_epsilons(u[:3], r[:3]), 3))


def test_cnn_population_predicts_in_one_wide_pass_equal_to_each_model(monkeypatch):
    import obliviate.population_wide as pw
    from obliviate.models import build_model

    sc = load_scenario("digits")
    models = [build_model(sc.model_name, sc.input_shape, sc.num_classes, seed=s) for s in (1, 2, 3)]
    pop = Population.from_models(models)
    x = torch.cat([sc.x_forget, sc.splits.x_test[:30]])
    calls = []
    real = pw.wide_forward
    monkeypatch.setattr(pw, "wide_forward", lambda *a: calls.append(1) or real(*a))
    got = predict_population(pop, x, batch_size=50)
    assert len(calls) == -(-len(x) // 50)  # one wide forward per chunk of rows, all models
    with torch.no_grad():
        for row, model in zip(got, models, strict=True):
            np.testing.assert_allclose(row, model.eval()(x).double().numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got[0], got[1])
