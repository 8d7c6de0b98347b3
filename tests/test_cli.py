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
    for method in ("original", "retrain (reference)", "reset-layers-distill", "my_module:fn"):
        row = {"method": method, "seeds": seeds, "status": "failed: a long reason " * 5}
        for c in spec.columns:
            if c.name.removesuffix("_gap") in others:
                continue
            row[c.name] = float(rng.uniform(0, 1))
            row[f"{c.name}_std"] = float(rng.uniform(0.01, 0.2))
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


@pytest.fixture()
def ids(tmp_path):
    def write(lines):
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(str(x) for x in lines) + "\n")
        return str(path)

    return write


BAD = [
    (["bench", "digts"], "Unknown scenario 'digts'. Did you mean 'digits'?"),
    (["bench", "digits", "-m", "fintune"], "Unknown method 'fintune'. Did you mean 'finetune'?"),
    (["bench", "digits", "--forget", "random:abc"], "is not a number"),
    (["bench", "digits", "--forget", "random:0"], "must be at least 1"),
    (["bench", "digits", "--forget", "class:42"], "Class 42"),
    (["bench", "digits", "--forget", "random:1258"], "leaving nothing to retain"),
    (["bench", "digits", "--set", "finetune.lr=-1"],
     "The 'lr' parameter of finetune must be a float > 0. Got '-1' instead."),
    (["bench", "digits", "--set", "neggrad.epochs=0"],
     "The 'epochs' parameter of neggrad must be an int >= 1"),
    (["bench", "digits", "--set", "scrub.epochs=3"], "neither a method of this bench"),
    (["bench", "digits", "--set", "lr"], "Malformed --set 'lr'"),
    (["bench", "digits", "--protocol", "quik"], "Unknown protocol 'quik'. Did you mean 'quick'?"),
    (["bench", "digits", "--seeds", "0"], "--seeds must be an int >= 1"),
    (["bench", "digits", "-m", "nosuchmodule:fn"], "Cannot import module 'nosuchmodule'"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    result = run_cli(*args, "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_ids_files_exit_2(tmp_path, ids):
    for content, message in ([[3, 99999]], "out of range"), ([[3, 3]], "more than once"), \
            ([[]], "lists no index"):
        result = run_cli("bench", "digits", "--forget", f"ids:{ids(*content)}",
                         "--out", str(tmp_path / "r"))
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli("bench", "digits", "--out", str(blocker / "run"))
    assert result.returncode == 2
    assert "Cannot write to --out directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


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
