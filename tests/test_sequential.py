"""The sequential protocol: requests drawn once and recorded, each method applied to its own
previous output, the retrain-every-R policy, MUSE's growing view, the language-model track.
(Running, resuming, bounds and bad options are the common protocol suite's.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import run_cli
from obliviate.bench.config import BenchConfig
from obliviate.bench.kit import Kit
from obliviate.bench.protocols.sequential import SequentialOptions, draw_requests
from obliviate.bench.runner import BenchRun
from obliviate.bench.store import ResultStore
from obliviate.errors import ConfigError

TINY = ["recipe.epochs=1", "finetune.epochs=1"]


def test_requests_are_drawn_once_from_the_seed_and_disjoint(digits):
    opts = SequentialOptions(requests=4, request="random:0.02")
    a, b = draw_requests(opts, digits, 0), draw_requests(opts, digits, 0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other = draw_requests(opts, digits, 1)
    assert not np.array_equal(a[0], other[0])
    flat = np.concatenate(a)
    assert len(np.unique(flat)) == len(flat) == 4 * round(0.02 * len(digits.splits.y_train))
    classes = draw_requests(SequentialOptions(requests=3, request="class"), digits, 0)
    y = digits.splits.y_train.numpy()
    for idx in classes:  # each request is one whole class
        assert len(np.unique(y[idx])) == 1 and len(idx) == (y == y[idx[0]]).sum()
    with pytest.raises(ConfigError, match="every class"):
        draw_requests(SequentialOptions(requests=10, request="class"), digits, 0)
    with pytest.raises(ConfigError, match="no groups"):
        draw_requests(SequentialOptions(requests=2, request="groups:0.1"), digits, 0)
    with pytest.raises(ConfigError, match="language models"):
        draw_requests(SequentialOptions(requests=2, request="authors:2"), digits, 0)


def test_the_cli_refuses_a_bad_request_in_one_line(tmp_path):
    result = run_cli("bench", "digits", "-m", "finetune", "--protocol", "sequential",
                     "--set", "protocol.request=slices:3", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "protocol.request 'slices:3'" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o" / "results.sqlite").exists()


def test_each_method_starts_from_its_own_previous_output_and_the_policy_retrains(
        tmp_path, monkeypatch):
    starts: list[tuple[str, dict]] = []
    unlearn = Kit.unlearn

    def spy(kit, job, model, **kw):
        starts.append((job.method, {k: v.clone() for k, v in model.state_dict().items()}))
        out = unlearn(kit, job, model, **kw)
        outputs.append((job.method, {k: v.clone() for k, v in out[0].state_dict().items()}))
        return out

    outputs: list[tuple[str, dict]] = []
    monkeypatch.setattr(Kit, "unlearn", spy)
    cfg = BenchConfig(scenario="digits", model="mlp", methods=["finetune"],
                      protocol="sequential", out=tmp_path / "seq", quiet=True,
                      set=[*TINY, "protocol.requests=2", "protocol.retrain_every=2"])
    board = BenchRun(cfg).run().set_index("method")
    mine = [s for m, s in starts if m == "finetune"]
    made = [s for m, s in outputs if m == "finetune"]
    # finetune's 2 requests and the policy's patch of request 1 (request 2 retrains)
    assert len(mine) == 3
    own = mine[:2]
    assert all(torch.equal(own[1][n], made[0][n]) for n in own[0])
    assert any(not torch.equal(own[1][n], own[0][n]) for n in own[0])  # not the original
    with ResultStore(tmp_path / "seq" / "results.sqlite", readonly=True) as store:
        policy = next(j for j in store.jobs() if j["method"] == "retrain-every-2")
        step2 = store.metrics(f"{policy['key']}-req1")
        original = next(j for j in store.jobs() if j["method"] == "original")
        requests = store.example_values(original["key"], "step_FA")
    assert step2["avg_gap"] == 0.0  # the model retrained without requests 1..2 is the ceiling
    assert len(requests) == 2
    assert board.loc["finetune", "worst_gap"] >= board.loc["finetune", "avg_gap"]


def test_growing_starts_every_request_from_the_original(tmp_path, monkeypatch):
    starts = []
    unlearn = Kit.unlearn

    def spy(kit, job, model, **kw):
        starts.append((next(iter(model.state_dict().values())).clone(),
                       len(kw["scenario"].forget_idx)))
        return unlearn(kit, job, model, **kw)

    monkeypatch.setattr(Kit, "unlearn", spy)
    cfg = BenchConfig(scenario="digits", model="mlp", methods=["finetune"],
                      protocol="sequential", out=tmp_path / "grow", quiet=True,
                      set=[*TINY, "protocol.requests=2", "protocol.growing=true"])
    BenchRun(cfg).run()
    (w0, n0), (w1, n1) = starts
    assert torch.equal(w0, w1) and n1 == 2 * n0  # one request of growing size


def test_the_language_model_track_measures_every_request(tmp_path):
    from test_protocol_suite import TINY_LM

    cfg = BenchConfig(scenario="tofu-mini", forget="authors:1", methods=["ga"],
                      protocol="sequential", out=tmp_path / "lm", quiet=True,
                      set=[*TINY_LM, "ga.epochs=1", "ga.lr=0.01", "protocol.requests=2",
                           "protocol.request=authors:1"])
    board = BenchRun(cfg).run().set_index("method")
    assert board.loc["retrain (reference)", "fq_all"] == 1.0
    assert 0 <= board.loc["ga", "fq_all"] <= 1 and "model_utility" in board.columns
    with ResultStore(tmp_path / "lm" / "results.sqlite", readonly=True) as store:
        ga = next(j for j in store.jobs() if j["method"] == "ga")
        assert len(store.example_values(f"{ga['key']}-req1", "per_request")) == 2
