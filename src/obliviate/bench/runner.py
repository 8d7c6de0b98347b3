"""Run a bench: reference models per seed, every method per seed, metrics into the store."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from obliviate.bench.cache import ModelCache
from obliviate.bench.config import BenchConfig, ResolvedBench, resolve
from obliviate.bench.executors import make_executor
from obliviate.bench.leaderboard import build_leaderboard, chance_levels, write_leaderboard
from obliviate.bench.store import ResultStore, atomic_write_text, ensure_writable_dir
from obliviate.config import config_dict

Progress = Callable[[str], None]


@dataclass
class Job:
    key: str
    kind: str  # 'original', 'retrain' (references) or 'method'
    method: str
    seed: int


def _key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def plan(rb: ResolvedBench) -> list[Job]:
    """Every job of the bench, references first for each seed; keys identify finished work."""
    sc = rb.scenario
    base: tuple = (sc.describe(), rb.protocol.version)
    if rb.protocol.options is not None:
        base += (rb.n_models, config_dict(rb.protocol_options))
    jobs = []
    for seed in rb.seeds:
        jobs.append(Job(_key(base, "original", seed), "original", "original", seed))
        jobs.append(Job(_key(base, "retrain-reference", seed), "retrain", "retrain (reference)",
                        seed))
        for name, info in rb.methods.items():
            cfg = config_dict(rb.method_configs[name])
            jobs.append(Job(_key(base, info.name, cfg, seed), "method", name, seed))
    return jobs


def versions() -> dict[str, str]:
    import numpy
    import sklearn

    from obliviate import __version__

    return {"obliviate": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def write_run_config(rb: ResolvedBench, out: Path) -> None:
    doc = {
        "bench": rb.config.to_dict(),
        "protocol": rb.protocol.version,
        "protocol_options": config_dict(rb.protocol_options),
        "n_models": rb.n_models,
        "scenario": rb.scenario.describe(),
        "methods": {n: {"method": i.name, "family": i.family,
                        "config": config_dict(rb.method_configs[n])}
                    for n, i in rb.methods.items()},
        "seeds": rb.seeds,
        "versions": versions(),
    }
    atomic_write_text(out / "config.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")


class BenchRun:
    """One bench over a run directory; :meth:`run` is resumable."""

    def __init__(self, cfg: BenchConfig):
        self.rb = resolve(cfg)
        self.out = ensure_writable_dir(cfg.out)
        self.jobs = plan(self.rb)
        self.cache = ModelCache(ensure_writable_dir(cfg.cache_dir, "--cache"))
        self.failures: list[str] = []
        self.executor = None  # set while run() runs

    @property
    def total_steps(self) -> int:
        """Progress units: one per job, or per unlearning run when a protocol repeats runs."""
        if self.rb.protocol.default_models is not None:
            n_methods = sum(j.kind == "method" for j in self.jobs)
            return len(self.jobs) - n_methods + n_methods * self.rb.n_models
        return len(self.jobs)

    def tuned_defaults(self) -> list[str]:
        """The scenario's adjustments to methods' defaults that this bench uses."""
        tuned = self.rb.scenario.method_defaults
        sets = self.rb.config.set
        return [f"{name}.{k}={v}" for name in self.rb.methods
                for k, v in tuned.get(self.rb.methods[name].name, {}).items()
                if not any(s.startswith(f"{name}.{k}=") for s in sets)]

    def tuned_notes(self) -> dict[str, str]:
        """Per method using tuned defaults: a note when the recipe is not the tuned one."""
        mismatch = self.rb.scenario.tuning_mismatch()
        if not mismatch:
            return {}
        used = {d.partition("=")[0].rpartition(".")[0] for d in self.tuned_defaults()}
        return {m: f"tuned defaults used with {', '.join(mismatch)}" for m in used}

    # ------------------------------------------------------------------ references
    def reference(self, job: Job) -> tuple[torch.nn.Module, float]:
        sc = self.rb.scenario
        kind = "original" if job.kind == "original" else "retrained"
        train = sc.train_original_timed if kind == "original" else sc.train_retrained_timed
        model, seconds = self.cache.get_or_train(
            sc.fingerprint(kind, job.seed),
            lambda: sc.new_model(job.seed),
            lambda: train(job.seed),
            {"kind": kind, "seed": job.seed, "scenario": sc.describe()},
        )
        return model, seconds

    def fail(self, store: ResultStore, job: Job, exc: Exception, protocol: str,
             config: dict) -> None:
        """Record a method that diverged; the bench goes on and reports it at the end."""
        self.failures.append(f"seed {job.seed}: {exc}")
        store.save(job.key, kind="method", method=job.method, seed=job.seed,
                   scenario=self.rb.scenario.name, protocol=protocol, config=config, metrics={},
                   wall_s=None, status="failed", error=str(exc))

    # ------------------------------------------------------------------ the run
    def run(self, progress: Progress | None = None, advance: Callable[[], None] | None = None
            ) -> Any:
        say = progress or (lambda _msg: None)
        step = advance or (lambda: None)
        write_run_config(self.rb, self.out)
        say(f"starting the {self.rb.config.executor} executor")
        self.executor = make_executor(self.rb.config.executor, self.rb.config.address)
        try:
            with ResultStore(self.out / "results.sqlite") as store:
                spec = self.rb.protocol
                driver = spec.driver(self, self.rb.protocol_options, self.rb.n_models)
                driver.run_all(store, self.jobs, say, step)
                board = build_leaderboard(store, self.jobs, sort_by=spec.sort_by,
                                          ascending=spec.ascending,
                                          chance=chance_levels(self.rb.scenario),
                                          notes=self.tuned_notes())
        finally:
            self.executor.close()
            self.executor = None
        write_leaderboard(board, self.out)
        return board
