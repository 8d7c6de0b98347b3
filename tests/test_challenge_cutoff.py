"""The challenge's runtime cut-off: the retrain time is timed as the N runs are (challenge/3),
through their very call with the guard off, and each method's row reads a retrain time timed
around its runs, before and after them (challenge/5)."""

import statistics

import pytest

import obliviate as ob
import obliviate.bench.method_runs as method_runs
import obliviate.bench.protocols.challenge as challenge_run
import obliviate.unlearning as unlearning
from obliviate.bench.config import BenchConfig, resolve
from obliviate.bench.method_runs import timed_unlearn
from obliviate.bench.protocols.challenge import cutoff_seconds, run_seed_of, timed_run
from obliviate.bench.runner import BenchRun
from obliviate.cache import ModelCache
from obliviate.errors import ConfigError
from obliviate.timer import timed_mean
from obliviate.unlearning import resolve_method


def test_timed_mean_warms_up_then_averages():
    calls = []
    result, seconds = timed_mean(lambda: calls.append(1) or len(calls), repeats=4)
    assert result == 1 and len(calls) == 5 and seconds >= 0
    slow = iter([0.2, 0.0, 0.0, 0.0])  # the warm-up's time is left out of the mean
    _, seconds = timed_mean(lambda: __import__("time").sleep(next(slow)), repeats=3)
    assert seconds < 0.1
    with pytest.raises(ConfigError):
        timed_mean(lambda: None, repeats=0)


def test_retrain_as_a_method_reads_the_cutoff_reference_time(tmp_path):
    """Retraining through the runs' path and the cut-off reference: ratio of medians near 1
    (interleaved, so a load that comes and goes hits both). The reference also runs the retrain
    method, so this checks that both are timed alike (warm-up, then means of single calls)."""
    rb = resolve(BenchConfig("digits", methods=["retrain"], protocol="challenge", models=4,
                             set=["recipe.epochs=1"]))
    sc, info, cfg = rb.scenario, rb.methods["retrain"], rb.method_configs["retrain"]
    original = sc.train_original(0)
    refs, runs = [], []
    for _ in range(3):
        refs.append(cutoff_seconds(None, sc, 0, original))
        times = [timed_unlearn(original, sc.forget_loader(seed=i), sc.retain_loader(seed=i),
                               info, cfg, i, num_classes=sc.num_classes, recipe=sc.recipe,
                               repeated=True)[1] for i in range(4)]
        runs.append(statistics.fmean(times))
    ratio = statistics.median(runs) / statistics.median(refs)
    assert 0.7 < ratio < 1.45, (refs, runs)
    # cached: a second bench on the same cache reads the time instead of training again
    cache = ModelCache(tmp_path)
    first = cutoff_seconds(cache, sc, 0, original)
    assert cutoff_seconds(cache, sc, 0, original) == first


def test_the_reference_makes_the_runs_call_with_the_guard_off(monkeypatch):
    """The cut-off's reference retrains through exactly the call a run makes (``timed_run``:
    the same arguments, guard="off"), so it makes none of the guard's probe passes, which the
    runs do not make either; a plain ``unlearn`` with the default guard does make them."""
    sc = ob.load_scenario("digits", recipe={"epochs": 1})
    original = sc.train_original(0)
    calls, probes = [], []
    real_unlearn, real_guard = method_runs.unlearn, unlearning.Guard

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_unlearn(*args, **kwargs)

    class CountedGuard(real_guard):
        def __init__(self, *args, **kwargs):
            probes.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(method_runs, "unlearn", spy)
    monkeypatch.setattr(unlearning, "Guard", CountedGuard)
    cutoff_seconds(None, sc, 0, original)
    reference, calls[:] = list(calls), []
    assert len(reference) == 4 and not probes  # a warm-up and 3 timed calls, no probe pass
    info = resolve_method("retrain")
    timed_run(sc, original, info, info.build_config({}), run_seed_of(0, 99_999), repeated=True)

    def same(kwargs):  # the loaders are new objects per call; everything else must be equal
        return {k: v for k, v in kwargs.items() if k != "val"}, kwargs["val"] is not None

    assert [same(c) for c in reference] == [same(calls[0])] * 4
    assert all(c["guard"] == "off" for c in reference) and not probes
    unlearning.unlearn(original, sc.forget_loader(seed=1), sc.retain_loader(seed=1),
                       method="retrain", num_classes=sc.num_classes, recipe=sc.recipe)
    assert probes  # the spy sees the default guard's probes where they are made


