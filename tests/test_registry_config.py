from dataclasses import dataclass

import pytest

import obliviate as ob
from obliviate.config import build_config, param
from obliviate.registry import Registry


def test_registry_refuses_duplicates_and_suggests_names():
    reg = Registry("widget")
    reg.add("scrub", 1)
    with pytest.raises(ob.ConfigError, match="already registered"):
        reg.add("scrub", 2)
    with pytest.raises(ob.UnknownNameError, match="Did you mean 'scrub'\\? Available: scrub."):
        reg.get("scrb")


def test_unknown_method_is_a_typed_error_with_hint():
    with pytest.raises(ob.UnknownNameError, match="Did you mean 'finetune'"):
        ob.METHODS.get("fintune")


@dataclass(frozen=True)
class Cfg:
    lr: float = param(0.1, gt=0)
    epochs: int = param(3, ge=1)
    mode: str = param("a", choices=("a", "b"))
    layers: tuple[int, ...] = param((1, 2))
    frac: float | None = param(None, gt=0, lt=1)


def test_build_config_coerces_strings_from_the_command_line():
    cfg = build_config(Cfg, {"lr": "0.5", "epochs": "7", "layers": "3,4", "frac": "0.2"}, "m")
    assert cfg == Cfg(lr=0.5, epochs=7, layers=(3, 4), frac=0.2)
    assert build_config(Cfg, {"frac": "none"}, "m").frac is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr": -0.1}, "The 'lr' parameter of m must be a float > 0. Got -0.1 instead."),
        ({"epochs": 0}, "The 'epochs' parameter of m must be an int >= 1. Got 0 instead."),
        ({"epochs": 2.5}, "The 'epochs' parameter of m must be an int >= 1. Got 2.5 instead."),
        ({"mode": "c"}, "The 'mode' parameter of m must be one of 'a', 'b'. Got 'c' instead."),
        ({"lr": "fast"}, "The 'lr' parameter of m must be a float > 0. Got 'fast' instead."),
        ({"frac": 1.5}, "The 'frac' parameter of m must be a float or None > 0 and < 1."),
    ],
)
def test_build_config_rejects_bad_values_sklearn_style(overrides, message):
    with pytest.raises(ob.ConfigError) as info:
        build_config(Cfg, overrides, "m")
    assert str(info.value).startswith(message)


def test_build_config_unknown_key_suggests_the_closest():
    with pytest.raises(ob.ConfigError, match="m has no parameter 'epoch'. Did you mean 'epochs'"):
        build_config(Cfg, {"epoch": 3}, "m")
