"""The robustness protocol through the bench: classifiers and language models, every attack
beside the retrained model under the same attack."""

import pandas as pd
import pytest

from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import PROTOCOLS
from obliviate.report import write_report
from test_llm_track import toy_models


def board(out, **cfg):
    BenchRun(BenchConfig(out=out, quiet=True, protocol="robustness", **cfg)).run()
    return pd.read_csv(out / "leaderboard.csv").set_index("method")


def test_a_class_the_retrained_model_never_saw_comes_back_less_on_it(tmp_path):
    # class:3 forgotten: the original classifies the class, the retrained model cannot; 16
    # relearning steps on 10% of it bring the rest back to the original more than to retrain
    out = tmp_path / "digits"
    b = board(out, scenario="digits", forget="class:3", methods=["neggrad+"],
              set=["scenario.model=mlp"])
    orig, ret = b.loc["original"], b.loc["retrain (reference)"]
    assert orig["forget"] > 0.9 and ret["forget"] < 0.1
    assert ret["relearn_gap"] == 0 and ret["quant4_gap"] == 0 and ret["quant8_gap"] == 0
    assert orig["relearn_gap"] > 0.05  # knowledge that was there returns faster
    assert orig["quant8_gap"] > 0.9  # 8-bit rounding keeps what the original knew
    assert b.loc["neggrad+", "forget"] < 0.5  # the method forgot, before any attack
    assert {"para_gap", "relearn_fq"}.isdisjoint(b.columns)  # language-model columns only
    written = write_report(out)
    assert "robustness" in written.markdown.read_text()


def test_the_lm_track_attacks_and_compares_with_the_retain_only_model(tmp_path_factory,
                                                                       tmp_path):
    sc, original, retain, cache = toy_models(tmp_path_factory)
    b = board(tmp_path / "lm", scenario="tofu-mini", forget="authors:0.25", methods=["ga"],
              cache=cache, set=["scenario.size=toy", "protocol.steps=4", "ga.epochs=2"])
    orig, ret = b.loc["original"], b.loc["retrain (reference)"]
    for col in ("relearn_gap", "quant8_gap", "quant4_gap", "para_gap"):
        assert ret[col] == pytest.approx(0.0), col
    assert orig["forget"] > ret["forget"]  # the original answers its forget authors better
    assert orig["para_gap"] > 0  # ... also when asked in other words
    assert orig["relearn_fq"] < ret["relearn_fq"]
    assert b.loc["ga", "forget"] < orig["forget"]


def test_the_protocol_is_registered_for_both_tasks_with_its_version():
    spec = PROTOCOLS.get("robustness")
    assert spec.version == "robustness/1" and set(spec.tasks) == {"classification", "lm"}
    assert spec.ranking == ("relearn_gap", "lower")
