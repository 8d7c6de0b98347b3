"""The README and the docs pages run as written and say what the tool does (examples that are
never run rot).

Every Python block (the README's first, then each page's in docs/) runs on its own in a fresh
interpreter, as a user pasting it would run it; where the pages list what the tool lists or
prints, the two are compared. The docs site itself is built with warnings as errors by
'make docs' (dead links, stale API names).
"""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO, run_cli

README = (REPO / "README.md").read_text()
PAGES = sorted((REPO / "docs").rglob("*.md"))
TEXT = "\n".join([README, *(p.read_text() for p in PAGES)])
BLOCKS = list(dict.fromkeys(re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)))  # once each


def _run_block(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=900)


@pytest.fixture(scope="module")
def block_results():
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(_run_block, BLOCKS))


def test_there_are_python_blocks():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_python_block_runs_on_its_own(block_results, index):
    result = block_results[index]
    first = BLOCKS[index].strip().splitlines()[0]
    assert result.returncode == 0, f"block {index} ({first!r}) failed:\n{result.stderr[-3000:]}"


def test_the_first_block_forgets_and_keeps_utility(block_results):
    out = block_results[0].stdout
    ra = float(re.search(r"^RA\s+([0-9.]+)", out, flags=re.M).group(1))
    assert ra > 0.9


def test_every_scenario_and_method_the_tool_lists_is_in_the_readme():
    from obliviate.data import SCENARIOS
    from obliviate.unlearning import METHODS

    missing = [f"scenario {n}" for n in SCENARIOS.names() if f"`{n}`" not in TEXT]
    missing += [f"method {n}" for n in METHODS.names() if f"`{n}`" not in TEXT]
    assert not missing, missing


def test_every_protocol_and_its_version_is_in_the_readme():
    from obliviate.bench.spec import PROTOCOLS

    for name in PROTOCOLS.names():
        assert f"`{name}`" in TEXT or f"--protocol {name}" in TEXT, name
    assert "quick/1" in TEXT


def test_the_readmes_error_examples_are_what_the_tool_prints(tmp_path):
    for command, line in re.findall(r"^\$ obliviate (.+)\n(obliviate: error: .+)$", TEXT,
                                    flags=re.M):
        result = run_cli(*command.split(), "--out", str(tmp_path / "run"))
        assert result.returncode == 2 and result.stderr.strip() == line, command
    import obliviate as ob
    from conftest import tiny_problem

    model, forget, retain = tiny_problem()
    example = re.search(r"`(The 'lr' parameter of finetune must be [^`]+)`", TEXT).group(1)
    with pytest.raises(ob.ConfigError) as info:
        ob.unlearn(model, forget, retain, method="finetune", lr=-0.1)
    assert str(info.value) == example


def test_the_readmes_links_and_the_example_config_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target
    result = run_cli("validate", str(REPO / "examples" / "bench.yaml"))
    assert result.returncode == 0 and ": ok (3 method(s) on digits" in result.stdout, \
        result.stderr
