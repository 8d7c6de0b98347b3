"""The report's figures and tables as a newcomer reads them: every method findable, nothing
hidden, nothing said twenty times (fake run directories; no training)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib
import pandas as pd
from matplotlib.collections import PathCollection

from obliviate.bench.spec import PROTOCOLS
from obliviate.evaluate.comparisons import Verdict
from obliviate.report import plots, verdicts

matplotlib.use("Agg")

# the demo's shape: two methods on the retrained model's spot, one on the original's
ROWS = [("original", 1.0, 0.992, 28.6), ("retrain (reference)", 0.0, 0.894, 30.8),
        ("retrain", 0.0, 0.889, 25.5), ("redraw", 0.003, 0.889, 7.6),
        ("random-label", 0.455, 0.919, 19.6), ("finetune", 1.0, 0.986, 9.5),
        ("neggrad+", 0.0, 0.067, 18.6)]


def _run():
    board = pd.DataFrame([{"method": m, "FA_gap": fa, "TA": ta, "time_s": t, "avg_gap": fa / 3,
                           "status": "ok", "seeds": 1} for m, fa, ta, t in ROWS])
    return SimpleNamespace(spec=PROTOCOLS.get("quick"), board=board,
                           config={"machine": {"load_average": [21.9, 20.0, 15.7], "cpus": 2}})


def _boxes(fig):
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    names = {m for m, *_ in ROWS}
    texts = [t for t in ax.texts if t.get_text() in names]
    return [t.get_window_extent(renderer) for t in texts], texts, ax


def test_tradeoff_names_every_method_without_overlaps_in_distinct_colours():
    fig = plots.tradeoff(_run())
    boxes, texts, ax = _boxes(fig)
    assert sorted(t.get_text() for t in texts) == sorted(m for m, *_ in ROWS)
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), texts[i].get_text()
    colours = plots.colours([m for m, *_ in ROWS])
    methods = [colours[m] for m, *_ in ROWS if m not in ("original", "retrain (reference)")]
    assert len(set(methods)) == len(methods) and "tab:red" not in methods  # finetune not red
    # the reference star is open and under the methods: a method on it stays visible
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    star = next(c for c in dots if c.get_sizes()[0] == 320)
    assert len(star.get_facecolors()) == 0 or star.get_facecolors()[0][3] == 0  # open
    methods_dots = [c for c in dots if c.get_sizes()[0] <= 90]
    assert len(methods_dots) == 5 and all(c.get_zorder() > star.get_zorder()
                                          for c in methods_dots)
    # retrain and redraw share a spot: the second is drawn smaller, inside the first
    same = [float(c.get_sizes()[0]) for c in methods_dots
            if tuple(c.get_offsets()[0].round(2)) == (0.0, 0.89)]
    assert len(same) == 2 and same[1] < same[0] / 2


def test_the_frontier_leaves_out_methods_that_forgot_nothing():
    fig = plots.tradeoff(_run())
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    xs = list(dashed[0].get_xdata())
    assert 1.0 not in xs and 0.455 in xs  # finetune sits on the original: not a trade-off


def test_cost_plot_says_the_load_the_times_were_measured_under():
    fig = plots.cost(_run())
    notes = [t.get_text() for t in fig.texts]
    assert any("load average when the run ended: 21.9, 20.0, 15.7" in n and "2 CPUs" in n
               for n in notes)
    boxes, texts, _ = _boxes(fig)
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), texts[i].get_text()


def test_one_seed_says_not_tested_once(monkeypatch):
    nan = math.nan
    best = [Verdict("finetune", "redraw", 0.385, nan, nan, False)]
    ref = [Verdict(m, "retrain", d, nan, nan, False) for m, d in (("redraw", 0.0016),
                                                                    ("finetune", 0.3866))]
    monkeypatch.setattr(verdicts, "comparisons", lambda run: verdicts.Comparisons(
        "avg_gap", "lower", "seeds", "retrain", best, ref))
    table = verdicts.verdict_table(None)
    cells = [c for row in table.rows for c in row]
    assert not any("not tested" in c for c in cells)
    assert "Not tested: the paired tests need 2+ seeds" in table.text
    assert table.header == ["method", "vs redraw: difference", "vs retrain: difference"]
    assert table.rows[1] == ["finetune", "+0.385", "+0.3866"]
