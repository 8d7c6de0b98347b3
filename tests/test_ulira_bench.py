"""The U-LiRA protocol through the bench, on a tiny configuration."""

import json

import pytest

from conftest import main_in_process, run_cli


@pytest.fixture(scope="module")
def ulira_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ulira") / "run"
    result = run_cli("bench", "digits", "-m", "finetune", "--protocol", "ulira", "--models", "10",
                     "--set", "protocol.targets=4", "--set", "recipe.epochs=4", "--set",
                     "finetune.epochs=1", "--out", str(out), "--json")
    return result, out


def test_ulira_rows_and_metrics(ulira_run):
    result, out = ulira_run
    assert result.returncode == 0, result.stderr
    rows = {r["method"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"original", "retrain (reference)", "finetune"}
    for row in rows.values():
        assert 0.5 <= row["attack_acc"] <= 1.0  # best-threshold accuracy never reads below 0.5
        assert 0.0 <= row["auc"] <= 1.0
        assert 0.0 <= row["tpr_1pct"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"] == "ulira" and config["protocol_version"] == "ulira/1"
    assert config["n_models"] == 10


def test_ulira_needs_enough_shadows(tmp_path, capsys):  # the command line, in this process
    code, _, err = main_in_process(capsys, "bench", "digits", "-m", "finetune", "--protocol",
                                   "ulira", "--models", "6", "--set", "protocol.targets=4",
                                   "--out", tmp_path / "r")
    assert code == 2
    assert "needs at least 4 shadow models" in err


def test_models_option_is_checked(tmp_path, capsys):
    code, _, err = main_in_process(capsys, "bench", "digits", "--models", "8", "--out",
                                   tmp_path / "r")
    assert code == 2 and "quick trains one model of each kind" in err
    code, _, err = main_in_process(capsys, "bench", "digits", "--protocol", "challenge",
                                   "--models", "2", "--out", tmp_path / "r")
    assert code == 2 and "--models must be an int >= 3" in err
