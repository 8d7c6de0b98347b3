"""The challenge's runtime cut-off: the retrain time is timed as the N runs are (challenge/3)."""

import statistics

import pytest

from obliviate.bench.config import BenchConfig, resolve
from obliviate.bench.method_runs import timed_unlearn
from obliviate.bench.protocols.challenge import cutoff_seconds
from obliviate.cache import ModelCache
from obliviate.errors import ConfigError
from obliviate.timer import timed_mean


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
