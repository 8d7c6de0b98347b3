"""The language-model track end to end on a tiny configuration: fine-tuning memorises authors,
every method forgets them, and the bench stores, resumes and ranks like the other protocols."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.llm import LM_METHODS, evaluate_lm, load_tofu, unlearn_lm
from obliviate.llm.evaluate import answer_nll, generate
from obliviate.llm.metrics import rouge_l_recall

TINY = {"size": "toy"}  # 12 authors, a 2-block GPT-2 of width 48 (scenario.SIZES["toy"])
RECIPE: dict = {}
FAST = {"epochs": 3, "lr": 3e-3, "batch_size": 8}


def toy_models(tmp_path_factory, forget: str = "authors:0.25"):
    """The toy scenario with its original and retain-only models, cached once per session (the
    other LM test files call this too, and find the models in the same folder)."""
    cache = tmp_path_factory.getbasetemp() / "lm-toy-cache"
    sc = load_tofu(forget, **TINY)
    original, _ = sc.train_original_timed(0, cache=cache)
    retain, _ = sc.train_retrained_timed(0, cache=cache)
    return sc, original, retain, cache


@pytest.fixture(scope="module")
def tofu(tmp_path_factory):
    return toy_models(tmp_path_factory)


def forget_nll(model, sc):
    qs = [q.question for q in sc.forget_qa]
    return float(answer_nll(model, sc.tokenizer, qs, [q.answer for q in sc.forget_qa]).mean())


def test_finetuning_memorises_the_forget_authors(tofu):
    sc, original, retain, _ = tofu
    assert len(sc.forget_qa) == 3 * 7
    m_ret, a_ret = evaluate_lm(retain, sc)
    m_orig, _ = evaluate_lm(original, sc, a_ret["forget_truth_ratio"])
    assert m_orig["forget_prob"] > m_ret["forget_prob"] + 0.1
    assert m_orig["forget_rouge"] > m_ret["forget_rouge"]
    # forget authors were trained on, held-out ones not: the original tells them apart better
    # (21 sequences a side, so the retain-only model's AUC strays from 0.5 by chance)
    assert m_orig["mia_loss"] > max(0.6, m_ret["mia_loss"])
    assert 0.0 <= m_orig["forget_quality"] < 0.05  # the original is told apart from retain-only
    for name in ("model_utility", "retain_prob", "world_prob", "forget_truth_ratio"):
        assert 0.0 < m_orig[name] <= 1.0


def test_generation_answers_memorised_questions(tofu):
    sc, original, retain, _ = tofu
    qs = sc.retain_qa[:14]
    answers = generate(original, sc.tokenizer, [q.question for q in qs])
    assert all(a and "\n" not in a for a in answers)  # stops at the end token, no prompt echo
    # the answer or its paraphrase (both were trained), word for word for the most part
    score = np.mean([max(rouge_l_recall(a, q.answer), rouge_l_recall(a, q.paraphrase))
                     for a, q in zip(answers, qs, strict=True)])
    assert score > 0.6
    one = generate(original, sc.tokenizer, [qs[0].question])
    assert one[0] == answers[0]  # batching and right padding do not change a greedy answer


def test_cache_returns_identical_models(tofu):
    sc, original, _, cache = tofu
    again, seconds = sc.train_original_timed(0, cache=cache)
    for (k, a), b in zip(original.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert seconds > 0


def check_lm_contract(tofu, method):
    """The contract of a language-model method (raises AssertionError on a breach)."""
    sc, original, _, _ = tofu
    before = {k: v.clone() for k, v in original.state_dict().items()}
    overrides = {"steps": 30, "layer": 1, "update_layers": (0, 1), "steering_coeff": 20.0,
                 "lr": 3e-2, "batch_size": 8} if method == "rmu" else dict(FAST)
    if method in ("npo", "npo+gd", "idk-dpo", "altpo"):
        overrides["lr"] = 1e-2
    if method == "altpo":  # five alternatives per answer: one epoch is five passes
        overrides.update(epochs=1, batch_size=16)
    if method == "satimp":
        overrides["forget_coeff"] = 1.0
    args = dict(forget_idk=sc.forget_idk_set(), forget_alt=sc.forget_alt_set(), method=method,
                seed=1, **overrides)
    a = unlearn_lm(original, sc.forget_set(), sc.retain_set(), **args)
    b = unlearn_lm(original, sc.forget_set(), sc.retain_set(), **args)
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k])  # the input model is untouched
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))
    # RMU moves activations, not answers, so its effect on the answer NLL is the smallest
    rise = forget_nll(a, sc) - forget_nll(original, sc)
    assert rise > (0.08 if method == "rmu" else 0.2), f"{method} did not forget: NLL +{rise:.3f}"


@pytest.mark.parametrize("method", sorted(LM_METHODS.names()))
def test_every_method_forgets_and_is_deterministic(tofu, method):
    check_lm_contract(tofu, method)


@pytest.mark.parametrize("method", sorted(LM_METHODS.names()))
def test_a_language_model_method_that_does_nothing_fails_the_contract(tofu, method,
                                                                      monkeypatch):
    import dataclasses

    from obliviate.unlearning import METHODS

    info = METHODS.get(method)

    def does_nothing(model, data, cfg):
        return model

    monkeypatch.setitem(METHODS._entries, method, dataclasses.replace(info, fn=does_nothing))
    with pytest.raises(AssertionError, match="did not forget"):
        check_lm_contract(tofu, method)


def test_ga_lowers_forget_probability_and_lora_merges(tofu):
    sc, original, retain, _ = tofu
    ga = unlearn_lm(original, sc.forget_set(), method="ga", **FAST)
    m_ga, _ = evaluate_lm(ga, sc)
    m_orig, _ = evaluate_lm(original, sc)
    assert m_ga["forget_prob"] < m_orig["forget_prob"] - 0.1
    lora = unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="grad-diff",
                      lora_rank=4, **{**FAST, "lr": 2e-2})
    assert type(lora) is type(original)  # the adapter is folded back into a plain model
    assert forget_nll(lora, sc) > forget_nll(original, sc)


def test_methods_refuse_missing_inputs(tofu):
    sc, original, _, _ = tofu
    from obliviate.errors import ConfigError, DataError

    with pytest.raises(DataError, match="retain"):
        unlearn_lm(original, sc.forget_set(), method="npo+gd")
    with pytest.raises(DataError, match="refusals"):
        unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="idk")
    with pytest.raises(ConfigError, match="below the model's 2 blocks"):
        unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="rmu")


def bench_data(out, cache, methods=("ga", "npo")):
    sets = [f"scenario.{k}={v}" for k, v in TINY.items()]
    sets += [f"recipe.{k}={v}" for k, v in RECIPE.items()]
    sets += [f"{m}.{k}={v}" for m in methods for k, v in FAST.items()]
    return {"scenario": "tofu-mini", "methods": list(methods), "forget": "authors:0.25",
            "out": out, "cache": cache, "set": sets}


def test_bench_cli_writes_store_and_resumes(tofu, tmp_path):
    _, _, _, cache = tofu
    data = bench_data(tmp_path / "run", cache)
    args = ["bench", "tofu-mini", "--forget", "authors:0.25", "--out", str(data["out"]),
            "--cache", str(cache), "--quiet"]
    args += [a for m in data["methods"] for a in ("-m", m)]
    args += [a for s in data["set"] for a in ("--set", s)]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "forget_quality" in done.stdout and "passes" in done.stdout
    out = data["out"]
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board["method"][:2]) == ["original", "retrain (reference)"]
    assert set(board["method"]) == {"original", "retrain (reference)", "ga", "npo"}
    ref = board.set_index("method")
    assert ref.loc["retrain (reference)", "forget_quality"] == 1.0
    assert ref.loc["original", "mu_ratio"] == 1.0
    assert ref.loc["ga", "forget_prob"] < ref.loc["original", "forget_prob"]
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"] == "tofu" and config["protocol_version"] == "tofu/1"
    # a second run finds every job done and rebuilds the same table without training
    run = BenchRun(BenchConfig.from_mapping(data))
    again = run.run()
    pd.testing.assert_frame_equal(again.reset_index(drop=True), board, check_exact=False,
                                  check_dtype=False, rtol=1e-5)


def test_bench_refuses_bad_input(tmp_path, capsys):
    base = {"scenario": "tofu-mini", "out": tmp_path}
    with pytest.raises(Exception, match="authors:FRACTION"):
        BenchRun(BenchConfig.from_mapping({**base, "forget": "random:0.1"}))
    with pytest.raises(Exception, match="Did you mean 'simnpo'"):
        BenchRun(BenchConfig.from_mapping({**base, "methods": ["simnpoo"]}))
    with pytest.raises(Exception, match="Use --protocol robustness or sequential or tofu"):
        BenchRun(BenchConfig(scenario="tofu-mini", forget="authors:0.1", methods=["ga"],
                             protocol="quick", out=tmp_path))
    from obliviate.cli import main

    bad = tmp_path / "bench.yaml"
    bad.write_text("scenario: tofu-mini\nmethods: [npo, npoo]\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(bad)])
    assert exit_info.value.code == 2
    assert "Did you mean 'npo'" in capsys.readouterr().err
    done = run_cli("bench", "tofu-mini", "--forget", "authors:2.5", "--out", str(tmp_path))
    assert done.returncode == 2 and "authors" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_toy_size_tells_original_retain_only_and_forgetting_apart(tofu, tmp_path, capsys):
    """The README's smallest size, from the CLI with the tofu-mini defaults: every row has some
    utility, and the original, the retain-only model and a forgetting method differ."""
    from obliviate.cli import main

    _, _, _, cache = tofu
    args = ["bench", "tofu-mini", "--set", "scenario.size=toy", "--forget", "authors:0.25",
            "-m", "npo+gd", "-m", "grad-diff", "--cache", str(cache), "--out", str(tmp_path),
            "--quiet"]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code == 0, capsys.readouterr().err
    board = pd.read_csv(tmp_path / "leaderboard.csv").set_index("method")
    assert (board["model_utility"] > 0.1).all()
    orig, ret = board.loc["original"], board.loc["retrain (reference)"]
    assert orig["forget_quality"] < 0.05 < ret["forget_quality"]
    assert orig["forget_prob"] > ret["forget_prob"] + 0.1
    for method in ("npo+gd", "grad-diff"):
        row = board.loc[method]
        assert row["forget_prob"] < orig["forget_prob"] - 0.05  # it forgets ...
        assert row["forget_quality"] > orig["forget_quality"]  # ... towards retain-only
        assert row["mu_ratio"] > 0.5  # ... and keeps most of the utility
    # the report reads the tofu spec: its columns, legend and plots (it once crashed here)
    from obliviate.report import write_report

    written = write_report(tmp_path)
    text = written.markdown.read_text()
    assert "tofu" in text and "forget_quality" in text and "npo+gd" in text
    assert written.html.exists() and written.plots


def test_scale_script_runs_on_the_cpu_at_the_toy_size(tofu, tmp_path):
    """benchmarks/tofu_scale.py is the GPU run; the same code runs here on the CPU."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("tofu_scale",
                                                  REPO / "benchmarks" / "tofu_scale.py")
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    _, _, _, cache = tofu
    doc = scale.main(["--device", "cpu", "--size", "toy", "-m", "ga", "--forget",
                      "authors:0.25", "--cache", str(cache), "--out", str(tmp_path / "run"),
                      "--json", str(tmp_path / "scale.json")])
    assert doc["machine"]["device"] == "cpu" and doc["parameters"] > 50_000
    assert [r["method"] for r in doc["leaderboard"]] == ["original", "retrain (reference)", "ga"]
    assert all(j["status"] == "done" and j["wall_s"] >= 0 for j in doc["job_wall_s"])
    assert json.loads((tmp_path / "scale.json").read_text())["scenario"]["options"]["size"] \
        == "toy"
