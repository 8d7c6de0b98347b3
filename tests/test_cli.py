"""The command line: listings, and bad input that exits 2 with one line and no traceback."""

import pytest

from conftest import run_cli


def test_scenarios_and_methods_listings():
    out = run_cli("scenarios").stdout
    assert "digits" in out and "fashion" in out
    out = run_cli("methods").stdout
    for name in ("retrain", "finetune", "neggrad", "neggrad+", "random-label"):
        assert name in out
    one = run_cli("methods", "neggrad+")
    assert one.returncode == 0 and "alpha" in one.stdout and "Kurmanji" in one.stdout


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
