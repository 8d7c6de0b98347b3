"""sklearn-style common tests: one contract, every registered method."""

import copy
import re

import pytest
import torch
from torch import nn

import obliviate as ob
from conftest import tiny_problem as _tiny_problem
from obliviate.config import field_info


def tiny_problem(seed=0):
    return _tiny_problem(seed, hidden_layers=1)


def small_overrides(info):
    fields = {name for name, *_ in field_info(info.config)} if info.config else set()
    return {"epochs": 1} if "epochs" in fields else {}


@pytest.mark.parametrize("name", ob.METHODS.names())
def test_method_contract(name):
    info = ob.METHODS.get(name)
    model, forget, retain = tiny_problem()
    before = copy.deepcopy(model.state_dict())
    kwargs = small_overrides(info)
    a = ob.unlearn(model, forget, retain, method=name, seed=3, **kwargs)
    b = ob.unlearn(model, forget, retain, method=name, seed=3, **kwargs)
    assert isinstance(a, nn.Module) and a is not model
    for key, value in model.state_dict().items():  # input untouched
        assert torch.equal(value, before[key]), key
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), f"{name}: same seed gave different {key}"
    assert not a.training
    assert info.summary and info.paper and info.family
    assert info.fn.__doc__ and "References:" in info.fn.__doc__


@pytest.mark.parametrize("name", ob.METHODS.names())
def test_method_refuses_bad_config(name):
    info = ob.METHODS.get(name)
    model, forget, retain = tiny_problem()
    with pytest.raises(ob.ConfigError, match=re.escape(f"{name} has no parameter 'not_a_param'")):
        ob.unlearn(model, forget, retain, method=name, not_a_param=1)
    fields = {n for n, *_ in field_info(info.config)}
    for bad in ({"lr": -0.1}, {"epochs": 0}):
        key = next(iter(bad))
        if key in fields:
            with pytest.raises(ob.ConfigError, match=re.escape(f"The '{key}' parameter of {name} must be")):
                ob.unlearn(model, forget, retain, method=name, **bad)
