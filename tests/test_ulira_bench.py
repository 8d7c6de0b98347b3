"""The U-LiRA protocol through the bench, on a tiny configuration."""

import json

import pytest

from conftest import run_cli


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


def test_ulira_needs_enough_shadows(tmp_path):
    result = run_cli("bench", "digits", "-m", "finetune", "--protocol", "ulira", "--models", "6",
                     "--set", "protocol.targets=4", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "needs at least 4 shadow models" in result.stderr


def test_models_option_is_checked(tmp_path):
    result = run_cli("bench", "digits", "--models", "8", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "quick trains one model of each kind" in result.stderr
    result = run_cli("bench", "digits", "--protocol", "challenge", "--models", "2",
                     "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "--models must be an int >= 3" in result.stderr
