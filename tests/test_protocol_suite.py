"""One conformance table over every registered protocol (sklearn's ``test_common.py``, optax's
``alias_test.py``; tests/test_method_contract.py does it for methods).

Each protocol runs at its smallest size (``spec.smallest``) on a tiny model of its first task,
and must: fill every column it declares for that task, within the column's bounds, with
numbers that depend on what was run (two methods and the references differ); give the same
table when killed after its first method result and started again, without redoing what was
stored; refuse bad options before anything trains. A driver replaced by one that records
constants fails these checks (the mutation test), so they cannot pass by accident.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest

from obliviate.bench.config import BenchConfig
from obliviate.bench.interfaces import (
    ClassifierScenario,
    LanguageModelScenario,
    required_metrics,
)
from obliviate.bench.kit import Kit
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import PROTOCOLS, REFERENCE_ROWS
from obliviate.errors import ConfigError

TINY_LM = ["scenario.profiles=4", "scenario.pretrain_profiles=0", "scenario.snippets=0",
           "scenario.world=2", "scenario.retain_eval=2", "scenario.width=16", "scenario.layers=1",
           "scenario.heads=1", "scenario.perturbed=1", "scenario.alternates=1",
           "recipe.pretrain_steps=0", "recipe.finetune_epochs=2"]
TASKS = {  # the tiniest bench of each task: scenario settings and two methods that differ
    "classification": dict(scenario="digits", model="mlp", forget="random:0.05",
                           methods=["finetune", "neggrad"],
                           set=["recipe.epochs=1", "finetune.epochs=1", "neggrad.lr=0.01"]),
    "lm": dict(scenario="tofu-mini", forget="authors:1", methods=["ga", "idk"],
               set=[*TINY_LM, "ga.epochs=1", "idk.epochs=1", "ga.lr=0.01", "idk.lr=0.01"]),
}
LM_SMALLEST = {"sequential": ("protocol.request=authors:1", "protocol.patch=ga")}
NAMES = PROTOCOLS.names()


def config(name: str, out, cache, extra=()) -> BenchConfig:
    spec = PROTOCOLS.get(name)
    task = spec.tasks[0]
    base = TASKS[task]
    sets = [*base["set"], *spec.smallest, *(LM_SMALLEST.get(name, ()) if task == "lm" else ()),
            *extra]
    return BenchConfig(**{**base, "set": sets}, protocol=name, out=out, cache=cache,
                       models=spec.smallest_models, quiet=True)


def without_time(board: pd.DataFrame) -> pd.DataFrame:
    return board[[c for c in board.columns if not c.startswith("time")]].reset_index(drop=True)


def check_board(name: str, board: pd.DataFrame, methods: list[str]) -> None:
    """Every declared column of the task filled, within bounds, and not the same for rows
    that ran different things."""
    spec = PROTOCOLS.get(name)
    task = spec.tasks[0]
    rows = board.set_index("method")
    assert set(rows.index) == {*REFERENCE_ROWS, *methods}, rows.index.tolist()
    assert (rows["status"] != "failed").all(), rows["status"].to_dict()
    declared = [c for c in spec.columns if (not c.tasks or task in c.tasks) and not c.optional]
    for col in declared:
        assert col.name in rows.columns, f"{name}: column {col.name} is never filled"
        if rows[col.name].isna().all():  # undefined on this tiny model for every row alike
            continue  # (tofu's mu_ratio: the tiny original's model utility is 0)
        values = rows.loc[methods, col.name].astype(float)
        assert np.isfinite(values).all(), f"{name}: {col.name} = {values.to_dict()}"
        lo, hi = col.bounds
        assert ((values >= lo) & (values <= hi)).all(), f"{name}: {col.name} out of {col.bounds}"
    measured = [c.name for c in declared if not c.name.startswith("time")]
    a, b = (rows.loc[m, measured].astype(float) for m in methods[:2])
    assert not np.allclose(a, b, equal_nan=True), f"{name}: two methods gave identical rows"
    reference = rows.loc["original", measured].astype(float)
    assert not np.allclose(a, reference, equal_nan=True), f"{name}: a method row equals original"


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Each protocol's smallest bench, run once (lazily) and shared by the tests."""
    boards: dict[str, tuple] = {}

    def get(name: str):
        if name not in boards:
            root = tmp_path_factory.mktemp(name)
            cfg = config(name, root / "full", root / "cache")
            run = BenchRun(cfg)
            boards[name] = (run.run(), root, run)
        return boards[name]

    return get


def methods_of(run: BenchRun) -> list[str]:
    return [j.method for j in run.jobs if j.kind == "method" and j.seed == 0]


