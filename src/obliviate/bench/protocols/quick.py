"""The ``quick`` protocol: one original, one retrained, one run of each method, per seed.

RA, FA, TA (or the task's own utility) and the starting kit's loss MIA of every model, with
each method's gap to the retrained model of its seed. Two rounds of independent tasks go to
the bench's executor: the reference models of every seed, then every (seed, method) unlearning
run. Tasks return weights and numbers; only this driver writes the store and the model cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from obliviate.bench.executors import Task
from obliviate.bench.kit import timed_training
from obliviate.bench.method_runs import timed_unlearn
from obliviate.bench.spec import (
    POSITIVE,
    PROTOCOLS,
    UNIT,
    Axes,
    Column,
    Distributions,
    ProtocolSpec,
)
from obliviate.evaluate.audit import PROTOCOL, SCENARIO_METRICS, AuditReport, measure
from obliviate.evaluate.intervals import loss_mia_replicates
from obliviate.evaluate.tasks import TASKS, gap_metrics

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job
    from obliviate.bench.spec import Progress


MIA_BOOT = 100  # bootstrap replicates of the loss MIA per row (forget and test examples)


def mia_bootstrap(losses: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``MIA_boot``: the loss MIA on resampled forget and test examples; every row of a seed
    resamples the same positions, so rows compare paired (see evaluate/intervals.py)."""
    return {"MIA_boot": loss_mia_replicates(losses["forget"], losses["test"], n_boot=MIA_BOOT,
                                            rng=np.random.default_rng([seed, 2025]),
                                            mia_seed=seed)}


def check_mia_sizes(sc, options: Any = None) -> None:
    """Refuse, before training, a scenario whose forget or test set is too small for the MIA."""
    from obliviate.errors import DataError
    from obliviate.evaluate.mia import MIN_MEMBERS

    splits = getattr(sc, "splits", None)
    if splits is None or not hasattr(sc, "forget_idx"):
        return
    sizes = {"forget": len(sc.forget_idx), "test": len(splits.y_test)}
    for name, n in sizes.items():
        if n < MIN_MEMBERS:
            raise DataError(f"The {name} set has {n} example(s) and the quick protocol's loss "
                            f"MIA needs at least {MIN_MEMBERS}; forget more examples (e.g. "
                            f"--forget random:0.1).")


def reference_task(sc, kind: str, seed: int, cached: tuple[dict, float] | None) -> tuple:
    """Train (or load) the original or retrained model of ``seed`` and measure it."""
    if cached is None:
        train = sc.train_original_timed if kind == "original" else sc.train_retrained_timed
        model, seconds = timed_training(train, seed)
    else:
        state, seconds = cached
        model = sc.new_model(seed)
        model.load_state_dict(state)
        model.eval()
    metrics, losses = measure(model, sc, seed=seed)
    return model.state_dict(), seconds, metrics, {**losses, **mia_bootstrap(losses, seed)}


def method_task(sc, original, info, cfg, seed: int, reference: dict[str, float],
                retrain_seconds: float, keep_model: bool, prepared) -> tuple:
    """Unlearn with one method from ``original`` and measure it against the retrained model."""
    model, wall = timed_unlearn(original, sc.forget_loader(seed=seed), sc.retain_loader(seed=seed),
                                info, cfg, seed, num_classes=sc.num_classes, val=sc.val_loader(),
                                recipe=sc.recipe, prepared=prepared)
    metrics, losses = measure(model, sc, seed=seed)
    values = AuditReport(metrics, losses, dict(reference)).to_dict()
    values["time_s"] = wall
    values["time_ratio"] = wall / retrain_seconds if retrain_seconds else float("nan")
    return (values, wall, {**losses, **mia_bootstrap(losses, seed)},
            model.state_dict() if keep_model else None)


