"""reset-distill, reset-layers-distill, prune-zero and lora-unlearn: behaviour and digits."""

import copy
import logging

import pytest
import torch
from torch import nn

import obliviate as ob
import obliviate.methods.lora_unlearn  # noqa: F401
import obliviate.methods.prune_zero  # noqa: F401
import obliviate.methods.reset_distill  # noqa: F401
from conftest import tiny_problem
from obliviate.methods.prune_zero import select_weights
from obliviate.methods.reset_distill import (
    ResetDistillConfig,
    reset_fractions,
    reset_random_layers,
    reset_random_weights,
)


def digits_run(digits, original, method, seed=0):
    model = ob.unlearn(original, digits.forget_loader(seed=seed), digits.retain_loader(seed=seed),
                       method=method, seed=seed, recipe=digits.recipe,
                       **digits.method_defaults.get(method, {}))  # the scenario's tuned defaults
    return ob.audit(model, digits).metrics


def assert_forgets_and_keeps_utility(digits, digits_original, method, tolerance):
    before = ob.audit(digits_original, digits).metrics
    after = digits_run(digits, digits_original, method)
    assert after["FA"] < before["FA"]
    assert after["TA"] >= before["TA"] - tolerance


# --- reset-distill / reset-layers-distill ---------------------------------------------------

def test_reset_fraction_rises_over_the_cycles():
    cfg = ResetDistillConfig(cycles=3, reset_start=0.1, reset_end=0.3)
    assert reset_fractions(cfg) == pytest.approx([0.1, 0.2, 0.3])


def test_weight_reset_replaces_about_the_fraction_by_fresh_values():
    model = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 10))
    before, fresh = copy.deepcopy(model), copy.deepcopy(model)
    for layer in fresh:
        layer.reset_parameters()
    reset_random_weights(model, fresh, 0.3, torch.Generator().manual_seed(0), "test")
    w, w0, w1 = model[0].weight, before[0].weight, fresh[0].weight
    assert torch.all((w == w0) | (w == w1))  # every entry is either kept or fresh
    assert (w == w1).float().mean().item() == pytest.approx(0.3, abs=0.02)


def test_layer_reset_re_initialises_whole_layers_only():
    model = nn.Sequential(*[nn.Linear(8, 8) for _ in range(5)])
    before, fresh = copy.deepcopy(model), copy.deepcopy(model)
    for layer in fresh:
        layer.reset_parameters()
    reset_random_layers(model, fresh, 0.4, torch.Generator().manual_seed(0), "test")
    reset = [torch.equal(m.weight, f.weight) and torch.equal(m.bias, f.bias)
             for m, f in zip(model, fresh, strict=True)]
    kept = [torch.equal(m.weight, b.weight) and torch.equal(m.bias, b.bias)
            for m, b in zip(model, before, strict=True)]
    assert sum(reset) == 2 and all(r != k for r, k in zip(reset, kept, strict=True))


@pytest.mark.parametrize("name", ["reset-distill", "reset-layers-distill"])
def test_reset_distill_is_random_across_seeds(name):
    # the challenge metric scores a deterministic unlearner F = 0
    model, forget, retain = tiny_problem()
    a, b = (ob.unlearn(model, forget, retain, method=name, seed=s, epochs=1) for s in (0, 1))
    assert not torch.equal(a[0].weight, b[0].weight) or not torch.equal(a[4].weight, b[4].weight)


def test_reset_distill_refuses_a_falling_fraction():
    model, forget, retain = tiny_problem()
    with pytest.raises(ob.ConfigError, match="reset_end"):
        ob.unlearn(model, forget, retain, method="reset-distill", reset_start=0.5, reset_end=0.1)


@pytest.mark.parametrize("name", ["reset-distill", "reset-layers-distill"])
def test_reset_distill_forgets_digits(digits, digits_original, name):
    assert_forgets_and_keeps_utility(digits, digits_original, name, tolerance=0.05)


# --- prune-zero ---------------------------------------------------------------------------

def test_prune_zero_zeroes_exactly_the_requested_fraction(caplog):
    model, forget, retain = tiny_problem()
    total = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    selection = select_weights(model, forget, retain, fraction=0.05)
    assert selection.total == total
    assert selection.zeroed == round(0.05 * total)
    assert sum(int(m.sum()) for m in selection.masks.values()) == selection.zeroed
    with caplog.at_level(logging.INFO, logger="obliviate.methods.prune_zero"):
        out = ob.unlearn(model, forget, retain, method="prune-zero", fraction=0.05, seed=0)
    assert f"zeroed {selection.zeroed} of {total} weights" in caplog.text
    params, before = dict(out.named_parameters()), dict(model.named_parameters())
    for name, p in before.items():
        mask = selection.masks.get(name, torch.zeros_like(p, dtype=torch.bool))
        assert torch.all(params[name][mask] == 0)
        assert torch.equal(params[name][~mask], p[~mask])  # nothing else moved


def test_prune_zero_repair_keeps_pruned_weights_at_zero():
    model, forget, retain = tiny_problem()
    selection = select_weights(model, forget, retain, fraction=0.05)
    out = ob.unlearn(model, forget, retain, method="prune-zero", fraction=0.05, repair_epochs=2)
    params = dict(out.named_parameters())
    assert all(torch.all(params[n][m] == 0) for n, m in selection.masks.items())
    assert not torch.equal(params["0.bias"], dict(model.named_parameters())["0.bias"])


def test_prune_zero_forgets_digits(digits, digits_original):
    assert_forgets_and_keeps_utility(digits, digits_original, "prune-zero", tolerance=0.03)


# --- lora-unlearn ---------------------------------------------------------------------------

@pytest.mark.parametrize("objective", ["neggrad+", "kl"])
def test_lora_weight_change_is_low_rank_and_biases_are_kept(objective):
    pytest.importorskip("peft")
    model, forget, retain = tiny_problem(width=16)
    out = ob.unlearn(model, forget, retain, method="lora-unlearn", rank=2, objective=objective,
                     lr=0.05, epochs=3, seed=0)
    assert type(out) is type(model) and list(out.state_dict()) == list(model.state_dict())
    assert all(p.requires_grad for p in out.parameters())
    for i in (0, 2, 4):  # every Linear is adapted
        delta = out[i].weight - model[i].weight
        assert 0 < torch.linalg.matrix_rank(delta.detach()) <= 2
        assert torch.equal(out[i].bias, model[i].bias)


def test_lora_adapts_only_the_named_modules():
    pytest.importorskip("peft")
    model, forget, retain = tiny_problem()
    out = ob.unlearn(model, forget, retain, method="lora-unlearn", target_modules=("2",),
                     lr=0.05, epochs=2)
    assert not torch.equal(out[2].weight, model[2].weight)
    assert torch.equal(out[0].weight, model[0].weight)
    assert torch.equal(out[4].weight, model[4].weight)
    with pytest.raises(ob.ConfigError, match="can adapt only"):
        ob.unlearn(model, forget, retain, method="lora-unlearn", target_modules=("1",))


def test_lora_without_peft_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "peft", None)  # import peft -> ImportError
    model, forget, retain = tiny_problem()
    with pytest.raises(ob.ConfigError, match=r"pip install 'obliviate\[lora\]'"):
        ob.unlearn(model, forget, retain, method="lora-unlearn")


def test_lora_unlearn_forgets_digits(digits, digits_original):
    pytest.importorskip("peft")
    assert_forgets_and_keeps_utility(digits, digits_original, "lora-unlearn", tolerance=0.03)
