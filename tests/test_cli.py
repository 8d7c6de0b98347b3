"""The command line: listings, help, the leaderboard table, validate.

Bad input in general is tests/test_bad_inputs.py's; the cases here need a closer look.
"""

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from conftest import main_in_process, run_cli
from obliviate.bench.spec import PROTOCOLS
from obliviate.cli.table import (
    cell,
    choose_columns,
    fit,
    fold_header,
    half_width,
    leaderboard_table,
)


def test_scenarios_and_methods_listings():
    out = run_cli("scenarios").stdout
    assert "digits" in out and "fashion" in out and "tofu-mini" in out
    names = [line.split(":")[0] for line in out.splitlines() if line[:1].isalnum()]
    assert "credit" in names and len(names) >= 12
    assert len(out.splitlines()) <= 5 * len(names)  # compact: was 145 lines for 12 at 100 columns
    assert max(map(len, out.splitlines())) <= 100
    out = run_cli("methods").stdout
    for name in ("retrain*", "finetune*", "neggrad*", "neggrad+*", "random-label*", "npo*"):
        assert name in out
    rows: dict[str, str] = {}  # a method's name -> its row, wrapped lines included
    for line in out.splitlines():
        if line[:3].strip()[:1].isalnum():
            name = line.split()[0]
            rows[name] = line
        elif rows and line.startswith("   ") and line.strip():
            rows[name] += " " + line
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
    task = spec.tasks[0] if spec.tasks else "classification"
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
            if c.name.removesuffix("_gap") in others or (c.tasks and task not in c.tasks):
                continue  # a board holds one task's columns (sequential declares two tasks')
            row[c.name] = float(rng.uniform(0, 1))
            row[f"{c.name}_std"] = float(rng.uniform(0.01, 0.2))
            row[f"{c.name}_lo"] = row[c.name] - row[f"{c.name}_std"]
            row[f"{c.name}_hi"] = row[c.name] + row[f"{c.name}_std"]
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("width", [100, 80, 60])
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS.names()))
def test_default_table_fits_the_terminal_keeps_status_and_whole_numbers(protocol, width):
    spec, board = PROTOCOLS.get(protocol), _board(protocol)
    columns = choose_columns(spec, board)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None)
    console.print(leaderboard_table(board, spec, f"digits · {protocol}", columns, width=width))
    text = buffer.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert "status" in text.split("─")[0]  # the header row: status is never dropped
    words = text.split()
    for status in ("failed", "collapsed", "tuned?,", "degraded"):
        assert status in words, status
    layout = fit(board, columns, width)
    if width == 100:
        assert not layout.left_out
    if width >= 80:  # every default column fits at 80 (headers fold, ± goes under the mean)
        assert layout.columns == columns
    for c in layout.columns:  # every number whole: mean and ± on one line, or one under the other
        whole = cell(board[c.name][2], half_width(board.iloc[2], c.name), c.digits)
        mean, _, spread = whole.partition("±")
        assert whole in words or (mean in words and f"±{spread}" in words), (c.name, text)
    assert len(choose_columns(spec, board, wide=True)) > len(columns)


def test_fold_header_breaks_at_underscores():
    assert fold_header("forget_quality↑", 8) == "forget_\nquality↑"
    assert fold_header("avg_gap↓", 20) == "avg_gap↓"
    assert fold_header("tpr_1pct↓", 3) == "tpr_\n1pct↓"  # a longer piece stays whole


def test_local_executor_says_what_runs_before_running_it():
    from obliviate.bench.executors import LocalExecutor, Task

    said, ran = [], []
    ex = LocalExecutor(threads=1, running=said.append)
    tasks = [Task(lambda i=i: ran.append((i, list(said))), (), f"seed 0: m{i}") for i in range(2)]
    assert [o.ok for o in ex.map(tasks)] == [True, True]
    # each task found its own label announced (the running one, not the last finished one)
    assert ran == [(0, ["seed 0: m0"]), (1, ["seed 0: m0", "seed 0: m1"])]