@pytest.mark.parametrize("name", NAMES)
def test_every_protocol_fills_its_columns_within_bounds(name, full):
    board, _, run = full(name)
    assert not run.failures, run.failures
    check_board(name, board, methods_of(run))


@pytest.mark.parametrize("name", NAMES)
def test_every_protocol_resumes_after_a_kill_with_the_same_table(name, full, monkeypatch):
    board, root, _ = full(name)
    record = Kit.record
    seen: list[str] = []

    def killed(kit, job, metrics, **kw):
        record(kit, job, metrics, **kw)
        seen.append(f"{job.key}-{kw.get('part')}")
        if job.kind == "method":
            raise KeyboardInterrupt  # as a kill: after the first method result is stored

    monkeypatch.setattr(Kit, "record", killed)
    with pytest.raises(KeyboardInterrupt):
        BenchRun(config(name, root / "resumed", root / "cache2")).run()
    first = seen[-1]
    redone: list[str] = []

    def counted(kit, job, metrics, **kw):
        redone.append(f"{job.key}-{kw.get('part')}")
        record(kit, job, metrics, **kw)

    monkeypatch.setattr(Kit, "record", counted)
    again = BenchRun(config(name, root / "resumed", root / "cache2")).run()
    assert first not in redone, "the stored result was computed again"
    pd.testing.assert_frame_equal(without_time(again), without_time(board))


@pytest.mark.parametrize("name", NAMES)
def test_every_protocol_refuses_bad_options_before_training(name, tmp_path):
    spec = PROTOCOLS.get(name)
    bad = ["protocol.no_such_option=1"]
    if spec.options is not None:
        bad += [f"protocol.{f.name}=not-a-value" for f in dataclasses.fields(spec.options)
                if f.type not in ("str", str)]
    for setting in bad:
        with pytest.raises(ConfigError):
            BenchRun(config(name, tmp_path / "out", tmp_path / "cache", [setting]))
    assert not (tmp_path / "out" / "results.sqlite").exists()
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


class ConstantDriver:
    """The mutation: records the same number in every declared column of every row."""

    def __init__(self, kit: Kit, options, n_models):
        self.kit = kit

    def run_all(self, jobs, progress):
        spec = self.kit._run.rb.protocol
        values = {c.name: (0.5 if math.isinf(c.bounds[1]) else (c.bounds[0] + c.bounds[1]) / 2)
                  for c in spec.columns}
        for job in jobs:
            self.kit.record(job, values, wall=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_a_driver_recording_constants_fails_the_suite(name, tmp_path, monkeypatch):
    spec = PROTOCOLS.get(name)
    monkeypatch.setitem(PROTOCOLS._entries, name, dataclasses.replace(spec,
                                                                       driver=ConstantDriver))
    run = BenchRun(config(name, tmp_path / "out", tmp_path / "cache"))
    board = run.run()
    with pytest.raises(AssertionError):
        check_board(name, board, methods_of(run))


def test_scenarios_meet_their_interface_and_required_metrics(full):
    """The scenarios the suite ran on satisfy their typing.Protocol; their rows carry the
    metrics every protocol may count on."""
    _, _, quick = full("quick")
    assert isinstance(quick.rb.scenario, ClassifierScenario)
    assert set(required_metrics(quick.rb.scenario)) <= set(full("quick")[0].columns)
    _, _, tofu = full("tofu")
    assert isinstance(tofu.rb.scenario, LanguageModelScenario)
    assert set(required_metrics(tofu.rb.scenario)) <= set(full("tofu")[0].columns)


def test_the_documented_protocol_is_one_file_named_toy_that_runs(tmp_path):
    """docs/protocols.md's example registers a protocol named "toy" from one block of code;
    it runs through the bench, and the architecture check does not fire on the word."""
    from conftest import REPO
    from test_architecture import SRC, protocol_mentions

    text = (REPO / "docs" / "protocols.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(block, "docs/protocols.md", "exec"), {})
    try:
        board = BenchRun(BenchConfig(scenario="digits", model="mlp", methods=["finetune"],
                                     protocol="toy", out=tmp_path / "toy", quiet=True,
                                     set=["recipe.epochs=1", "finetune.epochs=1"])).run()
        assert board["method"].tolist()[:2] == list(REFERENCE_ROWS)
        assert 0 <= board.set_index("method").loc["finetune", "TA"] <= 1
        assert not [p for p in sorted(SRC.rglob("*.py"))
                    if protocol_mentions(p.read_text(), {"toy"})]  # "toy" is also a size
    finally:
        PROTOCOLS.remove("toy")
