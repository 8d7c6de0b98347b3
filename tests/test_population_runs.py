"""The challenge's N unlearning runs as one population (finetune's capability, challenge/4)."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

import obliviate as ob
import obliviate.bench.method_runs as method_runs
import obliviate.bench.protocols.challenge as challenge_run
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.errors import TrainingDivergedError
from obliviate.population import predict_population
from obliviate.population_runs import train_runs
from obliviate.train import Recipe, tensor_loader
from obliviate.unlearning import METHODS, resolve_method

SETS = ["recipe.epochs=3", "finetune.epochs=1", "protocol.n_boot=0", "protocol.chunk_size=2"]
COLUMNS = ["method", "F", "F_ceiling", "RA", "TA", "FA", "RA_ratio", "TA_ratio"]


@pytest.fixture(scope="module")
def cnn_digits():
    sc = ob.load_scenario("digits", model="cnn", recipe={"epochs": 1})
    return sc, sc.train_original(0)


CAPABLE = [n for n in METHODS.names() if METHODS.get(n).population is not None]
assert "finetune" in CAPABLE


@pytest.mark.parametrize("name", CAPABLE)
def test_member_i_is_the_single_run_with_seed_i(cnn_digits, name):
    """Every method that declares the capability: in float64 the population and the runs agree
    to rounding (same start, the original's weights; same batches in the same order; same
    update and schedule)."""
    sc, original = cnn_digits
    original = copy.deepcopy(original).double()
    info = resolve_method(name)
    fields = {f.name for f in dataclasses.fields(info.config)}
    cfg = info.build_config({"epochs": 2} if "epochs" in fields else {})
    seeds, xr, xf = [3, 100_001, 7], sc.x_retain.double(), sc.x_forget.double()
    pop = info.population(original, xr, sc.y_retain, cfg, seeds, batch_size=64, chunk_size=2)
    assert pop.mode == "wide" and len(pop) == 3
    together = predict_population(pop, xf)
    for i, s in enumerate(seeds):  # the loaders the challenge gives a run with seed s
        run = ob.unlearn(original, tensor_loader(xf, sc.y_forget, 64, shuffle=True, seed=s),
                         tensor_loader(xr, sc.y_retain, 64, shuffle=True, seed=s + 1),
                         method=info, seed=s, config=cfg, guard="off")
        with torch.no_grad():
            np.testing.assert_allclose(together[i], run(xf).numpy(), rtol=0, atol=1e-9)
    assert not torch.equal(pop.params[next(iter(pop.params))][0],
                           pop.params[next(iter(pop.params))][1])  # seeds give other orders


def test_float32_member_matches_its_run(cnn_digits):
    sc, original = cnn_digits
    info, s = resolve_method("finetune"), 100_002
    pop = info.population(original, sc.x_retain, sc.y_retain, info.build_config({"epochs": 1}),
                          [s], batch_size=64)
    run = ob.unlearn(original, sc.forget_loader(seed=s), sc.retain_loader(seed=s),
                     method="finetune", seed=s, epochs=1, guard="off")
    with torch.no_grad():
        np.testing.assert_allclose(predict_population(pop, sc.x_forget)[0],
                                   run(sc.x_forget).numpy(), rtol=0, atol=1e-4)


def test_what_the_population_cannot_do_is_said_not_done(cnn_digits):
    sc, original = cnn_digits
    frozen = copy.deepcopy(original)
    next(frozen.parameters()).requires_grad_(False)
    recipe = Recipe(lr=0.1, epochs=1)
    assert "frozen" in train_runs(frozen, sc.x_retain, sc.y_retain, recipe, [0])
    noisy = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10),
                                torch.nn.AlphaDropout(0.1))
    assert "AlphaDropout" in train_runs(noisy, sc.x_retain, sc.y_retain, recipe, [0])
    info = resolve_method("finetune")
    cfg = info.build_config({"epochs": 1})
    auto = type(cfg).__new__(type(cfg))
    object.__setattr__(auto, "__dict__", {**cfg.__dict__, "lr": "auto"})
    assert "not all numbers" in info.population(original, sc.x_retain, sc.y_retain, auto, [0],
                                                batch_size=64)


def _bench(root, name, *extra):
    return BenchRun(BenchConfig(scenario="digits", methods=["finetune"], protocol="challenge",
                                models=4, out=root / name, cache=root / "cache", quiet=True,
                                set=[*SETS, *extra]))


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    root = tmp_path_factory.mktemp("population-runs")
    one_by_one = _bench(root, "loop", "protocol.population_runs=false").run()
    return root, one_by_one, _bench(root, "population").run()


def test_population_runs_give_the_per_run_numbers(boards):
    """The same F; the accuracies up to a near-tie that float rounding flips (float32: the
    population sums gradients in another order than the loop, and training amplifies it; here
    one test and one retain example of one run of 4)."""
    _, one_by_one, together = boards
    a, b = (board.set_index("method").loc["finetune"] for board in (one_by_one, together))
    assert b["F"] == pytest.approx(a["F"], abs=1e-6) and b["F_ceiling"] == a["F_ceiling"]
    sc = ob.load_scenario("digits", recipe={"epochs": 3})
    sizes = {"RA": len(sc.y_retain), "TA": len(sc.splits.y_test), "FA": len(sc.y_forget)}
    for col, size in sizes.items():  # at most 2 of the 4 runs' predictions moved
        assert abs(b[col] - a[col]) * 4 * size <= 2 + 1e-9, col
    assert "time_population_s" in b.index and "time_population_s" not in a.index


def test_the_cutoff_reads_one_timed_single_run(boards, monkeypatch):
    """time_s is one run through the runs' call timed by timed_mean, not population wall / N,
    against the row's own reference, the mean of one timed before and one after it
    (challenge/5); the amortised seconds are kept apart as time_population_s."""
    root, _, together = boards
    seconds = iter([60.0, 7.0, 80.0])  # the row's own retrain time before, its single run, after

    def fake_mean(work):
        return work(), next(seconds)

    monkeypatch.setattr(method_runs, "timed_mean", fake_mean)
    board = _bench(root, "timed").run().set_index("method")
    row = board.loc["finetune"]
    assert next(seconds, None) is None and row["time_s"] == 7.0 and row["time_retrain_s"] == 70.0
    assert row["time_ratio"] == pytest.approx(0.1)
    assert 0 < row["time_population_s"] < 7.0 and row["F"] == together.set_index("method").loc[
        "finetune", "F"]


def test_a_bench_killed_mid_population_resumes_with_the_chunk_in_flight(boards, monkeypatch):
    root, _, together = boards
    real, chunks = challenge_run.ChallengeDriver._population_chunk, []

    def killed_on_the_second_chunk(self, info, cfg, seed, indices):
        chunks.append(list(indices))
        if len(chunks) == 2:
            raise KeyboardInterrupt  # the process dies here: not a failure of the method
        return real(self, info, cfg, seed, indices)

    monkeypatch.setattr(challenge_run.ChallengeDriver, "_population_chunk",
                        killed_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        _bench(root, "killed").run()
    resumed = _bench(root, "killed").run()
    assert chunks == [[0, 1], [2, 3], [2, 3]]  # runs 0-1 kept; the chunk in flight redone
    assert resumed[COLUMNS].equals(together[COLUMNS])


def test_a_population_that_fails_fails_its_row_alone(boards, monkeypatch):
    root, _, _ = boards

    def diverges(self, info, cfg, seed, indices):
        raise TrainingDivergedError("finetune: the loss became nan")

    def refuse(*args, **kwargs):
        raise AssertionError("the failed runs were started again one by one")

    monkeypatch.setattr(challenge_run.ChallengeDriver, "_population_chunk", diverges)
    monkeypatch.setattr(challenge_run, "repeated_runs", refuse)
    run = _bench(root, "diverged")
    board = run.run().set_index("method")
    assert board.loc["finetune", "status"] != "ok" and "loss became nan" in run.failures[0]
    assert board.loc["retrain (reference)", "status"] == "ok"


def test_runs_that_cannot_be_a_population_go_one_by_one_with_a_note(boards, monkeypatch):
    root, one_by_one, _ = boards
    monkeypatch.setattr(challenge_run.ChallengeDriver, "_population_chunk",
                        lambda *args: "its AlphaDropout layer draws noise this population does "
                                      "not reproduce")
    run = _bench(root, "fallback")
    board = run.run()
    assert board[COLUMNS].equals(one_by_one[COLUMNS])  # the per-run path's very numbers
    assert any("went one by one" in note and "AlphaDropout" in note for note in run.notes)
