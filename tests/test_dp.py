"""DP-SGD through Opacus: the target epsilon is met, seeded runs repeat, dp-original is scored."""

import copy

import pytest
import torch
from torch import nn

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.dp import DPRecipe, fit_private

pytest.importorskip("opacus")

RECIPE = ob.Recipe(optimizer="sgd", lr=0.1, epochs=4, batch_size=16)


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 10, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2)), x, y


def test_dp_training_spends_the_target_epsilon_and_repeats_with_the_seed():
    model, x, y = _problem()
    before = copy.deepcopy(model.state_dict())
    strict = fit_private(model, x, y, RECIPE, DPRecipe(epsilon=1.0, delta=1e-3), seed=5)
    loose = fit_private(model, x, y, RECIPE, DPRecipe(epsilon=8.0, delta=1e-3), seed=5)
    again = fit_private(model, x, y, RECIPE, DPRecipe(epsilon=8.0, delta=1e-3), seed=5)
    assert 0.9 <= strict.epsilon <= 1.0 + 1e-6 and 7.2 <= loose.epsilon <= 8.0 + 1e-6
    assert strict.noise_multiplier > loose.noise_multiplier  # more privacy, more noise
    for a, b in zip(loose.model.state_dict().values(), again.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    for key, value in model.state_dict().items():  # the input model is untouched
        assert torch.equal(value, before[key])
    with torch.no_grad():
        assert (loose.model(x).argmax(1) == y).float().mean() > 0.8
    assert not any(hasattr(p, "grad_sample") for p in loose.model.parameters())


def test_batchnorm_model_is_refused_with_the_fix():
    model = nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    _, x, y = _problem()
    with pytest.raises(ob.ConfigError, match="cannot be trained with DP-SGD.*GroupNorm"):
        fit_private(model, x, y, RECIPE, DPRecipe(), seed=0)


@pytest.mark.parametrize("protocol", ["quick", "challenge"])
def test_dp_original_is_scored_by_the_protocols(tmp_path, protocol):
    cfg = BenchConfig(scenario="digits", methods=["dp-original"], protocol=protocol,
                      models=3 if protocol == "challenge" else None, out=tmp_path / protocol,
                      quiet=True, set=["scenario.model=mlp", "recipe.epochs=3",
                                       "dp-original.epsilon=8"])
    board = BenchRun(cfg).run().set_index("method")
    row = board.loc["dp-original"]
    assert row["status"] == "ok"
    assert row["time_s"] < 1.0  # no unlearning step: the DP training replaces the original's
    if protocol == "quick":
        assert 0.5 < row["TA"] <= 1.0
    else:
        assert 0.0 <= row["F"] <= 1.0 and row["RA_ratio"] > 0.5