def test_each_row_reads_the_reference_timed_around_its_runs(tmp_path, monkeypatch):
    """The seed's reference (cached) times the ceiling row; each method's row is judged by the
    mean of a retrain time timed right before and one right after its timed runs, stored as
    time_retrain_s: a method under the cut-off of its own reference but over the seed's is
    judged by its own, and the other way round. A finished bench started again re-times nothing."""
    real, events = challenge_run.timed_run, []
    # the seed's, then neggrad's before and after its runs, then finetune's before and after
    references = iter([1e-6, 1e3, 3e3, 1e-6, 3e-6])

    def timed(sc, original, info, cfg, run_seed, **timing):
        if info.name == "retrain":  # the reference: its time only, the model is not used
            events.append(("retrain", next(references)))
            return original, events[-1][1]
        events.append((info.name, "single" if timing.get("mean") else "run"))
        return real(sc, original, info, cfg, run_seed, **timing)

    monkeypatch.setattr(challenge_run, "timed_run", timed)
    real_boot, boots = challenge_run.bootstrap_arrays, []

    def bootstrap(*args, **kwargs):
        out = real_boot(*args, **kwargs)
        if kwargs.get("times") is not None:  # a method's row: its replicates of time_ratio
            boots.append((kwargs["retrain_seconds"], out))
        return out

    monkeypatch.setattr(challenge_run, "bootstrap_arrays", bootstrap)

    def bench():
        return BenchRun(BenchConfig(
            "digits", methods=["neggrad", "finetune"], protocol="challenge", models=3,
            out=tmp_path / "run", cache=tmp_path / "cache", quiet=True,
            set=["recipe.epochs=2", "finetune.epochs=1", "neggrad.epochs=1",
                 "protocol.n_boot=4", "protocol.chunk_size=3"])).run().set_index("method")

    board = bench()
    # neggrad's 3 runs one by one, finetune's as one population then one single run timed
    assert events == [("retrain", 1e-6), ("retrain", 1e3), *[("neggrad", "run")] * 3,
                      ("retrain", 3e3), ("retrain", 1e-6), ("finetune", "single"),
                      ("retrain", 3e-6)]
    ceiling = board.loc["retrain (reference)"]
    assert ceiling["time_s"] == ceiling["time_retrain_s"] == 1e-6 and ceiling["time_ratio"] == 1.0
    for method, own in (("neggrad", 2e3), ("finetune", 2e-6)):
        row = board.loc[method]
        assert row["time_retrain_s"] == own
        assert row["time_ratio"] == pytest.approx(row["time_s"] / own)
        assert row["time_s"] > 0.2 * 1e-6  # over the cut-off of the seed's reference
    for (reference, out), own in zip(boots, (2e3, 2e-6), strict=True):  # replicates alike
        assert reference == own
        assert out["time_ratio_boot"] == pytest.approx(out["time_s_boot"] / own)
    assert board.loc["neggrad", "status"] != "over cut-off"
    assert board.loc["finetune", "status"] == "over cut-off"
    assert board.loc["finetune", "score"] == 0.0
    events.clear()
    again = bench()
    assert events == []  # the seed's reference is cached, the rows keep theirs
    assert again["time_retrain_s"].equals(board["time_retrain_s"])
