"""Population training with torch.func matches the reference loop, model by model."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate import population
from obliviate.evaluate.utility import accuracy
from obliviate.models import build_model
from obliviate.population import Population, predict_population, train_population
from obliviate.train import train_model


@pytest.fixture(scope="module")
def mlp_digits():
    return ob.load_scenario("digits", forget="random:0.1", seed=0, model="mlp")


def _train(sc, masks, seeds, recipe, **kwargs) -> Population:
    s = sc.splits
    return train_population(sc.model_name, sc.input_shape, sc.num_classes, s.x_train, s.y_train,
                            masks, seeds, recipe, **kwargs)


def _random_masks(n_models: int, n: int, keep: float, seed: int = 0) -> torch.Tensor:
    return torch.rand(n_models, n, generator=torch.Generator().manual_seed(seed)) < keep


def _assert_same_weights(a: dict, b: dict, **tolerance) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name, **tolerance)


@pytest.mark.parametrize(("model", "optimizer", "lr"),
                         [("mlp", "sgd", 0.05), ("mlp", "adam", 1e-3), ("cnn", "sgd", 0.05)])
def test_one_model_follows_train_model_step_for_step(model, optimizer, lr):
    sc = ob.load_scenario("digits", forget="random:0.1", seed=0, model=model)
    recipe = dataclasses.replace(sc.recipe, epochs=2, optimizer=optimizer, lr=lr)
    mask = torch.zeros(len(sc.splits.y_train), dtype=torch.bool)
    mask[sc.retain_idx] = True
    pop = _train(sc, mask[None], [7], recipe)
    ref, _ = train_model(sc.model_name, sc.input_shape, sc.num_classes, sc.x_retain,
                         sc.y_retain, recipe, seed=7)
    _assert_same_weights(pop.state_dicts()[0], ref.state_dict(), rtol=1e-4, atol=1e-5)


def test_same_seeds_give_identical_weights(mlp_digits):
    recipe = dataclasses.replace(mlp_digits.recipe, epochs=1)
    masks = _random_masks(3, len(mlp_digits.splits.y_train), 0.7)
    first, second = (_train(mlp_digits, masks, [0, 1, 2], recipe) for _ in range(2))
    for a, b in zip(first.state_dicts(), second.state_dicts(), strict=True):
        _assert_same_weights(a, b, rtol=0, atol=0)


def test_initial_weights_are_build_models(mlp_digits):
    sc = mlp_digits
    recipe = dataclasses.replace(sc.recipe, epochs=0)
    pop = _train(sc, _random_masks(2, len(sc.splits.y_train), 0.5), [3, 11], recipe)
    for seed, state in zip([3, 11], pop.state_dicts(), strict=True):
        built = build_model(sc.model_name, sc.input_shape, sc.num_classes, seed=seed)
        _assert_same_weights(state, built.state_dict(), rtol=0, atol=0)


def test_padded_steps_leave_smaller_models_untouched(mlp_digits):
    """Models with fewer members sit out the padded steps, so company does not change them."""
    sc = mlp_digits
    recipe = dataclasses.replace(sc.recipe, epochs=2)
    n = len(sc.splits.y_train)
    masks = torch.stack([torch.ones(n, dtype=torch.bool), _random_masks(1, n, 0.4)[0],
                         _random_masks(1, n, 0.08, seed=1)[0]])  # ~1258, ~500 and ~100 members
    together = _train(sc, masks, [0, 1, 2], recipe)
    for i in (1, 2):
        alone = _train(sc, masks[i:i + 1], [i], recipe)
        _assert_same_weights(together.state_dicts()[i], alone.state_dicts()[0],
                             rtol=1e-5, atol=1e-6)
    chunked = _train(sc, masks, [0, 1, 2], recipe, chunk_size=2)
    for a, b in zip(together.state_dicts(), chunked.state_dicts(), strict=True):
        _assert_same_weights(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("model", "epochs"), [("mlp", 8), ("cnn", 4)])
def test_population_accuracy_matches_the_loop(model, epochs):
    sc = ob.load_scenario("digits", forget="random:0.1", seed=0, model=model)
    s, recipe, seeds = sc.splits, dataclasses.replace(sc.recipe, epochs=epochs), list(range(8))
    masks = _random_masks(8, len(s.y_train), 0.9, seed=5)
    pop = _train(sc, masks, seeds, recipe)
    loop = [train_model(sc.model_name, sc.input_shape, sc.num_classes, s.x_train[m],
                        s.y_train[m], recipe, seed)[0] for m, seed in zip(masks, seeds, strict=True)]
    y = s.y_test.numpy()
    pop_acc = [accuracy(z, y) for z in predict_population(pop, s.x_test)]
    loop_acc = [accuracy(z, y) for z in predict_population(loop, s.x_test)]
    assert abs(np.mean(pop_acc) - np.mean(loop_acc)) <= 0.01
    # Same data order, so each model should agree with its loop twin to within a few examples.
    assert np.abs(np.subtract(pop_acc, loop_acc)).max() <= 0.02
    assert min(pop_acc) >= 0.85


def test_predictions_match_the_modules(mlp_digits):
    sc = mlp_digits
    recipe = dataclasses.replace(sc.recipe, epochs=1)
    pop = _train(sc, _random_masks(2, len(sc.splits.y_train), 0.5), [0, 1], recipe)
    x = sc.splits.x_test
    logits = predict_population(pop, x, batch_size=100)
    assert logits.shape == (2, len(x), sc.num_classes) and logits.dtype == np.float64
    for row, model in zip(logits, pop.models(), strict=True):
        assert not model.training and all(p.requires_grad for p in model.parameters())
        with torch.no_grad():
            np.testing.assert_allclose(row, model(x).double().numpy(), rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_refused(mlp_digits):
    sc = mlp_digits
    n = len(sc.splits.y_train)
    masks = torch.ones(2, n, dtype=torch.bool)
    with pytest.raises(ob.DataError, match=r"masks must be a bool tensor shaped \(models, 1258\)"):
        _train(sc, masks[:, :-1], [0, 1], sc.recipe)
    with pytest.raises(ob.DataError, match="masks must be a bool tensor"):
        _train(sc, masks.float(), [0, 1], sc.recipe)
    with pytest.raises(ob.ConfigError, match="seeds has 3 entries but masks has 2 rows"):
        _train(sc, masks, [0, 1, 2], sc.recipe)
    empty = masks.clone()
    empty[1] = False
    with pytest.raises(ob.DataError, match=r"models \[1\] select no examples"):
        _train(sc, empty, [0, 1], sc.recipe)
    with pytest.raises(ob.ConfigError, match="chunk_size must be an int >= 1"):
        _train(sc, masks, [0, 1], sc.recipe, chunk_size=0)
    with pytest.raises(ob.DataError, match="x has 1258 examples but y has 10"):
        train_population("mlp", sc.input_shape, 10, sc.splits.x_train, sc.splits.y_train[:10],
                         masks, [0, 1], sc.recipe)
    with pytest.raises(ob.DataError, match="at least one model"):
        predict_population([], sc.splits.x_test)


def test_docstring_example_runs():
    assert doctest.testmod(population, raise_on_error=True).failed == 0


class _HiddenActivation(torch.nn.Module):
    """Applies a ReLU in forward that is not a registered layer: the chain of layers is wrong."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1),
                                            torch.nn.Flatten(), torch.nn.Linear(128, 8))
        self.classifier = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.classifier(torch.relu(self.features(x)))


