"""The ``quick`` protocol in the bench: one original, one retrained, one run of each method."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obliviate.bench.cache import ModelCache
from obliviate.config import config_dict
from obliviate.errors import TrainingDivergedError
from obliviate.evaluate.audit import PROTOCOL, AuditReport, measure
from obliviate.timing import stopwatch
from obliviate.unlearning import unlearn

if TYPE_CHECKING:
    from obliviate.bench.runner import BenchRun, Job
    from obliviate.bench.store import ResultStore


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
                   examples={f"{k}_loss": v.astype("float32") for k, v in losses.items()})

    def run_seed(self, store: ResultStore, seed_jobs: list[Job], say, step) -> None:
        sc, seed = self.sc, seed_jobs[0].seed
        if all(store.is_done(j.key) for j in seed_jobs):
            for _ in seed_jobs:
                step()
            return
        models, refs, seconds = {}, {}, {}
        for job in seed_jobs[:2]:
            say(f"seed {seed}: {job.method}")
            models[job.kind], seconds[job.kind] = self.run.reference(job)
            metrics, losses = measure(models[job.kind], sc, seed=seed)
            refs[job.kind] = AuditReport(metrics, losses)
            if not store.is_done(job.key):
                self._record(store, job, metrics, seconds[job.kind], losses,
                             config_dict(sc.recipe))
            step()
        for job in seed_jobs[2:]:
            if not store.is_done(job.key):
                say(f"seed {seed}: {job.method}")
                self._method(store, job, models["original"], refs["retrain"],
                             seconds["retrain"])
            step()

    def _method(self, store: ResultStore, job: Job, original, reference: AuditReport,
                retrain_seconds: float) -> None:
        sc, rb = self.sc, self.run.rb
        cfg = rb.method_configs[job.method]
        cfg_dict = config_dict(cfg)
        try:
            with stopwatch() as watch:
                model = unlearn(
                    original, sc.forget_loader(seed=job.seed), sc.retain_loader(seed=job.seed),
                    method=rb.methods[job.method], num_classes=sc.num_classes,
                    val=sc.val_loader(), seed=job.seed, recipe=sc.recipe, config=cfg,
                )
        except TrainingDivergedError as exc:
            self.run.fail(store, job, exc, PROTOCOL, cfg_dict)
            return
        wall = watch.seconds
        metrics, losses = measure(model, sc, seed=job.seed)
        values = AuditReport(metrics, losses, dict(reference.metrics)).to_dict()
        values["time_s"] = wall
        values["time_ratio"] = wall / retrain_seconds if retrain_seconds else float("nan")
        self._record(store, job, values, wall, losses, cfg_dict)
        if rb.config.save_models:
            ModelCache(self.run.out / "models").save(
                f"unlearned-{job.method}-seed{job.seed}-{job.key[:8]}", model,
                {"method": job.method, "config": cfg_dict, "seed": job.seed})
