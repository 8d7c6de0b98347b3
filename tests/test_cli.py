"""The command line: listings, help, the leaderboard table, validate.

Bad input in general is tests/test_bad_inputs.py's; the cases here need a closer look.
"""

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from conftest import run_cli
from obliviate.bench.spec import PROTOCOLS
from obliviate.cli.table import choose_columns, leaderboard_table


def test_scenarios_and_methods_listings():
    out = run_cli("scenarios").stdout
    assert "digits" in out and "fashion" in out and "tofu-mini" in out
    out = run_cli("methods").stdout
    for name in ("retrain*", "finetune*", "neggrad*", "neggrad+*", "random-label*", "npo*"):
        assert name in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isalnum()}
    assert "tofu" in rows["npo*"] and "quick" not in rows["npo*"]  # the protocols column
    assert "challenge" in rows["scrub"] and "tofu" not in rows["scrub"]
    one = run_cli("methods", "neggrad+")
    assert one.returncode == 0 and "alpha" in one.stdout and "Kurmanji" in one.stdout


def test_help_shows_defaults_choices_and_flags():
    text = " ".join(run_cli("bench", "--help").stdout.split())  # as one line, whatever the wrap
    for expected in ("[default: 1]", "[default: local]", "[default: cpu]",
                     "challenge (classification)", "tofu (lm)", "Default: quick for",
                     "retrain", "authors:0.1", "--json print", "--wide print"):
        assert expected in text, expected
    assert "<bool>" not in text and "--no-json" not in text


def _board(protocol: str, seeds: int = 2) -> pd.DataFrame:
    """A leaderboard with every column of ``protocol``, long method names and spreads."""
    spec = PROTOCOLS.get(protocol)
    others = ("R_RMSE", "F_RMSE", "T_RMSE", "R_ERR", "F_AUROC", "T_AUROC", "ASR")  # other tasks
    rng = np.random.default_rng(0)
    rows = []
    statuses = ["failed: a long reason " * 5,  # real statuses: errors hold "; " themselves
                "failed: neggrad+: the loss became nan at epoch 3, step 70; no model was "
                "written. Lower its learning rate or number of epochs.",
                "over cut-off; collapsed: TA 0.097 at seed 0, run 26 (original 0.992, chance "
                "0.125), near chance", "tuned defaults used with recipe.epochs=5; degraded: x"]
    for method, status in zip(("original", "retrain (reference)", "reset-layers-distill",
                               "my_module:fn"), statuses, strict=True):
        row = {"method": method, "seeds": seeds, "status": status}
        for c in spec.columns:
            if c.name.removesuffix("_gap") in others:
                continue
            row[c.name] = float(rng.uniform(0, 1))
            row[f"{c.name}_std"] = float(rng.uniform(0.01, 0.2))
            row[f"{c.name}_lo"] = row[c.name] - row[f"{c.name}_std"]
            row[f"{c.name}_hi"] = row[c.name] + row[f"{c.name}_std"]
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS.names()))
def test_default_table_fits_100_columns_with_whole_numbers(protocol):
    spec, board = PROTOCOLS.get(protocol), _board(protocol)
    columns = choose_columns(spec, board)
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None)
    console.print(leaderboard_table(board, spec, f"digits · {protocol}", columns))
    text = buffer.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    c = columns[0]
    whole = f"{board[c.name][2]:.{c.digits}f}±{board[c.name + '_std'][2]:.{c.digits}f}"
    assert whole in text
    assert len(choose_columns(spec, board, wide=True)) > len(columns)


def test_validate_checks_what_bench_checks(tmp_path):
    cases = {
        "lr.yaml": ("set:\n  finetune.lr: 0.01\nmethods: [finetune]\n", None),
        "reset.yaml": ("methods: [reset-distill]\nset:\n  reset-distill.reset_start: 0.5\n"
                       "  reset-distill.reset_end: 0.2\n", "must be >= reset_start"),
        "cfk.yaml": ("methods: [cf-k]\nset:\n  cf-k.k: 40\n",
                     "must be at most the model's number of layers"),
    }
    for name, (body, message) in cases.items():
        path = tmp_path / name
        path.write_text("scenario: digits\n" + body)
        result = run_cli("validate", str(path))
        if message is None:
            assert result.returncode == 0, result.stderr
            assert "ok" in result.stdout
        else:
            assert result.returncode == 2 and message in result.stderr, result.stderr
            bench = run_cli("bench", "--config", str(path), "--out", str(tmp_path / "r"))
            assert bench.returncode == 2 and message in bench.stderr


def test_validate_reports_every_problem(tmp_path):
    cfg = tmp_path / "bench.yaml"
    cfg.write_text("scenario: digits\nmethods: [fintune, neggrad, scrubb]\n"
                   "set:\n  neggrad.lr: -1\n")
    result = run_cli("validate", str(cfg))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any("fintune" in line for line in lines)
    assert any("scrubb" in line for line in lines)
    assert any("'lr' parameter of neggrad" in line for line in lines)
    good = tmp_path / "good.yaml"
    good.write_text("scenario: digits\nmethods: [finetune]\nforget: random:0.1\n")
    assert run_cli("validate", str(good)).returncode == 0
