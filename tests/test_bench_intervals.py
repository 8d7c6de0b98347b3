"""Intervals, collapse flags and verdicts through the bench, the leaderboard and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.bench.store import ResultStore
from obliviate.report import write_report


def test_scrub_at_five_epochs_is_flagged_collapsed(tmp_path):
    # the issue's case: digits' scrub.lr=0.05 was tuned with the 30-epoch recipe; at 5 epochs
    # one seed ends at chance, which the status must say (finetune stays healthy)
    board = BenchRun(BenchConfig("digits", methods=["scrub", "finetune"], seeds=3,
                                 set=["recipe.epochs=5", "finetune.epochs=1"], out=tmp_path / "q",
                                 quiet=True)).run().set_index("method")
    scrub = board.loc["scrub", "status"]
    assert scrub.startswith("collapsed: ") and "near chance" in scrub
    assert "tuned defaults scrub.lr=0.05" in scrub and \
        "used with recipe.epochs=5 (tuned with 30)" in scrub
    assert board.loc["finetune", "status"] == "ok"
    assert board.loc["original", "status"] == "ok"
    for name in ("RA", "TA", "MIA", "avg_gap"):  # t over 3 seeds, or MIA's bootstrap
        lo, mid, hi = board.loc["finetune", [f"{name}_lo", name, f"{name}_hi"]]
        assert lo <= mid <= hi and hi > lo
    assert np.isnan(board.loc["finetune", "time_s_lo"])  # wall times carry no interval
    md = write_report(tmp_path / "q").markdown.read_text()
    assert "## Statistical comparisons (avg_gap, lower is better)" in md
    assert "paired t-test over seeds" in md and "Holm" in md and " [" in md


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    root = tmp_path_factory.mktemp("challenge-intervals")
    run = BenchRun(BenchConfig("digits", methods=["finetune", "retrain"], protocol="challenge",
                               models=4, out=root / "c", quiet=True,
                               set=["recipe.epochs=4", "finetune.epochs=1", "retrain.epochs=4",
                                    "protocol.n_boot=6", "protocol.cutoff=100"]))
    return run, run.run().set_index("method"), root


def test_challenge_rows_carry_bootstrap_intervals(challenge):
    run, board, _ = challenge
    for method in ("retrain (reference)", "finetune"):
        row = board.loc[method]
        for name in ("F", "score", "RA_ratio", "TA_ratio"):
            assert 0 <= row[f"{name}_lo"] <= row[name] <= row[f"{name}_hi"]
    ft = board.loc["finetune"]
    ceiling = board.loc["retrain (reference)"]
    # the ceiling's interval sits next to F's, in the method's row too
    assert (ft["F_ceiling_lo"], ft["F_ceiling_hi"]) == (ceiling["F_lo"], ceiling["F_hi"])
    assert ft["F_ratio_lo"] <= ft["F_ratio"] <= ft["F_ratio_hi"]
    with ResultStore(run.out / "results.sqlite") as store:
        job = next(j for j in run.jobs if j.method == "finetune")
        arrays = store.arrays(job.key)
        ref = store.arrays(next(j for j in run.jobs if j.kind == "retrain").key)
    assert arrays["F_boot"].shape == (6,) and arrays["RA_runs"].shape == (4,)
    assert np.array_equal(arrays["F_ceiling_boot"], ref["F_boot"])  # paired by the seed's draws


def test_challenge_numbers_do_not_depend_on_the_bootstrap(challenge):
    # the same bench without intervals: the same metric values, no interval columns filled
    _, board, root = challenge
    plain = BenchRun(BenchConfig("digits", methods=["finetune", "retrain"], protocol="challenge",
                                 models=4, out=root / "plain", cache=root / "c" / "models",
                                 quiet=True,
                                 set=["recipe.epochs=4", "finetune.epochs=1", "retrain.epochs=4",
                                      "protocol.n_boot=0", "protocol.cutoff=100"])).run()
    plain = plain.set_index("method")
    cols = ["F", "F_ceiling", "F_ratio", "score", "RA_ratio", "TA_ratio", "FA"]
    pd.testing.assert_frame_equal(plain[cols], board.loc[plain.index, cols])
    assert plain["F_lo"].isna().all()


def test_challenge_report_shows_intervals_and_verdicts(challenge):
    _, _, root = challenge
    md = write_report(root / "c").markdown.read_text()
    assert "## Statistical comparisons (score, higher is better)" in md
    assert "paired bootstrap z-test" in md and "vs retrain (reference)" in md
    row = next(line for line in md.splitlines() if line.startswith("| finetune |"))
    assert " [" in row and "]" in row


def test_tuning_mismatch_names_what_differs():
    assert ob.load_scenario("digits").tuning_mismatch() == []
    assert ob.load_scenario("digits", recipe={"epochs": 5}).tuning_mismatch() == \
        ["recipe.epochs=5 (tuned with 30)"]
    mlp = ob.load_scenario("digits", model="mlp").tuning_mismatch()
    assert "scenario.model=mlp (tuned with cnn)" in mlp and \
        "recipe.epochs=40 (tuned with 30)" in mlp
