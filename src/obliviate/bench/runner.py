"""Run a bench: reference models per seed, every method per seed, metrics into the store."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from obliviate.bench.cache import ModelCache
from obliviate.bench.config import BenchConfig, ResolvedBench, method_config_dict, resolve
from obliviate.bench.leaderboard import build_leaderboard, write_leaderboard
from obliviate.bench.store import ResultStore, atomic_write_text, ensure_writable_dir
from obliviate.config import config_dict
from obliviate.errors import TrainingDivergedError
from obliviate.evaluate.audit import PROTOCOL, AuditReport, measure
from obliviate.unlearning import unlearn

Progress = Callable[[str], None]
# how each protocol ranks methods: by mean |gap| to retrain, by final score, by attack accuracy
SORT = {"quick": {"sort_by": "avg_gap", "ascending": True},
        "challenge": {"sort_by": "score", "ascending": False},
        "ulira": {"sort_by": "attack_acc", "ascending": True}}


@dataclass
class Job:
    key: str
    kind: str  # 'original', 'retrain' (references) or 'method'
    method: str
    seed: int


def _key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def protocol_version(rb: ResolvedBench) -> str:
    if rb.config.protocol == "challenge":
        from obliviate.evaluate.challenge import PROTOCOL as CHALLENGE

        return CHALLENGE
    if rb.config.protocol == "ulira":
        from obliviate.bench.ulira_run import PROTOCOL as ULIRA

        return ULIRA
    return PROTOCOL


def plan(rb: ResolvedBench) -> list[Job]:
    """Every job of the bench, references first for each seed; keys identify finished work."""
    sc = rb.scenario
    base: tuple = (sc.describe(), protocol_version(rb))
    if rb.config.protocol != "quick":
        base += (rb.n_models, config_dict(rb.protocol_options))
    jobs = []
    for seed in rb.seeds:
        jobs.append(Job(_key(base, "original", seed), "original", "original", seed))
        jobs.append(Job(_key(base, "retrain-reference", seed), "retrain", "retrain (reference)",
                        seed))
        for name, info in rb.methods.items():
            cfg = method_config_dict(rb.method_configs[name])
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
        "protocol": protocol_version(rb),
        "protocol_options": config_dict(rb.protocol_options),
        "n_models": rb.n_models if rb.config.protocol != "quick" else 1,
        "scenario": rb.scenario.describe(),
        "methods": {n: {"method": i.name, "family": i.family,
                        "config": method_config_dict(rb.method_configs[n])}
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

    @property
    def total_steps(self) -> int:
        """Progress units: one per job, or per unlearning run under the challenge protocol."""
        if self.rb.config.protocol != "quick":
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

    # ------------------------------------------------------------------ references
    def _reference(self, job: Job) -> tuple[torch.nn.Module, float]:
        sc = self.rb.scenario
        kind = "original" if job.kind == "original" else "retrained"
        train = sc.train_original_timed if kind == "original" else sc.train_retrained_timed
        model, seconds, _ = self.cache.get_or_train(
            sc.fingerprint(kind, job.seed),
            lambda: sc.new_model(job.seed),
            lambda: train(job.seed),
            {"kind": kind, "seed": job.seed, "scenario": sc.describe()},
        )
        return model, seconds

    def _record(self, store: ResultStore, job: Job, metrics: dict[str, float], wall: float | None,
                losses: dict, config: dict) -> None:
        store.save(job.key, kind="reference" if job.kind != "method" else "method",
                   method=job.method, seed=job.seed, scenario=self.rb.scenario.name,
                   protocol=PROTOCOL, config=config, metrics=metrics, wall_s=wall,
                   examples={f"{k}_loss": v.astype("float32") for k, v in losses.items()})

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
        with ResultStore(self.out / "results.sqlite") as store:
            for seed in self.rb.seeds:
                seed_jobs = [j for j in self.jobs if j.seed == seed]
                if self.rb.config.protocol == "quick":
                    self._quick_seed(store, seed_jobs, say, step)
                else:
                    self._driver().run_seed(store, seed_jobs, say, step)
            board = build_leaderboard(store, self.jobs, **SORT[self.rb.config.protocol])
        write_leaderboard(board, self.out)
        return board

    def _driver(self):
        if self.rb.config.protocol == "challenge":
            from obliviate.bench.challenge_run import ChallengeDriver

            return ChallengeDriver(self, self.rb.protocol_options, self.rb.n_models)
        from obliviate.bench.ulira_run import UliraDriver

        return UliraDriver(self, self.rb.protocol_options, self.rb.n_models)

    def _quick_seed(self, store: ResultStore, seed_jobs: list[Job], say: Progress,
                    step: Callable[[], None]) -> None:
        sc, seed = self.rb.scenario, seed_jobs[0].seed
        if all(store.is_done(j.key) for j in seed_jobs):
            for _ in seed_jobs:
                step()
            return
        models, refs, seconds = {}, {}, {}
        for job in seed_jobs[:2]:
            say(f"seed {seed}: {job.method}")
            models[job.kind], seconds[job.kind] = self._reference(job)
            metrics, losses = measure(models[job.kind], sc, seed=seed)
            refs[job.kind] = AuditReport(metrics, losses)
            if not store.is_done(job.key):
                self._record(store, job, metrics, seconds[job.kind], losses,
                             config_dict(sc.recipe))
            step()
        original, retrain_ref = models["original"], refs["retrain"]
        retrain_seconds = seconds["retrain"]
        for job in seed_jobs[2:]:
            if not store.is_done(job.key):
                say(f"seed {seed}: {job.method}")
                self._run_method(store, job, original, retrain_ref, retrain_seconds)
            step()

    def _run_method(self, store: ResultStore, job: Job, original: torch.nn.Module,
                    reference: AuditReport, retrain_seconds: float) -> None:
        sc, info = self.rb.scenario, self.rb.methods[job.method]
        cfg = self.rb.method_configs[job.method]
        cfg_dict = method_config_dict(cfg)
        start = time.perf_counter()
        try:
            model = unlearn(
                original, sc.forget_loader(seed=job.seed), sc.retain_loader(seed=job.seed),
                method=info, num_classes=sc.num_classes, val=sc.val_loader(), seed=job.seed,
                recipe=sc.recipe, config=cfg,
            )
        except TrainingDivergedError as exc:
            self.fail(store, job, exc, PROTOCOL, cfg_dict)
            return
        wall = time.perf_counter() - start
        metrics, losses = measure(model, sc, seed=job.seed)
        report = AuditReport(metrics, losses, dict(reference.metrics))
        values = report.to_dict()
        values["time_s"] = wall
        values["time_ratio"] = wall / retrain_seconds if retrain_seconds else float("nan")
        self._record(store, job, values, wall, losses, cfg_dict)
        if self.rb.config.save_models:
            ModelCache(self.out / "models").save(f"unlearned-{job.method}-seed{job.seed}-{job.key[:8]}", model,
                            {"method": job.method, "config": cfg_dict, "seed": job.seed})
