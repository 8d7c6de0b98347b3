"""Input that was accepted silently, refused only after training, unbounded, or a traceback
(issue #19 part 3), to the ``obliviate`` command line: exit 2, one line naming the problem and
the fix, no traceback, and nothing created in --out (nor anywhere in the scratch folder) before
the refusal.

Each case is (name, command line, extra environment, text of the one stderr line); ``{t}`` is
the scratch folder that :func:`_files` fills, and is on the Python path. The cases named in
``THROUGH_EXECUTABLE`` run through the real executable in subprocesses, the others through the
same entry point in this process (see test_bad_inputs.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from test_bad_inputs import run_cases

EXE = shutil.which("obliviate")
FAST = ["-m", "finetune", "--set", "recipe.epochs=1"]
MANY_SEEDS = ",".join(map(str, range(20_000)))

CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    # accepted silently before
    ("npz complex X", ["bench", "custom", "--data", "npz:{t}/complex.npz", *FAST, "--out",
                       "{t}/out/complex"], {}, "holds complex numbers"),
    ("csv label 0.5", ["bench", "custom", "--data", "csv:{t}/half.csv", *FAST, "--out",
                       "{t}/out/half"], {}, "holds 0.5, which is not a class"),
    ("yaml duplicate key", ["bench", "--config", "{t}/dup.yaml", "--out", "{t}/out/dup"], {},
     "sets 'methods' twice (lines 2 and 3)"),
    ("out empty", ["bench", "digits", *FAST, "--out", ""], {},
     "The 'out' setting must be a folder path"),
    ("classes repeated", ["bench", "digits", "--forget", "classes:3,3", *FAST, "--out",
                          "{t}/out/classes"], {}, "names class 3 more than once"),
    ("ids arabic digits", ["bench", "digits", "--forget", "ids:{t}/arabic.txt", *FAST, "--out",
                           "{t}/out/arabic"], {}, "in ASCII digits"),
    ("omp abc", ["bench", "digits", *FAST, "--out", "{t}/out/omp"], {"OMP_NUM_THREADS": "abc"},
     "OMP_NUM_THREADS='abc' is not a thread count"),
    # refused only after training before
    ("quick MIA forget of 4", ["bench", "digits", "--forget", "ids:{t}/four.txt", *FAST,
                               "--out", "{t}/out/four"], {},
     "The forget set has 4 example(s) and the quick protocol's loss MIA needs at least 5"),
    ("robustness share of 1", ["bench", "digits", "--protocol", "robustness", "--forget",
                               "ids:{t}/one.txt", *FAST, "--out", "{t}/out/one"], {},
     "A relearning share of 0.1 of 1 forget example(s) leaves none to measure"),
    # no bound before
    ("seeds ten million", ["bench", "digits", *FAST, "--seeds", "10000000", "--out",
                           "{t}/out/seeds"], {}, "--seeds must be at most 1000"),
    ("models a billion", ["bench", "digits", "--protocol", "challenge", *FAST, "--models",
                          "1000000000", "--out", "{t}/out/models"], {},
     "--models must be at most 4096"),
    ("tune 20000 seeds", ["tune", "digits", "-m", "finetune", "--seeds", MANY_SEEDS], {},
     "tune takes at most 4096 models and 1000 seeds"),
    ("npz label 10**12", ["bench", "custom", "--data", "npz:{t}/huge.npz", *FAST, "--out",
                          "{t}/out/huge"], {}, "beyond the bound of 100000 classes"),
    # written before a refusal before
    ("cache a file", ["bench", "digits", *FAST, "--cache", "{t}/a-file", "--out",
                      "{t}/out/cache"], {}, "--cache {t}/a-file is a file, not a folder"),
    ("columns unknown", ["bench", "digits", *FAST, "--columns", "nosuch", "--out",
                         "{t}/out/columns"], {}, "--columns names 'nosuch'"),
    # tracebacks before
    ("npz zero rows", ["bench", "custom", "--data", "npz:{t}/zero.npz", *FAST, "--out",
                       "{t}/out/zero"], {}, "the training set has no example"),
    ("tofu empty", ["bench", "tofu-mini", "-m", "ga", "--set", "scenario.data={t}/tofu-empty",
                    "--out", "{t}/out/tofu"], {}, "full.json is empty"),
    ("tofu not utf-8", ["bench", "tofu-mini", "-m", "ga", "--set",
                        "scenario.data={t}/tofu-latin", "--out", "{t}/out/tofu"], {},
     "is not UTF-8 text"),
    ("tofu number as perturbed", ["bench", "tofu-mini", "-m", "ga", "--set",
                                  "scenario.data={t}/tofu-number", "--out", "{t}/out/tofu"], {},
     "has int '5' as 'perturbed_answer'"),
    ("tofu garbage parquet", ["bench", "tofu-mini", "-m", "ga", "--set",
                              "scenario.data={t}/tofu-parquet", "--out", "{t}/out/tofu"], {},
     "full.parquet is not a readable parquet file"),
    ("sisa seed -1", ["sisa", "train", "digits", "--out", "{t}/out/sisa", "--seed", "-1"], {},
     "--seed must be an integer from 0 to 2**32-1"),
    ("report scenario an int", ["report", "{t}/run-types"], {},
     "config.json: 'scenario' is int, not an object"),
    ("report bench a list", ["report", "{t}/run-bench"], {},
     "config.json: 'bench' is list, not an object"),
    ("tune out under a file", ["tune", "digits", "-m", "finetune", "--out",
                               "{t}/a-file/tune.json"], {},
     "--out {t}/a-file/tune.json lies under the file {t}/a-file"),
    ("tune cache a file", ["tune", "digits", "-m", "finetune", "--cache", "{t}/a-file"], {},
     "--cache {t}/a-file is a file, not a folder"),
    ("tune grid lr_scale abc", ["tune", "digits", "-m", "finetune", "--grid", "lr_scale=abc"],
     {}, "The grid's lr_scale values must be numbers > 0"),
    ("tune grid not YAML", ["tune", "digits", "-m", "finetune", "--grid", "lr=[1"], {},
     "is not valid YAML"),
    ("model module does not compile", ["bench", "digits", *FAST, "--model", "badmod:f",
                                       "--out", "{t}/out/badmod"], {},
     "Module 'badmod' for model 'badmod:f' failed to import (SyntaxError"),
    ("model factory raises", ["bench", "digits", *FAST, "--model", "raisemod:f", "--out",
                              "{t}/out/raisemod"], {},
     "its factory raised RuntimeError: boom"),
]

# The thread-variable screen runs before torch loads, which only a process of its own shows; a
# model module is imported from the PYTHONPATH; a language-model scenario.
THROUGH_EXECUTABLE = {"omp abc", "model module does not compile", "tofu empty"}


def _tofu_rows(folder: Path, perturbed) -> None:
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(40)]
    lines = {"full": rows, "forget10": rows[:4],
             "forget10_perturbed": [{**r, "perturbed_answer": perturbed} for r in rows[:4]],
             "retain_perturbed": [{**r, "perturbed_answer": ["z"]} for r in rows[4:8]]}
    for name in ("holdout10", "world_facts_perturbed", "real_authors_perturbed"):
        lines[name] = [{**r, "perturbed_answer": ["z"]} for r in rows[:4]]
    folder.mkdir()
    for name, part in lines.items():
        (folder / f"{name}.json").write_text("\n".join(json.dumps(r) for r in part))


def _files(t: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)), np.arange(60) % 3
    np.savez(t / "complex.npz", X=x.astype(complex) + 1j, y=y)
    np.savez(t / "zero.npz", X=np.zeros((0, 4)), y=np.zeros(0, dtype=np.int64))
    np.savez(t / "huge.npz", X=x, y=np.where(y == 2, 10**12, y))
    (t / "half.csv").write_text("a,b,label\n" + "".join(
        f"{i},{2 * i},{0.5 if i % 2 else 1}\n" for i in range(40)))
    (t / "dup.yaml").write_text("scenario: digits\nmethods: [finetune]\nmethods: [scrub]\n")
    (t / "arabic.txt").write_text("3\n\u0661\u0662\n")
    (t / "underscore.txt").write_text("3\n1_0\n")
    (t / "one.txt").write_text("3\n")
    (t / "four.txt").write_text("3\n4\n5\n6\n")
    (t / "a-file").write_text("x")
    (t / "badmod.py").write_text("def f(:\n")
    (t / "raisemod.py").write_text("def f(num_classes, input_shape):\n"
                                   "    raise RuntimeError('boom')\n")
    (t / "tofu-empty").mkdir()
    (t / "tofu-empty" / "full.json").write_text("")
    (t / "tofu-latin").mkdir()
    (t / "tofu-latin" / "full.json").write_bytes(
        '{"question": "caf\xe9", "answer": "x"}\n'.encode("latin-1"))
    _tofu_rows(t / "tofu-number", 5)
    (t / "tofu-parquet").mkdir()
    (t / "tofu-parquet" / "full.parquet").write_bytes(bytes(range(256)) * 2)
    for name, cfg in (("run-types", {"protocol": "quick", "scenario": 5, "bench": {}}),
                      ("run-bench", {"protocol": "quick", "scenario": {}, "bench": [2]})):
        (t / name).mkdir()
        (t / name / "config.json").write_text(json.dumps(cfg))
        with sqlite3.connect(t / name / "results.sqlite") as conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.close()
        (t / name / "leaderboard.csv").write_text("method\n")


def _listing(t: Path) -> dict[str, tuple[float, int]]:
    return {str(p.relative_to(t)): (p.stat().st_mtime, p.stat().st_size) for p in t.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    t = tmp_path_factory.mktemp("refused")
    _files(t)
    before = _listing(t)
    commands = {name: ([a.format(t=t) for a in args], env) for name, args, env, _ in CASES}
    # the scratch folder holds their modules
    return run_cases(commands, t, THROUGH_EXECUTABLE, path=t), t, before


@pytest.mark.skipif(EXE is None, reason="the obliviate executable is not installed")
@pytest.mark.parametrize(("name", "args", "env", "message"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_one_line_before_anything_is_written(results, name, args, env, message):
    done, t, _ = results
    result = done[name]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "libgomp" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("obliviate: error: ")
    assert message.format(t=t) in lines[0], lines[0]
    if "--out" in args and args[args.index("--out") + 1]:  # '' is the scratch folder itself
        out = Path(args[args.index("--out") + 1].format(t=t))
        assert not out.exists() or out.is_file(), sorted(p.name for p in out.iterdir())


@pytest.mark.skipif(EXE is None, reason="the obliviate executable is not installed")
def test_no_refused_command_created_or_changed_a_file(results):
    _, t, before = results
    after = _listing(t)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not new and not changed, (new, changed)
    assert not (t / "out").exists() and not (t / "runs").exists()