def test_sisa_retraining_progress_says_where_it_is_without_a_total():
    from obliviate.cli.sisa import _Progress

    with _Progress(False, None, "retraining", slices=4) as bar:
        bar.tick(2, 0, None)
        bar.tick(2, 1, None)
        task = bar.bar.tasks[0]
        assert task.description == "retraining: shard 2, slice 2/4 written, 2 checkpoint(s) in all"
        assert not any("MofN" in type(c).__name__ for c in bar.bar.columns)  # no "2/?"


def test_validate_checks_what_bench_checks(tmp_path, capsys):  # in this process
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
        code, out, err = main_in_process(capsys, "validate", path)
        if message is None:
            assert code == 0, err
            assert "ok" in out
        else:
            assert code == 2 and message in err, err
            code, _, err = main_in_process(capsys, "bench", "--config", path, "--out",
                                           tmp_path / "r")
            assert code == 2 and message in err


def test_validate_reports_every_problem(tmp_path, capsys):
    cfg = tmp_path / "bench.yaml"
    cfg.write_text("scenario: digits\nmethods: [fintune, neggrad, scrubb]\n"
                   "set:\n  neggrad.lr: -1\n")
    code, _, err = main_in_process(capsys, "validate", cfg)
    assert code == 2
    lines = err.strip().splitlines()
    assert any("fintune" in line for line in lines)
    assert any("scrubb" in line for line in lines)
    assert any("'lr' parameter of neggrad" in line for line in lines)
    good = tmp_path / "good.yaml"
    good.write_text("scenario: digits\nmethods: [finetune]\nforget: random:0.1\n")
    assert main_in_process(capsys, "validate", good)[0] == 0


LIGHT = """
import resource, sys
from obliviate.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in ("torch", "sklearn", "scipy", "pandas", "matplotlib") if m in sys.modules)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"heavy={','.join(heavy)} cpu={usage.ru_utime + usage.ru_stime:.2f}", file=sys.stderr)
"""


def _light(*args, cache):
    import subprocess
    import sys

    from conftest import REPO

    env = {**__import__("os").environ, "PYTHONPATH": str(REPO / "src"),
           "OBLIVIATE_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", LIGHT, *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    heavy, cpu = done.stderr.strip().splitlines()[-1].split()
    return done.stdout, heavy, float(cpu.removeprefix("cpu="))


def test_help_scenarios_and_methods_answer_without_importing_torch(tmp_path):
    # every call used to import torch, scipy and scikit-learn: 4-5 s of CPU for --help
    out, heavy, cpu = _light("--help", cache=tmp_path)
    assert heavy == "heavy=" and cpu < 1.5, (heavy, cpu)  # CPU time: robust to a busy machine
    for name in ("bench", "validate", "scenarios", "methods", "report", "tune", "sisa"):
        assert f"  {name} " in out
    for command in ("methods", "scenarios"):
        first, heavy, _ = _light(command, cache=tmp_path)  # computes the rows once
        assert "torch" in heavy
        again, heavy, cpu = _light(command, cache=tmp_path)
        assert again == first and heavy == "heavy=" and cpu < 1.5, (heavy, cpu)


def test_listing_cache_key_follows_the_package_files(tmp_path, monkeypatch):
    import os

    from obliviate.cli import listing_cache

    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(listing_cache, "PACKAGE", tmp_path)
    key = listing_cache.package_key()
    assert listing_cache.package_key() == key
    (tmp_path / "a.py").write_text("x = 22\n")
    os.utime(tmp_path / "a.py", ns=(1, 1))
    assert listing_cache.package_key() != key


def test_loading_the_bench_command_leaves_scipy_and_sklearn_for_when_they_are_used(tmp_path):
    # importing them at the top of six evaluate and llm modules cost about 1.5 s on every
    # bench, validate and tune, even one that ends on a typo; the metrics import them when called
    _, heavy, _ = _light("bench", "--help", cache=tmp_path)
    assert not {"scipy", "sklearn"} & set(heavy.removeprefix("heavy=").split(",")), heavy
