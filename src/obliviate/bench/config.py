"""A bench's full description, validated in one place before any training starts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.bench.executors import EXECUTORS
from obliviate.bench.protocols import PROTOCOLS, ProtocolSpec
from obliviate.config import build_config
from obliviate.data import SCENARIOS, load_scenario, parse_forget_spec
from obliviate.data.scenario import Scenario
from obliviate.errors import ConfigError
from obliviate.evaluate.tasks import check_method_task
from obliviate.registry import did_you_mean
from obliviate.unlearning import MethodInfo, resolve_method

DEFAULT_METHODS = ("retrain", "finetune", "neggrad", "neggrad+", "random-label")
YAML_KEYS = ("scenario", "methods", "forget", "protocol", "seeds", "models", "executor", "out",
             "set", "quiet", "save_models", "cache", "address")


@dataclass
class BenchConfig:
    """What ``obliviate bench`` runs; ``set`` holds ``KEY=VALUE`` overrides."""

    scenario: str
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    forget: str | None = None  # None: the scenario's default (random:0.1 unless it says)
    protocol: str = "quick"
    seeds: int = 1
    models: int | None = None
    executor: str = "local"
    out: Path = Path("runs/bench")
    set: list[str] = field(default_factory=list)
    save_models: bool = False
    quiet: bool = False
    cache: Path | None = None  # reference-model cache; default OUT/models
    address: str | None = None  # an existing Ray cluster (--executor ray)

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache is not None else Path(self.out) / "models"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BenchConfig:
        unknown = [k for k in data if k not in YAML_KEYS]
        if unknown:
            raise ConfigError(
                f"Unknown bench setting '{unknown[0]}'. {did_you_mean(unknown[0], list(YAML_KEYS))}"
                f"Valid settings: {', '.join(YAML_KEYS)}."
            )
        if "scenario" not in data:
            raise ConfigError("The bench config has no 'scenario'; add e.g. 'scenario: digits'.")
        values = dict(data)
        if isinstance(values.get("methods"), str):
            values["methods"] = [values["methods"]]
        if isinstance(values.get("set"), Mapping):
            values["set"] = [f"{k}={v}" for k, v in values["set"].items()]
        for key in ("out", "cache"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["out"] = str(self.out)
        out["cache"] = str(self.cache_dir)
        return out


@dataclass
class ResolvedBench:
    """A validated bench: the scenario loaded, every method and its config resolved."""

    config: BenchConfig
    scenario: Scenario
    methods: dict[str, MethodInfo]
    method_configs: dict[str, Any]
    seeds: list[int]
    protocol_options: Any = None

    @property
    def protocol(self) -> ProtocolSpec:
        return PROTOCOLS.get(self.config.protocol)

    @property
    def n_models(self) -> int:
        """Models per side (challenge) or in all (ulira); 1 for the quick protocol."""
        return self.config.models or self.protocol.default_models or 1


def parse_assignments(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["scrub.epochs=5", "recipe.lr=0.1"]`` -> ``{"scrub": {"epochs": "5"}, ...}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        owner, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not owner or not name:
            raise ConfigError(
                f"Malformed --set '{item}': write OWNER.PARAM=VALUE, e.g. finetune.lr=0.01, "
                f"recipe.epochs=5 or scenario.train_size=5000."
            )
        out.setdefault(owner, {})[name] = value.strip()
    return out


def _check_choice(kind: str, value: str, choices: tuple[str, ...], later: str) -> None:
    if value not in choices:
        raise ConfigError(
            f"Unknown {kind} '{value}'. {did_you_mean(value, list(choices))}"
            f"Available now: {', '.join(choices)}{later}."
        )


def check_scenario_task(scenario: Scenario, protocol: str, infos: Mapping[str, MethodInfo]
                        ) -> None:
    """Regression and anomaly scenarios: the quick protocol, and methods that need no classes."""
    if scenario.task == "classification":
        return
    if protocol != "quick":
        raise ConfigError(f"The {protocol} protocol scores class confidences; {scenario.name} is "
                          f"a {scenario.task} scenario. Use --protocol quick.")
    for info in infos.values():
        check_method_task(info.name, info.family, scenario.task)


def resolve(cfg: BenchConfig) -> ResolvedBench:
    """Check every part of ``cfg`` and load what it names; raises on the first problem."""
    SCENARIOS.get(cfg.scenario)
    protocol = PROTOCOLS.get(cfg.protocol)
    _check_choice("executor", cfg.executor, EXECUTORS, "")
    if cfg.address is not None and cfg.executor != "ray":
        raise ConfigError("--address names a Ray cluster; add --executor ray or drop --address.")
    if not isinstance(cfg.seeds, int) or isinstance(cfg.seeds, bool) or cfg.seeds < 1:
        raise ConfigError(f"--seeds must be an int >= 1. Got {cfg.seeds!r} instead.")
    if cfg.models is not None and protocol.default_models is None:
        raise ConfigError("--models sets the number of models of the challenge protocol; the "
                          "quick protocol trains one of each per seed. Drop --models.")
    if cfg.models is not None and (isinstance(cfg.models, bool) or not isinstance(cfg.models, int)
                                   or cfg.models < 3):
        raise ConfigError(f"--models must be an int >= 3 (the challenge used 512; the CPU default "
                          f"is 64, 32 for ulira). Got {cfg.models!r} instead.")
    if not cfg.methods:
        raise ConfigError("No method given; pass -m METHOD (see 'obliviate methods').")
    if cfg.forget is None:
        cfg.forget = SCENARIOS.get(cfg.scenario).default_forget
    parse_forget_spec(cfg.forget)
    sets = parse_assignments(cfg.set)
    infos = {}
    for name in cfg.methods:
        if name in infos:
            raise ConfigError(f"Method '{name}' is listed twice; list each method once.")
        infos[name] = resolve_method(name)
    owners = {"recipe", "scenario", cfg.scenario, *infos}
    if protocol.options is not None:
        owners.add("protocol")
    for owner in sets:
        if owner not in owners:
            others = " or ".join(f"'{o}'" for o in sorted(owners - set(infos) - {cfg.scenario}))
            raise ConfigError(
                f"--set names '{owner}', which is neither a method of this bench nor {others}. "
                f"{did_you_mean(owner, sorted(owners))}Methods here: {', '.join(infos)}."
            )
    options = {**sets.get("scenario", {}), **sets.get(cfg.scenario, {})}
    scenario = load_scenario(cfg.scenario, forget=cfg.forget, seed=0,
                             recipe=sets.get("recipe"), **options)
    check_scenario_task(scenario, cfg.protocol, infos)
    configs = {}
    for name, info in infos.items():
        tuned = scenario.method_defaults.get(info.name, {})
        configs[name] = info.build_config({**tuned, **sets.get(name, {})})
    options = None
    if protocol.options is not None:
        options = build_config(protocol.options, sets.get("protocol"),
                               f"protocol {cfg.protocol}")
        options.check(cfg.models or protocol.default_models)
    return ResolvedBench(cfg, scenario, infos, configs, list(range(cfg.seeds)), options)


