"""The kit a protocol driver is handed: everything a driver may do, and nothing else.

A driver is built as ``spec.driver(kit, options, n_models)`` and runs ``run_all(jobs,
progress)``. It reads the scenario and its methods, fetches reference models one way
(:meth:`Kit.reference`), unlearns one way (:meth:`Kit.unlearn`), asks which jobs are still
:meth:`~Kit.pending`, and writes results only through :meth:`~Kit.record` and
:meth:`~Kit.fail`. The run directory, its lock, the store's schema, the leaderboard and the
config file stay with :class:`~obliviate.bench.runner.BenchRun`.

The pattern is torchtune's ``recipe_interfaces.py``: a recipe is handed a narrow typed
interface, not the runner's insides, so a new protocol is one file written against this class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from obliviate.bench.interfaces import Scenario, is_language_model
from obliviate.bench.method_runs import lm_unlearning_run, prepared_state, timed_unlearn
from obliviate.cache import ModelCache
from obliviate.config import config_dict
from obliviate.errors import TrainingDivergedError
from obliviate.timer import timed
from obliviate.unlearning import MethodInfo, Prepared, resolve_method

if TYPE_CHECKING:
    from obliviate.bench.executors import LocalExecutor, RayExecutor
    from obliviate.bench.runner import BenchRun, Job
    from obliviate.bench.spec import Progress

REFERENCE_KINDS = ("original", "retrained")


def timed_training(train, seed: int) -> tuple[torch.nn.Module, float]:
    """(model, seconds) of ``train(seed)``, timed as :func:`obliviate.timer.timed` times: a
    training under a second is repeated warm and its median reported, so that the runtime
    cut-off compares like with like on small data."""
    (model, _), seconds = timed(lambda: train(seed))
    return model, seconds


class Kit:
    """One bench's interface for its protocol's driver (see the module docstring)."""

    def __init__(self, run: BenchRun):
        self._run = run

    # ------------------------------------------------------------------ what the bench is
    @property
    def scenario(self) -> Scenario:
        return self._run.rb.scenario

    @property
    def seeds(self) -> list[int]:
        return list(self._run.rb.seeds)

    @property
    def version(self) -> str:
        """The protocol's versioned name, stored with every row."""
        return self._run.rb.protocol.version

    @property
    def executor(self) -> LocalExecutor | RayExecutor:
        """Where independent tasks run (``put`` shares an object, ``map`` runs tasks)."""
        return self._run.executor

    @property
    def cache(self) -> ModelCache:
        """The reference-model cache (populations, prepared deployments)."""
        return self._run.cache

    @property
    def save_models(self) -> bool:
        """The user asked for the unlearned models (``--save-models``): see :meth:`keep_model`."""
        return self._run.rb.config.save_models

    @property
    def steps_per_seed(self) -> int:
        """Progress steps one seed of the bench counts."""
        return self._run.total_steps // len(self._run.rb.seeds)

    def method(self, job: Job) -> tuple[MethodInfo, Any]:
        """(registered method, its resolved config) of a method job; a method the bench does
        not list (a policy row's patch) with its defaults as the scenario tunes them."""
        rb = self._run.rb
        if job.method in rb.methods:
            return rb.methods[job.method], rb.method_configs[job.method]
        info = resolve_method(job.method)
        return info, info.build_config(self.scenario.method_defaults.get(info.name, {}))

    def config(self, job: Job) -> dict:
        """The config stored with ``job``'s rows: the method's, the recipe for references, the
        protocol's options for a policy row."""
        if job.kind != "method":
            return config_dict(self.scenario.recipe)
        if job.method in self._run.rb.method_configs:
            return config_dict(self._run.rb.method_configs[job.method])
        return {"policy": job.method, **config_dict(self._run.rb.protocol_options)}

    # ------------------------------------------------------------------ models
    def reference(self, kind: str, seed: int, scenario: Scenario | None = None
                  ) -> tuple[torch.nn.Module, float]:
        """(model, training seconds) of the ``original`` or ``retrained`` model of ``seed``,
        trained once and cached. ``scenario``: a variant of the bench's (another forget set)."""
        sc = scenario if scenario is not None else self.scenario
        if is_language_model(sc):
            train = sc.train_original_timed if kind == "original" else sc.train_retrained_timed
            return train(seed, cache=self.cache.root)
        hit = self.cached_reference(kind, seed, sc)
        if hit is not None:
            return hit
        train = sc.train_original_timed if kind == "original" else sc.train_retrained_timed
        model, seconds = timed_training(train, seed)
        self.keep_reference(kind, seed, model, seconds, sc)
        return model, seconds

    def cached_reference(self, kind: str, seed: int, scenario: Scenario | None = None
                         ) -> tuple[torch.nn.Module, float] | None:
        """The cached reference model and its training seconds, or None (classifiers)."""
        sc = scenario if scenario is not None else self.scenario
        hit = self.cache.load(sc.fingerprint(kind, seed), sc.new_model(seed))
        if hit is None:
            return None
        return hit[0], float(hit[1].get("train_seconds", float("nan")))

    def keep_reference(self, kind: str, seed: int, model: torch.nn.Module, seconds: float,
                       scenario: Scenario | None = None) -> None:
        """Cache a reference model trained elsewhere (e.g. on the executor) for ``reference``."""
        sc = scenario if scenario is not None else self.scenario
        fingerprint = sc.fingerprint(kind, seed)
        if not self.cache.path(fingerprint).exists():
            self.cache.save(fingerprint, model, {"kind": kind, "seed": seed,
                                                 "scenario": sc.describe(),
                                                 "train_seconds": seconds})

    def prepared(self, job: Job, original: torch.nn.Module, seed: int | None = None
                 ) -> Prepared | None:
        """The deployment a method with a ``prepare`` phase (SISA, ...) deletes from, prepared
        once per original and cached; None for other methods."""
        sc, (info, cfg) = self.scenario, self.method(job)
        seed = job.seed if seed is None else seed
        return prepared_state(self.cache, info, cfg, original, sc.splits.x_train,
                              sc.splits.y_train, seed=seed, num_classes=sc.num_classes,
                              recipe=sc.recipe, origin=sc.fingerprint("original", seed))

    def unlearn(self, job: Job, model: torch.nn.Module, *, scenario: Scenario | None = None,
                seed: int | None = None, prepared: Prepared | None = None
                ) -> tuple[torch.nn.Module, float]:
        """(unlearned model, seconds of the forget phase): ``job``'s method applied to
        ``model`` on the forget and retain sets of ``scenario`` (the bench's by default).

        A classifier method with a prepare phase deletes from ``prepared``, or from the
        deployment :meth:`prepared` gives for ``model`` when none is passed."""
        sc = scenario if scenario is not None else self.scenario
        info, cfg = self.method(job)
        seed = job.seed if seed is None else seed
        if is_language_model(sc):
            return lm_unlearning_run(sc, model, info, cfg, seed)
        if prepared is None:
            prepared = self.prepared(job, model, seed)
        return timed_unlearn(model, sc.forget_loader(seed=seed), sc.retain_loader(seed=seed),
                             info, cfg, seed, num_classes=sc.num_classes, val=sc.val_loader(),
                             recipe=sc.recipe, prepared=prepared)

    def keep_model(self, job: Job, model: torch.nn.Module, tag: str = "") -> None:
        """Save an unlearned model under the run directory (when ``save_models``)."""
        if not self.save_models:
            return
        ModelCache(self._run.out / "models").save(
            f"unlearned-{job.method}-seed{job.seed}-{tag}{job.key[:8]}", model,
            {"method": job.method, "config": self.config(job), "seed": job.seed})

    # ------------------------------------------------------------------ the store
    def pending(self, job: Job) -> bool:
        """Not finished, and not a deterministic failure kept (``--retry-failed`` runs it)."""
        return not self._run.store.settled(job.key, retry_failed=self._run.rb.config.retry_failed)

    def done(self, job: Job, part: str | None = None) -> bool:
        """``job`` (or its ``part``, see :meth:`record`) finished and is stored."""
        return self._run.store.is_done(_key(job, part))

    def metrics(self, job: Job, part: str | None = None) -> dict[str, float]:
        return self._run.store.metrics(_key(job, part))

    def arrays(self, job: Job, part: str | None = None) -> dict[str, np.ndarray]:
        return self._run.store.arrays(_key(job, part))

    def wall(self, job: Job, part: str | None = None) -> float | None:
        row = self._run.store.run(_key(job, part))
        return None if row is None or row["wall_s"] is None else float(row["wall_s"])

    def record(self, job: Job, metrics: dict[str, float], *, wall: float | None = None,
               examples: dict[str, np.ndarray] | None = None, config: dict | None = None,
               part: str | None = None) -> None:
        """Store ``job``'s row (or one ``part`` of it: a run of many, a request of many), with
        its per-example arrays. A part is kept for resuming and is no leaderboard row."""
        kind = "run" if part is not None else (
            "method" if job.kind == "method" else "reference")
        self._run.store.save(_key(job, part), kind=kind, method=job.method, seed=job.seed,
                             scenario=self.scenario.name, protocol=self.version,
                             config=self.config(job) if config is None else config,
                             metrics=metrics, wall_s=wall, examples=examples)

    def fail(self, job: Job, exc: BaseException | str, *, diverged: bool | None = None) -> None:
        """Record a job that failed; the bench goes on and reports it at the end. A divergence
        (``TrainingDivergedError``) is kept until ``--retry-failed``."""
        if diverged is None:
            diverged = isinstance(exc, TrainingDivergedError)
        self._run.failures.append(f"seed {job.seed}: {exc}")
        self._run.store.save(job.key, kind="method", method=job.method, seed=job.seed,
                             scenario=self.scenario.name, protocol=self.version,
                             config=self.config(job), metrics={}, wall_s=None, status="failed",
                             error=str(exc), error_kind="diverged" if diverged else "error")

    def note(self, text: str) -> None:
        """A fact the user should know about this run (printed once, kept in config.json)."""
        self._run.note(text)

    # ------------------------------------------------------------------ loops
    def by_seed(self, jobs: list[Job], progress: Progress,
                run_seed: Callable[[list[Job]], None]) -> None:
        """Call ``run_seed(seed_jobs)`` for each seed whose jobs are not all settled; a settled
        seed only advances ``progress`` (:attr:`steps_per_seed` steps)."""
        for seed in self.seeds:
            seed_jobs = [j for j in jobs if j.seed == seed]
            if not any(self.pending(j) for j in seed_jobs):
                for _ in range(self.steps_per_seed):
                    progress.step()
                continue
            run_seed(seed_jobs)


def _key(job: Job, part: str | None) -> str:
    return job.key if part is None else f"{job.key}-{part}"
