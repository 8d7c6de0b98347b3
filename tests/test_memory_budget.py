"""Per-example gradient work chunked to a memory budget gives the same numbers as unchunked."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader

from conftest import tiny_problem
from obliviate.methods.fisher import diagonal_fisher
from obliviate.methods.influence import per_example_gradients
from obliviate.methods.memory import MIB, activation_bytes, available_bytes, gradient_bytes

LARGE = 1e6  # MiB: one chunk per batch, as before chunking


def one_pair_mib(model, loader) -> float:
    """MiB of one (example, class) gradient as the methods estimate it."""
    x, _ = next(iter(loader))
    params = {n: p for n, p in model.named_parameters()}
    return gradient_bytes(params, activation_bytes(model, x[:1])) / MIB


def test_fisher_is_the_same_in_chunks_and_one_class_at_a_time(caplog):
    model, _, shuffled = tiny_problem()
    retain = DataLoader(shuffled.dataset, batch_size=32)  # the same 40 rows on every pass
    pair = one_pair_mib(model, retain)
    whole = diagonal_fisher(model.eval(), retain, 40, memory_mb=LARGE)
    chunked = diagonal_fisher(model, retain, 40, memory_mb=4 * 3 * pair)  # 3 rows a chunk
    with caplog.at_level(logging.WARNING, logger="obliviate.methods"):
        by_class = diagonal_fisher(model, retain, 40, memory_mb=2.5 * pair)  # under 4 classes
    assert "one class at a time over chunks of 2 example(s)" in caplog.text
    for name, f in whole.items():
        assert f.abs().sum() > 0
        torch.testing.assert_close(chunked[name], f, rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(by_class[name], f, rtol=1e-5, atol=1e-9)


def test_influence_gradients_are_the_same_in_chunks():
    model, _, shuffled = tiny_problem()
    retain = DataLoader(shuffled.dataset, batch_size=32)  # the same order on every pass
    pair = one_pair_mib(model, retain)
    whole = torch.cat(list(per_example_gradients(model.eval(), retain, 40, memory_mb=LARGE)))
    parts = list(per_example_gradients(model, retain, 40, memory_mb=5 * pair))
    assert max(len(p) for p in parts) == 5 and len(whole) == 40
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-5, atol=1e-7)


def test_available_memory_respects_an_address_space_limit():
    import resource
    import subprocess
    import sys

    code = ("import resource, sys; from obliviate.methods.memory import available_bytes; "
            "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY)); "
            "print(available_bytes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ})
    assert out.returncode == 0, out.stderr
    assert 0 < int(out.stdout) < 3 * 2**30 <= max(available_bytes(), 3 * 2**30)
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY
