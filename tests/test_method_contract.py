"""sklearn-style common tests: one contract, every registered classifier method.

Each method, on a tiny problem, must forget (the forget loss rises toward the retrained model's),
keep utility, give identical weights for the same seed, leave its input untouched, and refuse
invalid parameters generated from the bounds its config declares. A method that does nothing
fails this contract (see the mutation test at the end).
"""

import copy
import dataclasses
import re
import types
import typing

import pytest
import torch
from torch import nn

import obliviate as ob
from conftest import tiny_problem as _tiny_problem
from obliviate.config import field_info
from obliviate.unlearning import METHODS

CLASSIFIER_METHODS = [n for n in METHODS.names() if METHODS.get(n).works_on("classification")]
# The tiny problem's own training (full batch, SGD 0.5, 60 steps), for methods that retrain.
RECIPE = ob.Recipe(optimizer="sgd", lr=0.5, epochs=60, batch_size=128, momentum=0.0,
                   weight_decay=0.0, schedule="constant")
MIN_RISE = 0.005  # forget cross-entropy must rise by this much (the original's is ~0.16)
MIN_RETAIN_ACC = 0.75  # of 1.0 for the original; chance is 0.25

# Settings that make each method move a 96-example, one-hidden-layer problem, and why. A method
# not listed runs with epochs=1 (when it has epochs) and must move at that.
SETTINGS: dict[str, tuple[dict, str]] = {
    "bad-teacher": ({"lr": 0.01}, "Adam at 1e-4 for one 96-example batch barely moves weights"),
    "certified-removal": ({"sigma": 0.1}, "sigma 10 objective noise swamps 96 examples"),
    "cf-k": ({"k": 2, "epochs": 3, "lr": 0.1, "momentum": 0.9},
             "k=1 is the classifier alone, which the retain set already fits; k=2 is the model"),
    "dp-original": ({"epsilon": 1000.0}, "epsilon 8 noise on 96 examples leaves no utility"),
    "eu-k": ({"lr": 0.5}, "lr 0.01 cannot re-fit a reset layer in the recipe's 60 steps"),
    "finetune": ({"epochs": 3}, "one epoch is 3 steps"),
    "fisher": ({"alpha": 1e-4}, "alpha 1e-6 scales noise for CIFAR-sized Fisher values"),
    "influence": ({"alpha": 1.0}, "alpha 0.2 is a step too small for 16 forget examples"),
    "l1-sparse": ({"epochs": 1, "alpha": 3e-3, "lr": 0.1}, "lr 0.01 for 3 steps moves nothing"),
    "lora-unlearn": ({"epochs": 3}, "one epoch is 3 steps of a fresh adapter"),
    "msg": ({"epochs": 10, "lr": 0.1}, "lr 1e-3 cannot re-fit reset weights here"),
    "neggrad": ({"epochs": 1, "lr": 0.1}, "lr 1e-4 (CIFAR forget sets) is one small step here"),
    "neggrad+": ({"epochs": 1, "lr": 0.1}, "lr 0.01 for 3 steps moves nothing"),
    "prune-zero": ({"fraction": 0.05}, "1% of 250 weights is 2 weights"),
    "retrain": ({}, "retrain runs the recipe it is given (the tiny problem's own) in full"),
    "reset-distill": ({"epochs": 10, "lr": 0.1}, "2 epochs cannot repair a reset"),
    "reset-layers-distill": ({"epochs": 10, "lr": 0.1}, "2 epochs cannot repair a reset"),
    "scrub": ({"epochs": 2, "lr": 0.05}, "lr 5e-4 (CIFAR) is one small step here"),
    "sisa": ({"shards": 2}, "4 shards of 24 examples cannot learn 4 classes"),
    "ssd": ({"selection_weighting": 1.0}, "alpha 10 selects no weight when forget is 1/6 of data"),
    "winner-contrastive": ({"epochs": 3, "uniform_lr": 0.5, "forget_lr": 0.1, "retain_lr": 0.3},
                           "its ResNet fine-tuning rates (3e-4..5e-3) are 100x below this recipe's"),
    "winner-conv-noise": ({"epochs": 10, "lr": 0.1}, "lr 7e-4 cannot repair noise in 4 epochs here"),
    "winner-conv-transpose": ({"epochs": 10, "lr": 0.1},
                              "lr 1e-3 cannot repair a flipped hidden layer in 3 epochs here"),
    "winner-grad-reinit": ({"epochs": 10, "lr": 0.1}, "lr 1e-3 cannot re-fit reset weights here"),
    "winner-random-noise-layers": ({"lr": 0.1, "fine_lr": 0.1, "last_fine_lr": 0.1},
                                   "lr 2e-4 cannot re-fit a reset classifier here"),
    "winner-reset-distill-val": ({"retain_epochs": 10, "lr": 0.1, "warmup_lr": 0.1},
                                 "lr 1e-3 cannot re-fit both layers of a one-hidden-layer MLP"),
    "winner-prune-reinit": ({"epochs": 10, "lr": 0.1},
                            "lr 5e-4 cannot regrow 99% pruned weights in 3 epochs here"),
}


def tiny_problem(seed=0):
    return _tiny_problem(seed, hidden_layers=1)


def settings(name):
    info = METHODS.get(name)
    if name in SETTINGS:
        return SETTINGS[name][0]
    fields = {n for n, *_ in field_info(info.config)} if info.config else set()
    return {"epochs": 1} if "epochs" in fields else {}


def loss_and_accuracy(model, loader):
    total = correct = n = 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            total += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
    return total / n, correct / n


def check_contract(name):
    """Every assertion of the contract for one method (raises AssertionError on a breach)."""
    info = METHODS.get(name)
    model, forget, retain = tiny_problem()
    before = copy.deepcopy(model.state_dict())
    kwargs = settings(name)
    a = ob.unlearn(model, forget, retain, method=name, seed=3, recipe=RECIPE, **kwargs)
    b = ob.unlearn(model, forget, retain, method=name, seed=3, recipe=RECIPE, **kwargs)
    assert isinstance(a, nn.Module) and a is not model
    for key, value in model.state_dict().items():  # input untouched
        assert torch.equal(value, before[key]), key
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), f"{name}: same seed gave different {key}"
    assert not a.training
    assert info.summary and info.paper and info.family
    assert info.fn.__doc__ and "References:" in info.fn.__doc__
    forget_before, _ = loss_and_accuracy(model, forget)
    forget_after, _ = loss_and_accuracy(a, forget)
    _, retain_acc = loss_and_accuracy(a, retain)
    assert forget_after > forget_before + MIN_RISE, (
        f"{name} did not forget: forget loss {forget_before:.4f} -> {forget_after:.4f}")
    assert retain_acc >= MIN_RETAIN_ACC, f"{name} lost utility: retain accuracy {retain_acc:.3f}"


@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_method_contract(name):
    check_contract(name)


def invalid_values(cls):
    """(field, bad value) pairs generated from each field's declared type and bounds."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta, tp = f.metadata, hints[f.name]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        base = tp
        is_tuple = typing.get_origin(base) is tuple
        inner = typing.get_args(base)[0] if is_tuple else base
        if meta.get("choices"):
            out.append((f.name, "not-a-choice"))
        for key, breaks in (("gt", lambda b: b), ("ge", lambda b: b - 1),
                            ("lt", lambda b: b), ("le", lambda b: b + 1)):
            if meta.get(key) is not None:
                bad = breaks(meta[key])
                out.append((f.name, (bad,) if is_tuple else bad))
        if inner is int:
            out.append((f.name, 1.5))
        if inner in (int, float) and not is_tuple:
            out += [(f.name, "abc"), (f.name, float("nan")), (f.name, float("inf"))]
        if inner is bool:
            out.append((f.name, "maybe"))
    return out


@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_method_refuses_invalid_parameters_from_its_declared_bounds(name):
    info = METHODS.get(name)
    model, forget, retain = tiny_problem()
    with pytest.raises(ob.ConfigError, match=re.escape(f"{name} has no parameter 'not_a_param'")):
        ob.unlearn(model, forget, retain, method=name, not_a_param=1)
    cases = invalid_values(info.config) if info.config else []
    for field, bad in cases:
        with pytest.raises(ob.ConfigError,
                           match=re.escape(f"The '{field}' parameter of {name} must be")):
            info.build_config({field: bad})
    if cases:  # and unlearn() refuses it before any training
        field, bad = cases[0]
        with pytest.raises(ob.ConfigError, match=re.escape(f"The '{field}' parameter")):
            ob.unlearn(model, forget, retain, method=name, **{field: bad})


def test_invalid_values_cover_every_bound():
    """The generator's own check: each kind of declaration yields values that break it."""
    from obliviate.methods.scrub import ScrubConfig

    bad = invalid_values(ScrubConfig)
    for case in [("lr", 0.0), ("epochs", 0), ("epochs", 1.5), ("momentum", 1.0),
                 ("momentum", -1.0), ("milestones", (-1,)), ("temperature", "abc")]:
        assert case in bad, case
    assert any(f == "lr" and v != v for f, v in bad)  # NaN


@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_a_method_that_does_nothing_fails_the_contract(name, monkeypatch):
    info = METHODS.get(name)

    def does_nothing(model, data, cfg):
        return model

    does_nothing.__doc__ = info.fn.__doc__
    monkeypatch.setitem(METHODS._entries, name, dataclasses.replace(info, fn=does_nothing))
    with pytest.raises(AssertionError, match="did not forget"):
        check_contract(name)
