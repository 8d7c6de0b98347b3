"""Shared fixtures: the digits scenario and its reference models, trained once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import obliviate as ob

torch.set_num_threads(min(2, os.cpu_count() or 1))
REPO = Path(__file__).resolve().parents[1]


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


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m obliviate ARGS`` and capture its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "obliviate", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)
