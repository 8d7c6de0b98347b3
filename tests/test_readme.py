"""The README and the docs pages run as written and say what the tool does (examples that are
never run rot).

Every Python block (the README's first, then each page's in docs/) runs on its own, as a user
pasting it would run it: in a namespace of its own, with the random generators as a fresh
interpreter has them and nothing another block registered (the blocks share two interpreters,
which saves a torch import, ~6 s of CPU, per block); where the pages list what the tool lists or
prints, the two are compared. The docs site itself is built with warnings as errors by
'make docs' (dead links, stale API names).
"""

import json
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


# Runs the blocks read from stdin (a JSON list) one after another and prints, as JSON, each
# block's (exit status, stdout, stderr). Before each block: the random generators of numpy,
# torch and random as they were at start-up, torch's thread count, and no entry a block added to
# a registry; an exception is a traceback on the block's stderr and status 1.
RUNNER = r"""
import contextlib, gc, io, json, random, sys, traceback
import numpy as np
import torch
import obliviate
from obliviate.registry import Registry

obliviate.load_builtins()  # every registry and its built-in entries exist before the first block

def registries():
    return [o for o in gc.get_objects() if isinstance(o, Registry)]

blocks = json.load(sys.stdin)
start = (random.getstate(), np.random.get_state(), torch.random.get_rng_state(),
         torch.get_num_threads())
results = []
for code in blocks:
    before = {id(r): set(r.names()) for r in registries()}
    random.setstate(start[0]); np.random.set_state(start[1])
    torch.random.set_rng_state(start[2]); torch.set_num_threads(start[3])
    out, err, status = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            exec(compile(code, "<block>", "exec"), {"__name__": "__main__"})
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
            status = 1
    for r in registries():
        for name in set(r.names()) - before.get(id(r), set(r.names())):
            r.remove(name)
    results.append([status, out.getvalue(), err.getvalue()])
sys.stdout.write(json.dumps(results))
"""


def _run_blocks(codes: list[str]) -> list[subprocess.CompletedProcess]:
    """Each of ``codes`` run by :data:`RUNNER` in one fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(codes),
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return [subprocess.CompletedProcess(code, status, out, err)
            for code, (status, out, err) in zip(codes, json.loads(done.stdout), strict=True)]


@pytest.fixture(scope="module")
def block_results():
    # two interpreters in parallel: the blocks that load transformers (the language models,
    # about 40% of the blocks' CPU time) in one, the others in the other
    lm = [i for i, code in enumerate(BLOCKS) if re.search(r"obliviate\.llm|transformers", code)]
    groups = [lm, [i for i in range(len(BLOCKS)) if i not in lm]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda group: _run_blocks([BLOCKS[i] for i in group]), groups))
    results = dict(zip(groups[0] + groups[1], done[0] + done[1], strict=True))
    return [results[i] for i in range(len(BLOCKS))]


def test_a_block_sees_nothing_an_earlier_block_left():
    first = "import obliviate as ob\nob.register_model('left-by-a-block')(lambda n, s: None)\n" \
            "import torch\nprint(torch.rand(1).item())"
    second = "import obliviate as ob, torch\nprint(torch.rand(1).item())\n" \
             "ob.register_model('left-by-a-block')(lambda n, s: None)\nprint(undefined)"
    one, two = _run_blocks([first, second])
    assert one.returncode == 0, one.stderr
    assert one.stdout == two.stdout.splitlines(keepends=True)[0]  # same generator state
    assert two.returncode == 1 and "NameError: name 'undefined'" in two.stderr  # no re-register


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
