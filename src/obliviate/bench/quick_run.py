"""The ``quick`` protocol in the bench: one original, one retrained, one run of each method.

Two rounds of independent tasks go to the bench's executor: the reference models of every seed,
then every (seed, method) unlearning run. Tasks return weights and numbers; only this driver
writes the store and the model cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from obliviate.bench.cache import ModelCache
from obliviate.bench.executors import Task
from obliviate.config import config_dict
from obliviate.evaluate.audit import PROTOCOL, AuditReport, measure
from obliviate.evaluate.intervals import loss_mia_replicates
from obliviate.timing import stopwatch
from obliviate.unlearning import unlearn

if TYPE_CHECKING:
    from obliviate.bench.runner import BenchRun, Job
    from obliviate.bench.store import ResultStore


MIA_BOOT = 100  # bootstrap replicates of the loss MIA per row (forget and test examples)


def mia_bootstrap(losses: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``MIA_boot``: the loss MIA on resampled forget and test examples; every row of a seed
    resamples the same positions, so rows compare paired (see evaluate/intervals.py)."""
    return {"MIA_boot": loss_mia_replicates(losses["forget"], losses["test"], n_boot=MIA_BOOT,
                                            rng=np.random.default_rng([seed, 2025]),
                                            mia_seed=seed)}


def reference_task(sc, kind: str, seed: int, cached: tuple[dict, float] | None) -> tuple:
    """Train (or load) the original or retrained model of ``seed`` and measure it."""
    if cached is None:
        train = sc.train_original_timed if kind == "original" else sc.train_retrained_timed
        model, seconds = train(seed)
    else:
        state, seconds = cached
        model = sc.new_model(seed)
        model.load_state_dict(state)
        model.eval()
    metrics, losses = measure(model, sc, seed=seed)
    return model.state_dict(), seconds, metrics, {**losses, **mia_bootstrap(losses, seed)}


def method_task(sc, original, info, cfg, seed: int, reference: dict[str, float],
                retrain_seconds: float, keep_model: bool) -> tuple:
    """Unlearn with one method from ``original`` and measure it against the retrained model."""
    with stopwatch() as watch:  # less any set-up a method marks untimed (SISA, DP, certified)
        model = unlearn(original, sc.forget_loader(seed=seed), sc.retain_loader(seed=seed),
                        method=info, num_classes=sc.num_classes, val=sc.val_loader(), seed=seed,
                        recipe=sc.recipe, config=cfg)
    wall = watch.seconds
    metrics, losses = measure(model, sc, seed=seed)
    values = AuditReport(metrics, losses, dict(reference)).to_dict()
    values["time_s"] = wall
    values["time_ratio"] = wall / retrain_seconds if retrain_seconds else float("nan")
    return (values, wall, {**losses, **mia_bootstrap(losses, seed)},
            model.state_dict() if keep_model else None)


class QuickDriver:
    """RA, FA, TA and the loss MIA of each method, with gaps to the retrained model."""

    def __init__(self, run: BenchRun, options: object, n_models: int):
        self.run = run
        self.sc = run.rb.scenario

    def _record(self, store: ResultStore, job: Job, metrics: dict, wall: float | None,
                losses: dict, config: dict) -> None:
        store.save(job.key, kind="reference" if job.kind != "method" else "method",
                   method=job.method, seed=job.seed, scenario=self.sc.name, protocol=PROTOCOL,
                   config=config, metrics=metrics, wall_s=wall,
                   examples={(k if k.endswith("_boot") else f"{k}_loss"):
                             (v if k.endswith("_boot") else v.astype("float32"))
                             for k, v in losses.items()})  # losses and MIA_boot

    def _cached(self, job: Job) -> tuple[dict, float] | None:
        kind = "original" if job.kind == "original" else "retrained"
        hit = self.run.cache.load(self.sc.fingerprint(kind, job.seed), self.sc.new_model(job.seed))
        return None if hit is None else (hit[0].state_dict(),
                                         float(hit[1].get("train_seconds", float("nan"))))

    def _model(self, state: dict, seed: int):
        model = self.sc.new_model(seed)
        model.load_state_dict(state)
        return model.eval()

    def run_all(self, store: ResultStore, jobs: list[Job], say, step) -> None:
        sc, ex = self.sc, self.run.executor
        todo = []
        for seed in self.run.rb.seeds:
            seed_jobs = [j for j in jobs if j.seed == seed]
            if all(store.is_done(j.key) for j in seed_jobs):
                for _ in seed_jobs:
                    step()
            else:
                todo.append(seed_jobs)
        if not todo:
            return
        shared = ex.put(sc)
        say("reference models")
        refs: dict[tuple[int, str], Any] = {}
        tasks = [Task(reference_task, (shared, j.kind, j.seed, self._cached(j)),
                      f"seed {j.seed}: {j.method}", j) for seed_jobs in todo for j in seed_jobs[:2]]
        for out in ex.map(tasks):
            job = out.task.tag
            if not out.ok:
                self.run.fail(store, job, RuntimeError(out.describe_error()), PROTOCOL,
                              config_dict(sc.recipe))
                step()
                continue
            state, seconds, metrics, losses = out.value
            kind = "original" if job.kind == "original" else "retrained"
            fingerprint = sc.fingerprint(kind, job.seed)
            if not self.run.cache.path(fingerprint).exists():
                self.run.cache.save(fingerprint, self._model(state, job.seed),
                                    {"kind": kind, "seed": job.seed, "scenario": sc.describe(),
                                     "train_seconds": seconds})
            refs[job.seed, job.kind] = (state, seconds, metrics)
            if not store.is_done(job.key):
                self._record(store, job, metrics, seconds, losses, config_dict(sc.recipe))
            say(f"{out.task.label} done")
            step()
        tasks = []
        for seed_jobs in todo:
            seed = seed_jobs[0].seed
            pending = [j for j in seed_jobs[2:] if not store.is_done(j.key)]
            for job in seed_jobs[2:]:
                if job not in pending:
                    step()
            missing = [k for k in ("original", "retrain") if (seed, k) not in refs]
            if missing:
                for job in pending:
                    self.run.fail(store, job, RuntimeError(
                        f"the {missing[0]} model of seed {seed} failed"), PROTOCOL, {})
                    step()
                continue
            original = ex.put(self._model(refs[seed, "original"][0], seed))
            _, retrain_seconds, retrain_metrics = refs[seed, "retrain"]
            tasks += [Task(method_task, (shared, original, self.run.rb.methods[j.method],
                                         self.run.rb.method_configs[j.method], seed,
                                         retrain_metrics, retrain_seconds,
                                         self.run.rb.config.save_models),
                           f"seed {seed}: {j.method}", j) for j in pending]
        for out in ex.map(tasks):
            self._finish(store, out)
            say(f"{out.task.label} done")
            step()

    def _finish(self, store: ResultStore, out) -> None:
        job = out.task.tag
        cfg_dict = config_dict(self.run.rb.method_configs[job.method])
        if not out.ok:
            self.run.fail(store, job, RuntimeError(out.describe_error()), PROTOCOL, cfg_dict)
            return
        values, wall, losses, state = out.value
        self._record(store, job, values, wall, {k: np.asarray(v) for k, v in losses.items()},
                     cfg_dict)
        if state is not None:
            ModelCache(self.run.out / "models").save(
                f"unlearned-{job.method}-seed{job.seed}-{job.key[:8]}",
                self._model(state, job.seed),
                {"method": job.method, "config": cfg_dict, "seed": job.seed})
