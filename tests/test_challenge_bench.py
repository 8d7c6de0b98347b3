"""The challenge protocol through the bench: ceiling, determinism, cache reuse, cut-off."""

import numpy as np
import pytest

import obliviate.bench.populations as populations
import obliviate.bench.protocols.challenge as challenge_run
import obliviate.data.scenario as scenario_module
from obliviate.bench.config import BenchConfig
from obliviate.bench.kit import Kit
from obliviate.bench.runner import BenchRun
from obliviate.evaluate.challenge import forgetting_quality

FAST = ["recipe.epochs=6", "finetune.epochs=1", "neggrad.lr=0.05"]


def _bench(out, cache, **kw):
    cfg = dict(scenario="digits", methods=["finetune", "neggrad"], protocol="challenge",
               models=6, out=out, cache=cache, set=FAST)
    cfg.update(kw)
    return BenchRun(BenchConfig(**cfg))


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("challenge")
    run = _bench(root / "a", root / "cache")
    return run, run.run(), root


def test_ceiling_row_is_retrain_against_retrain(first):
    run, board, _ = first
    sc = run.rb.scenario
    driver = challenge_run.ChallengeDriver(Kit(run), run.rb.protocol_options, 6)
    a = challenge_run.population_side(driver._population(0, "A"), sc)
    b = challenge_run.population_side(driver._population(0, "B"), sc)
    row = board.set_index("method").loc["retrain (reference)"]
    assert row["F"] == pytest.approx(forgetting_quality(b.conf, a.conf))
    methods = board.set_index("method")
    assert methods.loc["finetune", "F_ceiling"] == pytest.approx(row["F"])
    assert methods.loc["original", "F"] == 0.0  # one deterministic model: the peaky rule
    assert set(board["method"]) == {"original", "retrain (reference)", "finetune", "neggrad"}


def test_same_inputs_same_numbers_and_second_run_trains_nothing(first, monkeypatch):
    run, board, root = first

    def refuse(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(populations, "train_population", refuse)
    monkeypatch.setattr(scenario_module, "train_model", refuse)
    # a new run directory sharing the cache: every reference, the populations' outputs and
    # the ceiling row (with its replicates) come from the cache
    again = _bench(root / "b", root / "cache").run()
    cols = ["method", "F", "F_lo", "F_hi", "F_ceiling", "RA_ratio", "TA_ratio", "FA"]
    assert again[cols].equals(board[cols])


def test_runtime_cutoff_zeroes_the_score(first):
    _, _, root = first
    board = _bench(root / "c", root / "cache", methods=["finetune"],
                   set=[*FAST[:2], "protocol.cutoff=0.0001"]).run().set_index("method")
    assert board.loc["finetune", "score"] == 0.0
    assert board.loc["finetune", "F"] > 0.0
    assert board.loc["finetune", "status"] == "over cut-off"


def test_epsilons_are_stored_per_example(first):
    run, _, _ = first
    from obliviate.bench.store import ResultStore

    with ResultStore(run.out / "results.sqlite") as store:
        job = next(j for j in run.jobs if j.method == "neggrad")
        eps = store.example_values(job.key, "epsilon")
    assert eps.shape == (len(run.rb.scenario.forget_idx),)
    assert np.all((eps >= 0) & (eps <= 50))


def overflowing(model, data, cfg):
    """A user method whose weights stay finite but whose logits overflow to infinity."""
    import copy

    import torch

    out = copy.deepcopy(model)
    with torch.no_grad():
        out.classifier.weight.fill_(3e38)
        out.classifier.bias.fill_(3e38)
    return out


def test_a_method_with_infinite_outputs_fails_alone(first):
    _, _, root = first
    board = _bench(root / "d", root / "cache",
                   methods=["finetune", "test_challenge_bench:overflowing"],
                   set=[*FAST[:2], "protocol.cutoff=1000"]).run()  # not about the cut-off
    board = board.set_index("method")
    status = board.loc["test_challenge_bench:overflowing", "status"]
    assert status.startswith("failed") and "NaN or infinite" in status
    assert board.loc["finetune", "status"] == "ok"
