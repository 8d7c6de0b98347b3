"""The benchmark scripts: documented commands that run as written, results with provenance.

Each script's docstring and the Makefile's ``bench``/``bench-smoke`` lines are parsed with the
script's own argument parser (so an option that does not exist, or a wrapper command that is
not installed, fails here); one script runs end to end at a tiny size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from obliviate.bench.provenance import provenance, write_results
from obliviate.bench.spec import PROTOCOLS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _keep_thread_count():
    """A script's main() sets torch's thread count for this process; later tests need theirs."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


class Parsed(Exception):
    """Raised by the patched parser once a command line has parsed."""

    def __init__(self, namespace: argparse.Namespace):
        super().__init__("parsed")
        self.namespace = namespace


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commands(text: str) -> list[str]:
    """The ``python benchmarks/...`` command lines of a docstring (``\\`` continuations joined)."""
    text = text.replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if re.search(r"\bpython3?\s+benchmarks/\S+\.py", line)]


def parse(module, argv: list[str], monkeypatch) -> argparse.Namespace:
    """``argv`` through the script's own parser, stopping before any work starts."""
    real = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise Parsed(real(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    monkeypatch.setattr(sys, "argv", [module.__file__, *argv])
    with pytest.raises(Parsed) as done:
        module.main()
    return done.value.namespace


def script_args(command: str, script: Path) -> list[str]:
    words = shlex.split(command, comments=True)
    assert words[0] != "cpu" and not any(w.startswith("PYTHONPATH") for w in words), \
        f"{script.name}: '{command}' needs a wrapper or path the reader may not have"
    assert words[0] in ("python", "python3", "$(PYTHON)"), f"{script.name}: '{command}'"
    assert (ROOT / words[1]).resolve() == script, f"{script.name}: '{command}' names {words[1]}"
    return words[2:]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_docstring_commands_run_as_written(script, monkeypatch):
    module = load(script)
    doc = module.__doc__ or ""
    found = commands(doc)
    assert found, f"{script.name} documents no command"
    for command in found:
        parse(module, script_args(command, script), monkeypatch)


def make_lines(target: str) -> list[str]:
    text = (ROOT / "Makefile").read_text()
    body = text.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    subst = {"$(BENCH)": "python benchmarks", "$(BENCH_OUT)": "benchmarks/results",
             "$(BENCH_RUNS)": "runs/benchmarks", "$(SMOKE)": "/tmp/smoke",
             "$(SMOKE_SET)": "--set recipe.epochs=1"}
    lines = []
    for line in body.splitlines()[1:]:
        for key, value in subst.items():
            line = line.replace(key, value)
        if "benchmarks/" in line and line.strip().startswith("python"):
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("target", ["bench", "bench-smoke"])
def test_make_targets_run_every_script_with_valid_arguments(target, monkeypatch):
    lines = make_lines(target)
    if target == "bench":  # scripts measured on a GPU have their own target
        lines += make_lines("bench-gpu")
    named = {shlex.split(line)[1] for line in lines}
    assert named == {f"benchmarks/{s.name}" for s in SCRIPTS}, "a script is missing from make"
    modules = {}
    for line in lines:
        script = (ROOT / shlex.split(line)[1]).resolve()
        module = modules.setdefault(script, load(script))
        args = parse(module, script_args(line, script), monkeypatch)
        if target == "bench-smoke":  # never over the published results
            assert all("benchmarks/results" not in str(v) for v in vars(args).values())


def test_readme_lists_every_script():
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    for script in SCRIPTS:
        assert f"`{script.name}`" in readme, f"benchmarks/README.md does not list {script.name}"


def test_write_results_adds_provenance(tmp_path):
    path = write_results(tmp_path / "sub" / "r.json", {"rows": [1, 2]}, protocols=["quick"],
                         benchmark="test/1")
    doc = json.loads(path.read_text())
    assert doc["rows"] == [1, 2]
    prov = doc["provenance"]
    assert prov["protocol_versions"] == {"quick": PROTOCOLS.get("quick").version}
    assert prov["benchmark"] == "test/1"
    assert prov["machine"]["cpus"] >= 1 and prov["machine"]["torch_threads"] >= 1
    assert prov["obliviate"] == prov["versions"]["obliviate"]
    assert prov["written"].endswith("Z")
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]  # no temporary left
    assert set(provenance()) == set(prov)


def test_challenge_agreement_runs_and_records_provenance(tmp_path, monkeypatch):
    module = load(ROOT / "benchmarks" / "challenge_agreement.py")
    monkeypatch.setattr(sys, "argv", ["challenge_agreement.py", "--models", "8", "--examples",
                                      "30", "--out", str(tmp_path)])
    module.main()
    doc = json.loads((tmp_path / "challenge_agreement.json").read_text())
    rows = {r["case"]: r for r in doc["results"]}
    assert set(rows) == set(module.CASES) and all(r["n_models"] == 8 for r in rows.values())
    # ideal unlearning is indistinguishable; a 3-sd shift is caught; a constant is capped
    assert rows["identical"]["F"] > rows["shift_0.5sd"]["F"] > rows["shift_3sd"]["F"]
    assert rows["deterministic"]["F"] == 0.0 and rows["deterministic"]["capped_fraction"] == 1.0
    prov = doc["provenance"]
    assert prov["protocol_versions"] == {"challenge": PROTOCOLS.get("challenge").version}
    assert prov["benchmark"] == module.BENCHMARK and prov["machine"]["torch_threads"] == 1
