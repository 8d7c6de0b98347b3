"""Input checks of issue #19 part 3 at the Python level: the thread-count screen, ASCII-only
numbers in forget specs, bounds, audit's typed checks (the same as unlearn's) and mapping
inputs passed to a ``forward(batch)`` model positionally."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.data.forget import parse_forget_spec, read_ids_file
from obliviate.environment import screen_thread_variables, valid_thread_count
from obliviate.errors import ConfigError, DataError, ForgetSpecError


@pytest.mark.parametrize("value", ["abc", "0", "-3", "", "1.5", "2,0", " "])
def test_invalid_thread_counts_are_taken_out_of_the_environment(value):
    env = {"OMP_NUM_THREADS": value, "OTHER": "x"}
    assert not valid_thread_count(value)
    assert screen_thread_variables(env)["OMP_NUM_THREADS"] == value
    assert env == {"OTHER": "x"}


@pytest.mark.parametrize("value", ["1", "16", " 2", "4,2", "+2", "02"])
def test_valid_thread_counts_stay(value):
    env = {"OMP_NUM_THREADS": value}
    assert valid_thread_count(value)
    screen_thread_variables(env)
    assert env == {"OMP_NUM_THREADS": value}


@pytest.mark.parametrize("spec", ["random:\u0661\u0662", "random:1_0", "classes:\u0663,4",
                                  "class:1_0", "groups:\u0660.5", "classes:3,3"])
def test_forget_specs_take_ascii_numbers_and_distinct_classes(spec):
    with pytest.raises(ForgetSpecError):
        parse_forget_spec(spec)


@pytest.mark.parametrize("line", ["\u0661\u0662", "1_0", "\uff13", "0x10", "1e3"])
def test_ids_files_take_ascii_integers_only(tmp_path, line):
    path = tmp_path / "ids.txt"
    path.write_text(f"3\n{line}\n")
    with pytest.raises(ForgetSpecError, match="line 2"):
        read_ids_file(path)


def test_empty_cache_is_refused():
    with pytest.raises(ConfigError, match="'cache' setting must be a folder path"):
        BenchConfig.from_mapping({"scenario": "digits", "cache": " "})


def test_tune_refuses_a_million_models_before_loading_anything():
    from obliviate.tune import tune

    with pytest.raises(ConfigError, match="at most 4096 models"):
        tune("digits", "finetune", models=10**6)
    with pytest.raises(ConfigError, match="lr_scale values must be numbers > 0"):
        tune("digits", "finetune", grid={"lr_scale": ["abc"]}, models=3)


def test_a_method_module_that_does_not_compile_is_one_config_error(tmp_path, monkeypatch):
    from obliviate.unlearning import resolve_method

    (tmp_path / "broken_method_mod.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="failed to import \\(SyntaxError"):
        resolve_method("broken_method_mod:f")


# ----------------------------------------------------------------------- audit = unlearn's
def _data(n=40, features=4, classes=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, features, generator=g), torch.arange(n) % classes


def _loader(x, y):
    return DataLoader(TensorDataset(x, y), batch_size=8)


class OneOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        return self.lin(x).squeeze(1)


@pytest.mark.parametrize("case", ["labels beyond logits", "inputs it cannot take",
                                  "1-D outputs"])
def test_audit_raises_the_typed_errors_unlearn_raises(case):
    x, y = _data()
    model: nn.Module = nn.Linear(4, 3)
    forget = (x, y)
    if case == "labels beyond logits":
        forget = (x, y + 5)
    elif case == "inputs it cannot take":
        forget = (torch.randn(40, 7), y)
    else:
        model, y = OneOutput(), y * 0
    errors = []
    for call in (lambda: ob.audit(model, forget=_loader(*forget), retain=_loader(x, y),
                                  test=(x, y)),
                 lambda: ob.unlearn(model, forget=_loader(*forget), retain=_loader(x, y),
                                    method="finetune", epochs=1)):
        with pytest.raises(DataError) as info:
            call()
        errors.append(str(info.value))
    assert errors[0] == errors[1]  # one check, one message
    assert "\n" not in errors[0]


class TakesTheMapping(nn.Module):
    """``forward(batch)`` reads the mapping itself (the convention before keyword unpacking)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, batch):
        return self.lin(batch["pixels"] * batch["scale"])


class TakesKeywords(nn.Module):
    """Hugging Face style: the mapping's keys are forward's keyword arguments."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, pixels, scale=None):
        return self.lin(pixels * scale)


class TakesTwo(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, a, b):
        return self.lin(a + b)


def _mapping_loader():
    x, y = _data()
    items = [({"pixels": x[i], "scale": torch.tensor([2.0])}, y[i]) for i in range(len(y))]
    return DataLoader(items, batch_size=8)


@pytest.mark.parametrize("kind", [TakesTheMapping, TakesKeywords])
def test_mapping_inputs_reach_both_kinds_of_model(kind):
    torch.manual_seed(0)
    model = kind()
    loader = _mapping_loader()
    report = ob.audit(model, forget=loader, retain=loader, test=loader)
    x, y = _data()
    expected = (model.lin(x * 2).argmax(1) == y).float().mean().item()
    assert report.metrics["RA"] == pytest.approx(expected)
    out = ob.unlearn(model, forget=loader, retain=loader, method="finetune", epochs=1)
    assert not torch.equal(out.lin.weight, model.lin.weight)


def test_a_mapping_that_fits_neither_convention_names_it():
    loader = _mapping_loader()
    with pytest.raises(DataError, match="as keyword arguments .* or as the one positional"):
        ob.audit(TakesTwo(), forget=loader, retain=loader, test=loader)


def test_ulira_refuses_a_one_example_forget_set_before_training(tmp_path):
    from obliviate.bench.config import resolve

    ids = tmp_path / "one.txt"
    ids.write_text("3\n")
    cfg = BenchConfig.from_mapping({"scenario": "digits", "protocol": "ulira", "methods":
                                    ["finetune"], "forget": f"ids:{ids}",
                                    "out": str(tmp_path / "out")})
    with pytest.raises(ConfigError, match="U-LiRA splits the forget set into halves"):
        resolve(cfg)
    assert not (tmp_path / "out").exists()


def test_error_messages_are_one_line_whatever_they_quote():
    err = DataError("column 'a\nb' is\tbad")
    assert str(err) == "column 'a b' is bad"
    with pytest.raises(ForgetSpecError, match="line break"):
        parse_forget_spec("random:0\n0")