def test_wide_form_is_used_only_where_it_computes_the_model():
    from obliviate.population_wide import wide_loss

    x = torch.randn(5, 1, 8, 8)
    for name, wide in (("cnn", True), ("mlp", False)):  # dense-only: vmap is as fast
        skeleton = build_model(name, (1, 8, 8), 10, seed=0)
        stacked = Population.from_models([build_model(name, (1, 8, 8), 10, seed=s)
                                          for s in (0, 1)])
        assert (wide_loss(skeleton, stacked.params, x) is not None) == wide, name
    hidden = [_HiddenActivation() for _ in range(2)]
    stacked = Population.from_models(hidden)
    assert wide_loss(hidden[0], stacked.params, x) is None  # the probe sees different logits
    with_norm = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8),
                                     torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 4))
                 for _ in range(2)]
    stacked = Population.from_models(with_norm)
    assert wide_loss(with_norm[0], stacked.params, x) is None  # buffers: vmap instead


def test_wide_gradients_equal_each_models_own_gradient():
    from obliviate.population_wide import wide_loss

    models = [build_model("cnn", (1, 8, 8), 10, seed=s) for s in (0, 1, 2)]
    pop = Population.from_models(models)
    x, y = torch.randn(3, 6, 1, 8, 8), torch.randint(0, 10, (3, 6))
    w = torch.ones(3, 6)
    w[2, 3:] = 0  # model 2 has only three real examples in this batch
    grads = torch.func.grad(wide_loss(models[0], pop.params, x[0, :2]))(pop.params, x, y, w)
    for i, model in enumerate(models):
        model.zero_grad()
        keep = w[i].bool()
        torch.nn.functional.cross_entropy(model(x[i][keep]), y[i][keep]).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name][i], p.grad, rtol=1e-4, atol=1e-6)
