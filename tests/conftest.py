"""Shared fixtures: the digits scenario and its reference models, trained once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import obliviate as ob

if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Every test starts at the session's torch thread count: a CLI run in this process (the
    local executor) sets its own, and training results depend on the thread count."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    return ob.load_scenario("digits", forget="random:0.1", seed=0)


@pytest.fixture(scope="session")
def digits_original(digits):
    return digits.train_original(seed=0)


@pytest.fixture(scope="session")
def digits_retrained(digits):
    return digits.train_retrained(seed=0)


@pytest.fixture(scope="session")
def digits_retrained_report(digits, digits_retrained):
    return ob.audit(digits_retrained, digits)


def tiny_problem(seed: int = 0, width: int = 16, hidden_layers: int = 2):
    """A small trained MLP on a 4-class toy problem, with forget (16) and retain (80) loaders."""
    from torch import nn

    from obliviate.train import tensor_loader

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 10, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    forget = tensor_loader(x[:16], y[:16], 16, shuffle=True, seed=0)
    retain = tensor_loader(x[16:], y[16:], 32, shuffle=True, seed=1)
    torch.manual_seed(seed)
    layers: list = [nn.Linear(10, width), nn.ReLU()]
    for _ in range(hidden_layers - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(width, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, forget, retain


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m obliviate ARGS`` (``env``: extra variables) and capture its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "obliviate", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def main_in_process(capsys, *args) -> tuple[int, str, str]:
    """Run ``obliviate ARGS`` in this process (no interpreter start-up); (status, out, err)."""
    from obliviate.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