def reference_rows(original: dict[str, float], retrained: dict[str, float],
                   retrain_seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """The two reference rows of a seed: the original's gaps to retrain; retrain's are 0."""
    keys = gap_metrics(original)
    gaps = {f"{m}_gap": original[m] - retrained[m] for m in keys}
    orig = {**original, **gaps, "avg_gap": float(np.mean([abs(v) for v in gaps.values()]))}
    retr = {**retrained, **{f"{m}_gap": 0.0 for m in keys}, "avg_gap": 0.0,
            "time_s": retrain_seconds, "time_ratio": 1.0}
    return orig, retr


class QuickDriver:
    """RA, FA, TA and the loss MIA of each method, with gaps to the retrained model."""

    def __init__(self, kit: Kit, options: object, n_models: int):
        self.kit = kit
        self.sc = kit.scenario

    def _record(self, job: Job, metrics: dict, wall: float | None, losses: dict) -> None:
        self.kit.record(job, metrics, wall=wall,
                        examples={(k if k.endswith("_boot") else f"{k}_loss"):
                                  (np.asarray(v) if k.endswith("_boot") else
                                   np.asarray(v).astype("float32"))
                                  for k, v in losses.items()})  # losses and MIA_boot

    def _cached(self, job: Job) -> tuple[dict, float] | None:
        kind = "original" if job.kind == "original" else "retrained"
        hit = self.kit.cached_reference(kind, job.seed)
        return None if hit is None else (hit[0].state_dict(), hit[1])

    def _model(self, state: dict, seed: int):
        model = self.sc.new_model(seed)
        model.load_state_dict(state)
        return model.eval()

    def run_all(self, jobs: list[Job], progress: Progress) -> None:
        sc, ex, kit = self.sc, self.kit.executor, self.kit
        todo: list[list[Job]] = []
        kit.by_seed(jobs, progress, todo.append)
        if not todo:
            return
        shared = ex.put(sc)
        progress.say("reference models")
        refs: dict[tuple[int, str], Any] = {}
        tasks = [Task(reference_task, (shared, j.kind, j.seed, self._cached(j)),
                      f"seed {j.seed}: {j.method}", j) for seed_jobs in todo for j in seed_jobs[:2]]
        outcomes: dict[tuple[int, str], Any] = {}
        for out in ex.map(tasks):
            job = out.task.tag
            if not out.ok:
                kit.fail(job, out.describe_error(), diverged=False)
                progress.step()
                continue
            state, seconds, metrics, losses = out.value
            kind = "original" if job.kind == "original" else "retrained"
            kit.keep_reference(kind, job.seed, self._model(state, job.seed), seconds)
            refs[job.seed, job.kind] = (state, seconds, metrics)
            outcomes[job.seed, job.kind] = (job, seconds, losses)
            progress.say(f"{out.task.label} done")
            progress.step()
        for seed_jobs in todo:
            seed = seed_jobs[0].seed
            if (seed, "original") not in refs or (seed, "retrain") not in refs:
                continue
            orig, retr = reference_rows(refs[seed, "original"][2], refs[seed, "retrain"][2],
                                        refs[seed, "retrain"][1])
            for kind, values in (("original", orig), ("retrain", retr)):
                job, seconds, losses = outcomes[seed, kind]
                if not kit.done(job):
                    values.setdefault("time_s", seconds)
                    self._record(job, values, seconds, losses)
        tasks = []
        for seed_jobs in todo:
            seed = seed_jobs[0].seed
            pending = [j for j in seed_jobs[2:] if kit.pending(j)]
            for job in seed_jobs[2:]:
                if job not in pending:
                    progress.step()
            missing = [k for k in ("original", "retrain") if (seed, k) not in refs]
            if missing:
                for job in pending:
                    kit.fail(job, f"the {missing[0]} model of seed {seed} failed",
                             diverged=False)
                    progress.step()
                continue
            original_model = self._model(refs[seed, "original"][0], seed)
            original = ex.put(original_model)
            _, retrain_seconds, retrain_metrics = refs[seed, "retrain"]
            for j in pending:
                info, cfg = kit.method(j)
                prepared = kit.prepared(j, original_model)
                tasks.append(Task(method_task, (shared, original, info, cfg, seed,
                                                retrain_metrics, retrain_seconds,
                                                kit.save_models, prepared),
                                  f"seed {seed}: {j.method}", j))
        for out in ex.map(tasks):
            self._finish(out)
            progress.say(f"{out.task.label} done")
            progress.step()

    def _finish(self, out) -> None:
        job = out.task.tag
        if not out.ok:
            self.kit.fail(job, out.describe_error(), diverged=out.diverged)
            return
        values, wall, losses, state = out.value
        self._record(job, values, wall, {k: np.asarray(v) for k, v in losses.items()})
        if state is not None:
            self.kit.keep_model(job, self._model(state, job.seed))


def _columns() -> tuple[Column, ...]:
    utility: dict[str, Column] = {}
    for task in TASKS.values():
        for name, info in task.metrics.items():
            if name in utility or name == "MIA":
                continue
            direction = ("higher" if info.direction.startswith("higher") else
                         "lower" if info.direction.startswith("lower") else "closer to retrain")
            bounds = POSITIVE if "RMSE" in name or name == "R_ERR" else UNIT
            tasks = tuple(t for t, spec in TASKS.items() if name in spec.metrics)
            utility[name] = Column(name, info.label, direction, info.ideal, shown=True,
                                   bounds=bounds, tasks=tasks)
    mia = TASKS["classification"].metrics["MIA"]
    utility["MIA"] = Column("MIA", mia.label, "closer to retrain", mia.ideal, shown=True,
                            bounds=UNIT)
    for name, info in SCENARIO_METRICS.items():
        utility[name] = Column(name, info.label, "lower", info.ideal, bounds=UNIT, optional=True)
    gaps = [Column(f"{m}_gap", f"{m} minus retrain's {m}, same seed", "closer to 0", "0",
                   tasks=c.tasks, optional=c.optional) for m, c in utility.items()]
    return (*utility.values(), *gaps,
            Column("avg_gap", "mean |gap to retrain| over the task's utility and MIA (SalUn's "
                   "Avg. Gap)", "lower", "0", shown=True, bounds=POSITIVE),
            Column("time_s", "unlearning wall time (references: training time), seconds",
                   "lower", "as small as possible", 2),
            Column("time_ratio", "wall time / retrain's training time", "lower", "well below 1"))


PROTOCOLS.add("quick", ProtocolSpec(
    name="quick", version=PROTOCOL,
    summary="one original, one retrained model, one run of each method per seed: utility and "
            "the loss MIA with gaps to retrain (seconds on digits)",
    driver=QuickDriver, options=None, tasks=("classification", "regression", "anomaly"),
    default_for=("classification", "regression", "anomaly"),
    columns=_columns(), ranking=("avg_gap", "lower"),
    tradeoff=Axes("FA_gap", "TA", "|forget accuracy - retrain's| (lower is better)",
                  "test accuracy (higher is better)", absolute_x=True),
    distributions=Distributions("forget_loss", "test_loss",
                                "per-example loss", log=True),
    plots=("tradeoff", "cost", "distributions"), utility=("RA", "TA"), compare_with="retrain",
    notes=("X_gap: metric - retrain's metric, same seed; ideal: 0",),
    check_scenario=check_mia_sizes,
))
