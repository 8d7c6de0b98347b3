"""A bench's full description, validated in one place before any training starts.

:func:`resolve` is the one check: ``obliviate bench`` calls it and stops at the first problem,
``obliviate validate`` calls it with ``collect=True`` and prints every problem at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.bench.executors import EXECUTORS
from obliviate.bench.interfaces import is_language_model
from obliviate.bench.spec import PROTOCOLS, ProtocolSpec, protocol_for
from obliviate.calibrate import auto_field, default_step, marked
from obliviate.config import build_config, parse_assignments  # noqa: F401  (re-exported)
from obliviate.data import SCENARIOS, load_scenario
from obliviate.errors import ConfigError, ObliviateError
from obliviate.paths import check_folder_target
from obliviate.registry import did_you_mean
from obliviate.unlearning import MethodInfo, default_methods, resolve_method

DEVICES = ("auto", "cpu", "cuda")
# Sane bounds: past them a bench runs for days or hangs before printing anything. The
# NeurIPS 2023 challenge used 512 models per side; published tables use 3-10 seeds.
MAX_SEEDS = 1000
MAX_MODELS = 4096


@dataclass
class BenchConfig:
    """What ``obliviate bench`` runs; ``set`` holds ``OWNER.PARAM=VALUE`` overrides.

    ``methods``, ``forget`` and ``protocol`` left at None take the scenario's defaults: the
    methods registered ``default=True`` for its task, its default forget spec, and the protocol
    that is the default for its task.
    """

    scenario: str
    methods: list[str] | None = None
    forget: str | None = None
    protocol: str | None = None
    seeds: int = 1
    models: int | None = None
    executor: str = "local"
    out: Path = Path("runs/bench")
    set: list[str] = field(default_factory=list)
    save_models: bool = False
    quiet: bool = False
    cache: Path | None = None  # reference-model cache; default OUT/models
    address: str | None = None  # an existing Ray cluster (--executor ray)
    model: str | None = None  # scenario.model: a registered model or module:factory
    data: str | None = None  # scenario.data: KIND:PATH of the user's data
    device: str = "cpu"
    retry_failed: bool = False

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache is not None else Path(self.out) / "models"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BenchConfig:
        """A BenchConfig from a flat mapping (a YAML file, the CLI's options), type-checked."""
        keys = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in keys]
        if unknown:
            raise ConfigError(
                f"Unknown bench setting '{unknown[0]}'. {did_you_mean(str(unknown[0]), keys)}"
                f"Valid settings: {', '.join(keys)}."
            )
        if "scenario" not in data:
            raise ConfigError("The bench config has no 'scenario'; add e.g. 'scenario: digits'.")
        values = {k: _setting(k, v) for k, v in data.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["out"] = str(self.out)
        out["cache"] = str(self.cache_dir)
        return out


def _setting(key: str, value: Any) -> Any:
    """One bench setting coerced to its type, or a ConfigError naming the setting."""

    def bad(want: str) -> ConfigError:
        return ConfigError(f"The '{key}' setting must be {want}. Got {value!r} instead.")

    if key in ("scenario", "forget", "protocol", "executor", "address", "model", "data",
               "device"):
        if value is None and key != "scenario":
            return None
        if not isinstance(value, str) or not value.strip():
            raise bad("a string" + (" such as digits" if key == "scenario" else ""))
        return value.strip()
    if key == "methods":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise bad("a list of method names, e.g. [finetune, scrub]")
        return list(value)
    if key == "set":
        if isinstance(value, Mapping):
            return [f"{k}={v}" for k, v in value.items()]
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise bad("a mapping of OWNER.PARAM: VALUE or a list of 'OWNER.PARAM=VALUE'")
        return list(value)
    if key in ("seeds", "models"):
        if value is None and key == "models":
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an int")
        return value
    if key in ("out", "cache"):
        if value is None and key == "cache":
            return None
        if not isinstance(value, str | Path) or not str(value).strip():
            raise bad("a folder path (use '.' for the current folder)")
        return Path(value)
    if not isinstance(value, bool):
        raise bad("true or false")
    return value


@dataclass
class ResolvedBench:
    """A validated bench: the scenario loaded, the protocol, every method and its config."""

    config: BenchConfig
    scenario: Any  # a data.Scenario, or an LM scenario
    protocol: ProtocolSpec
    methods: dict[str, MethodInfo]
    method_configs: dict[str, Any]
    seeds: list[int]
    protocol_options: Any = None
    device: str = "cpu"

    @property
    def n_models(self) -> int:
        """Models per side (challenge) or in all (ulira); 1 for one-model protocols."""
        return self.config.models or self.protocol.default_models or 1

    @property
    def task(self) -> str:
        return self.scenario.task


class Problems(ConfigError):
    """Every problem :func:`resolve` found, one message each (``validate`` prints them all)."""

    def __init__(self, messages: list[str]):
        super().__init__(messages[0])
        self.messages = messages


class _Collector:
    def __init__(self, collect: bool):
        self.collect, self.messages = collect, []

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ObliviateError as exc:
            if not self.collect:
                raise
            for message in getattr(exc, "messages", [str(exc)]):
                if message not in self.messages:
                    self.messages.append(message)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` must exist."""
    import torch

    if device not in DEVICES:
        raise ConfigError(f"Unknown device '{device}'. {did_you_mean(device, list(DEVICES))}"
                          f"Use one of: {', '.join(DEVICES)}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU; use "
                          "--device cpu or auto.")
    return device


def _check_bench_numbers(cfg: BenchConfig, protocol: ProtocolSpec | None) -> None:
    if not isinstance(cfg.seeds, int) or isinstance(cfg.seeds, bool) or cfg.seeds < 1:
        raise ConfigError(f"--seeds must be an int >= 1. Got {cfg.seeds!r} instead.")
    if cfg.seeds > MAX_SEEDS:
        raise ConfigError(f"--seeds must be at most {MAX_SEEDS} (each seed trains its own "
                          f"original and retrained models). Got {cfg.seeds} instead.")
    if cfg.models is None or protocol is None:
        return
    if protocol.default_models is None:
        raise ConfigError(f"--models sets the number of models of a population protocol; "
                          f"{protocol.name} trains one model of each kind per seed. Drop "
                          f"--models.")
    if isinstance(cfg.models, bool) or not isinstance(cfg.models, int) or cfg.models < 3:
        raise ConfigError(f"--models must be an int >= 3 (the challenge used 512; the "
                          f"{protocol.name} default here is {protocol.default_models}). Got "
                          f"{cfg.models!r} instead.")
    if cfg.models > MAX_MODELS:
        raise ConfigError(f"--models must be at most {MAX_MODELS} (the challenge used 512 per "
                          f"side; each model is trained). Got {cfg.models} instead.")


def resolve(cfg: BenchConfig, *, collect: bool = False) -> ResolvedBench:
    """Check every part of ``cfg`` and load what it names, before anything trains.

    Raises:
        ConfigError (and the other ObliviateErrors): the first problem, or with ``collect``
            a :class:`Problems` holding every problem found.
    """
    problems = _Collector(collect)
    spec = protocol = sc = None
    with problems.check():
        spec = SCENARIOS.get(cfg.scenario)
    with problems.check():
        protocol = protocol_for(spec.task, cfg.protocol) if spec is not None else (
            PROTOCOLS.get(cfg.protocol) if cfg.protocol else None)
    with problems.check():
        executors = protocol.executors if protocol is not None else EXECUTORS
        if cfg.executor not in executors:
            raise ConfigError(f"Unknown executor '{cfg.executor}'. "
                              f"{did_you_mean(cfg.executor, list(executors))}"
                              f"Available here: {', '.join(executors)}.")
        if cfg.address is not None and cfg.executor != "ray":
            raise ConfigError("--address names a Ray cluster; add --executor ray or drop "
                              "--address.")
    with problems.check():
        _check_bench_numbers(cfg, protocol)
    device = "cpu"
    with problems.check():
        device = resolve_device(cfg.device)
    with problems.check():
        check_folder_target(cfg.out, "--out")
    with problems.check():
        check_folder_target(cfg.cache_dir, "--cache")
    sets: dict[str, dict[str, str]] = {}
    with problems.check():
        sets = parse_assignments(cfg.set)
    names = cfg.methods
    if names is None and spec is not None:
        names = default_methods(spec.task)
    infos: dict[str, MethodInfo] = {}
    for name in names or []:
        with problems.check():
            if name in infos:
                raise ConfigError(f"Method '{name}' is listed twice; list each method once.")
            info = resolve_method(name)
            if spec is not None:
                info.refuse_task(spec.task, cfg.scenario)
            infos[name] = info
    with problems.check():
        if names is not None and not names:
            raise ConfigError("No method given; pass -m METHOD (see 'obliviate methods').")
    owners = {"recipe", "scenario", cfg.scenario, *infos, *(cfg.methods or [])}
    if protocol is not None and protocol.options is not None:
        owners.add("protocol")
    for owner in sets:
        with problems.check():
            if owner not in owners:
                others = " or ".join(f"'{o}'" for o in sorted(
                    owners - set(infos) - set(cfg.methods or []) - {cfg.scenario}))
                raise ConfigError(
                    f"--set names '{owner}', which is neither a method of this bench nor "
                    f"{others}. {did_you_mean(owner, sorted(owners))}"
                    f"Methods here: {', '.join(infos) or '(none)'}."
                )
    if spec is not None:
        with problems.check():
            options = {**sets.get("scenario", {}), **sets.get(cfg.scenario, {})}
            options.update({k: v for k, v in (("model", cfg.model), ("data", cfg.data))
                            if v is not None})
            if spec.load is not None and device != "cpu":  # a self-loading scenario (LM)
                options.setdefault("device", device)
            sc = load_scenario(cfg.scenario, forget=cfg.forget, seed=0,
                               recipe=sets.get("recipe"), **options)
            if not is_language_model(sc):  # a language model's device is its own option
                sc.device = device
    configs: dict[str, Any] = {}
    model = None
    for name, info in infos.items():
        with problems.check():
            tuned = sc.method_defaults.get(info.name, {}) if sc is not None else {}
            given = {**tuned, **sets.get(name, {})}
            auto = auto_field(given)  # --set METHOD.lr=auto: calibrated when the bench runs
            configs[name] = info.build_config({k: v for k, v in given.items() if k != auto})
            if auto is not None:
                if spec is not None and spec.task not in ("classification", "lm"):
                    raise ConfigError(f"{name}.{auto}=auto judges trials by accuracy, which "
                                      f"{spec.task} models have not; set a number.")
                default_step(info, auto, sc.recipe if sc is not None else None)
                configs[name] = marked(configs[name], auto)
            if sc is not None and info.check is not None:
                model = model if model is not None else sc.new_model(0)
                info.check_model(model, configs[name])
    options_cfg = None
    if protocol is not None and protocol.options is not None:
        with problems.check():
            options_cfg = build_config(protocol.options, sets.get("protocol"),
                                       f"protocol {protocol.name}")
            check = getattr(options_cfg, "check", None)
            if check is not None:
                check(cfg.models or protocol.default_models, sc)
    if protocol is not None and protocol.check_scenario is not None and sc is not None:
        with problems.check():  # what the protocol's attacks need of the data, before training
            protocol.check_scenario(sc, options_cfg)
    if problems.messages:
        raise Problems(problems.messages)
    return ResolvedBench(cfg, sc, protocol, infos, configs, list(range(cfg.seeds)), options_cfg,
                         device)
