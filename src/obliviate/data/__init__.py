"""Offline data: sources, forget specs, scenarios."""

from obliviate.data.catalog import SCENARIOS, ScenarioSpec, load_scenario
from obliviate.data.forget import ForgetSpec, index_hash, parse_forget_spec, select_forget
from obliviate.data.scenario import Scenario, Splits

__all__ = [
    "SCENARIOS", "ForgetSpec", "Scenario", "ScenarioSpec", "Splits", "index_hash",
    "load_scenario", "parse_forget_spec", "select_forget",
]
