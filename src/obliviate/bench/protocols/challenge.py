"""The ``challenge`` protocol in the bench: N retrained vs N unlearned models, F and the score.

Per seed: one original; two disjoint populations of N retrained models (A is the reference, B
only serves the ceiling, F of B against A); N unlearning runs of each method from that one
original, each with its own seed. Every unlearning run is stored as it finishes, so a killed
bench resumes run by run. A method whose mean run time exceeds ``cutoff`` x the retrain time
is marked and scores 0, as in the challenge. The retrain time is the ``retrain`` method run
through the runs' own call and timed as they are (``time_retrain``: warmed up, then the mean
of single calls; challenge/3), so that retraining as a method reads a time ratio of 1.

Since challenge/4 the N runs of a method with a population capability (``finetune``; declared
by ``register_method(..., population=...)``) train as populations of ``chunk_size`` runs from
the original (:mod:`obliviate.population_runs`), stored chunk by chunk (a killed bench loses
at most the chunk in flight), when ``protocol.population_runs`` is on and the runs go to the
local executor; else, or where the model cannot be vectorised, one by one as before. The time
the cut-off reads is then one single run of the method through the runs' own call, timed
exactly as the reference retrain is (one warm-up, then the mean of 3 single calls), once per
seed and method: never the population's wall time / N, which is cheaper per model than any
single call. The amortised seconds (the populations' training time / N) are reported apart,
as ``time_population_s``.

Since challenge/5 the reference goes through exactly the runs' call (``timed_run``, the guard
off, where it had paid the default guard's probe passes that the runs do not make), and each
method's row is judged by a retrain time timed around that method's timed runs, stored in the row as ``time_retrain_s``: one reference
timed before a long bench cannot follow a machine whose speed drifts during it. The seed's
reference, timed once before every method and cached (``cutoff_seconds``), is the ceiling row's
time. A method's own is the mean of one timed right before and one right after its timed runs
(``ChallengeDriver.bracketed``: a drift during the runs moves both sides alike), costs eight
retrainings per method and seed, and is not cached: a killed bench re-times it when it resumes
the row; a finished row keeps the one it was judged by.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from obliviate.bench.executors import LocalExecutor
from obliviate.bench.method_runs import timed_unlearn
from obliviate.bench.populations import (
    cached_population,
    fallback_note,
    population_fingerprint,
    population_outputs,
    retain_masks,
)
from obliviate.bench.repeated import finite_outputs, population_runs, repeated_runs
from obliviate.bench.spec import (
    POSITIVE,
    PROTOCOLS,
    UNIT,
    Axes,
    Column,
    Distributions,
    Flag,
    ProtocolSpec,
)
from obliviate.calibrate import auto_in_config
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.evaluate.challenge import PROTOCOL, evaluate_forgetting, final_score
from obliviate.evaluate.challenge import logit_scaled_confidence as lsc
from obliviate.evaluate.intervals import (
    N_BOOT_FORGETTING,
    ChallengeDraws,
    challenge_draws,
    forgetting_replicates,
)
from obliviate.evaluate.utility import accuracy, predict, tensor_batches
from obliviate.population import Population, predict_population
from obliviate.unlearning import resolve_method

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job
    from obliviate.bench.spec import Progress
    from obliviate.cache import ModelCache


@dataclass(frozen=True)
class ChallengeOptions:
    """Options of the challenge protocol (``--set protocol.NAME=VALUE``)."""

    cutoff: float = param(0.2, gt=0, help="runtime cut-off as a fraction of retrain time")
    chunk_size: int | None = param(16, ge=1, help="retrained models trained at once "
                                   "(16 was fastest on 2 CPU cores; None: all at once)")
    n_boot: int = param(N_BOOT_FORGETTING, ge=0, help="bootstrap replicates per row for the "
                        "intervals of F, the ceiling and the score (each costs about one F; "
                        "0: no intervals)")
    population_runs: bool = param(True, help="train the N runs of a method that can (finetune) "
                                  "as populations of chunk_size runs from the original, and "
                                  "time one single run for the cut-off (false: run by run)")

    def check(self, n_models: int, scenario: object = None) -> None:
        """An interval needs at least 2 replicates."""
        if self.n_boot == 1:
            raise ConfigError("protocol.n_boot must be 0 (no intervals) or >= 2; use e.g. 50.")


@dataclass
class Side:
    """Forget-set confidences and utility of a group of models of one kind."""

    conf: np.ndarray  # (models, forget examples)
    ra: np.ndarray  # (models,)
    ta: np.ndarray
    fa: np.ndarray
    test_conf: np.ndarray  # (models, test examples)


def side_of(logits_forget: np.ndarray, logits_retain: np.ndarray, logits_test: np.ndarray,
            sc) -> Side:
    yf, yr, yt = (t.numpy() for t in (sc.y_forget, sc.y_retain, sc.splits.y_test))
    return Side(
        conf=lsc(logits_forget, np.broadcast_to(yf, logits_forget.shape[:-1])),
        ra=np.array([accuracy(lg, yr) for lg in logits_retain]),
        ta=np.array([accuracy(lg, yt) for lg in logits_test]),
        fa=np.array([accuracy(lg, yf) for lg in logits_forget]),
        test_conf=lsc(logits_test, np.broadcast_to(yt, logits_test.shape[:-1])),
    )


def population_side(pop: Population, sc) -> Side:
    parts = (sc.x_forget, sc.x_retain, sc.splits.x_test)
    return side_of(*(predict_population(pop, x) for x in parts), sc)


def model_logits(model: torch.nn.Module, sc) -> tuple[np.ndarray, ...]:
    out = []
    for x, y in ((sc.x_forget, sc.y_forget), (sc.x_retain, sc.y_retain),
                 (sc.splits.x_test, sc.splits.y_test)):
        out.append(predict(model, tensor_batches(x, y))[0])
    return tuple(out)


def scores(unlearned: Side, retrained: Side) -> tuple[dict[str, float], np.ndarray]:
    result = evaluate_forgetting(unlearned.conf, retrained.conf)
    ra_u, ra_r, ta_u, ta_r = (float(a.mean()) for a in (unlearned.ra, retrained.ra,
                                                        unlearned.ta, retrained.ta))
    metrics = {
        "F": result.forgetting_quality,
        "score": final_score(result.forgetting_quality, ra_u, ra_r, ta_u, ta_r),
        "RA": ra_u, "TA": ta_u, "FA": float(unlearned.fa.mean()),
        "RA_ratio": ra_u / ra_r, "TA_ratio": ta_u / ta_r,
    }
    return metrics, result.epsilons


# --- intervals: one set of draws per seed, shared by its rows (see evaluate/intervals.py) ------
def seed_draws(seed: int, n_models: int, n_examples: int, n_boot: int) -> ChallengeDraws | None:
    """The resampling draws every row of ``seed`` shares; None when ``n_boot`` is 0."""
    if not n_boot:
        return None
    return challenge_draws(n_boot, n_models, n_models, n_examples,
                           np.random.default_rng([seed, 2023]))


def bootstrap_arrays(unlearned: Side, retrained: Side, draws: ChallengeDraws | None, *,
                     ceiling: np.ndarray | None = None, times: np.ndarray | None = None,
                     retrain_seconds: float | None = None, over_cutoff: bool = False
                     ) -> dict[str, np.ndarray]:
    """Replicates ``NAME_boot`` of a row's numbers on the seed's draws, and per-run ``RA_runs``
    and ``TA_runs`` (the collapse check); ``ceiling`` (the ceiling row's ``F_boot``) adds
    ``F_ceiling_boot`` and ``F_ratio_boot``, ``times`` (per run) ``time_s_boot``."""
    out = {"RA_runs": unlearned.ra.astype(np.float64), "TA_runs": unlearned.ta.astype(np.float64)}
    if draws is None:
        return out
    iu, ir = draws.unlearned, draws.retrained
    f = forgetting_replicates(unlearned.conf, retrained.conf, draws)
    ra, ta = unlearned.ra[iu].mean(1), unlearned.ta[iu].mean(1)
    ra_ratio, ta_ratio = ra / retrained.ra[ir].mean(1), ta / retrained.ta[ir].mean(1)
    out.update(F_boot=f, RA_boot=ra, TA_boot=ta, FA_boot=unlearned.fa[iu].mean(1),
               RA_ratio_boot=ra_ratio, TA_ratio_boot=ta_ratio,
               score_boot=np.zeros_like(f) if over_cutoff else f * ra_ratio * ta_ratio)
    if ceiling is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = f / ceiling
        out.update(F_ceiling_boot=ceiling, F_ratio_boot=np.where(np.isfinite(ratio), ratio,
                                                                 np.nan))
    if times is not None and retrain_seconds:
        out.update(time_s_boot=times[iu].mean(1),
                   time_ratio_boot=times[iu].mean(1) / retrain_seconds)
    return out


def run_seed_of(seed: int, run: int) -> int:
    """The seed of unlearning run ``run`` for the bench seed ``seed`` (both ways of running the
    N runs, one by one or as populations, give run i this seed)."""
    return 100_000 * seed + run


def timed_run(sc, original, info, cfg, run_seed: int, **timing) -> tuple[torch.nn.Module, float]:
    """One unlearning run from ``original`` through the runs' own call (the scenario's loaders
    re-seeded by ``run_seed``, its validation loader and recipe), timed by
    :func:`obliviate.bench.method_runs.timed_unlearn` with ``timing``."""
    return timed_unlearn(original, sc.forget_loader(seed=run_seed),
                         sc.retain_loader(seed=run_seed), info, cfg, run_seed,
                         num_classes=sc.num_classes, val=sc.val_loader(), recipe=sc.recipe,
                         **timing)


def unlearning_run(sc, original, info, cfg, run_seed: int, prepared
                   ) -> tuple[dict[str, np.ndarray], float]:
    """One unlearning run from ``original`` (a task): logits on forget, retain, test; seconds."""
    model, seconds = timed_run(sc, original, info, cfg, run_seed, prepared=prepared,
                               repeated=True)
    parts = dict(zip(("forget", "retain", "test"), model_logits(model, sc), strict=True))
    return finite_outputs(info.name, parts), seconds


def time_retrain(sc, seed: int, original: torch.nn.Module) -> float:
    """Seconds of one retraining, the reference of the runtime cut-off: the ``retrain`` method
    (re-initialise, train on the retain set with the scenario's recipe) run from ``original``
    through the runs' own call (:func:`timed_run`: their loaders, validation loader and recipe,
    the guard off as theirs, so no probe passes they do not make) and timed as a single run of
    a method is (one warm-up, then the mean of 3 single calls: :func:`obliviate.timer.timed_mean`).
    """
    info = resolve_method("retrain")
    _, seconds = timed_run(sc, original, info, info.build_config({}), run_seed_of(seed, 99_999),
                           mean=True)
    return seconds


def cutoff_seconds(cache: ModelCache | None, sc, seed: int, original: torch.nn.Module) -> float:
    """The seed's retrain time (:func:`time_retrain`), timed once before every method's runs
    and cached beside the reference models: the ceiling row's time. Each method's row is judged
    by its own retrain time, timed again around its runs (challenge/5)."""
    key = f"{sc.fingerprint('retrained', seed)}-cutoff-{PROTOCOL.replace('/', '')}"
    hit = cache.read(key) if cache is not None else None
    if hit is not None and "seconds" in hit[0]:
        return float(hit[0]["seconds"].item())
    seconds = time_retrain(sc, seed, original)
    if cache is not None:
        cache.write(key, {"seconds": torch.tensor([seconds], dtype=torch.float64)},
                    {"kind": "cutoff", "seed": seed, "protocol": PROTOCOL})
    return seconds


class ChallengeDriver:
    """Runs the challenge protocol for one bench."""

    def __init__(self, kit: Kit, options: ChallengeOptions, n_models: int):
        self.kit, self.opts, self.n = kit, options, n_models
        self.sc = kit.scenario

    def _seeds(self, seed: int, part: str) -> list[int]:
        offset = {"A": 0, "B": self.n}[part]
        return [1_000_000 + 10_000 * seed + offset + i for i in range(self.n)]

    def _population(self, seed: int, part: str) -> Population:
        """Population A or B of N retrained models for ``seed``, from the cache or trained."""
        pop = cached_population(self.kit.cache, self.sc, f"retrained{part}", seed,
                                retain_masks(self.sc, self.n), self._seeds(seed, part),
                                chunk_size=self.opts.chunk_size, device=self.sc.device)
        note = fallback_note(pop, "the retrained models")
        if note:
            self.kit.note(note)
        return pop

    def _side(self, seed: int, part: str) -> Side:
        """``population_side`` of population A or B, its outputs predicted in one pass over
        forget, retain and test, and cached (a warm bench predicts nothing)."""
        sc = self.sc
        out = population_outputs(self.kit.cache, sc, f"retrained{part}", seed,
                                 retain_masks(sc, self.n), self._seeds(seed, part),
                                 (sc.x_forget, sc.x_retain, sc.splits.x_test),
                                 chunk_size=self.opts.chunk_size, device=sc.device)
        note = fallback_note(out, "the retrained models")
        if note:
            self.kit.note(note)
        return side_of(*out.logits, sc)

    def run_all(self, jobs: list[Job], progress: Progress) -> None:
        self.kit.by_seed(jobs, progress, lambda seed_jobs: self.run_seed(seed_jobs, progress))

    def run_seed(self, seed_jobs: list[Job], progress: Progress) -> None:
        kit, sc, seed = self.kit, self.sc, seed_jobs[0].seed
        say, step = progress.say, progress.step
        say(f"seed {seed}: the original model")
        original, _ = kit.reference("original", seed)
        shared = (kit.executor.put(sc), kit.executor.put(original))
        self.original = original
        say(f"seed {seed}: the retrain time of the cut-off")
        retrain_seconds = cutoff_seconds(kit.cache, sc, seed, original)
        say(f"seed {seed}: {self.n} retrained models (A)")
        side_a = self._side(seed, "A")
        draws = seed_draws(seed, self.n, len(sc.forget_idx), self.opts.n_boot)
        ceiling_boot = self._stored(seed_jobs[1], "F_boot", draws)
        if ceiling_boot is None:  # else the ceiling row is stored with its bootstrap already
            say(f"seed {seed}: {self.n} more retrained models for the ceiling (B)")
            ceiling, eps, boot = self._ceiling(seed, side_a, draws, say)
            ceiling.update(time_s=retrain_seconds, time_ratio=1.0,
                           time_retrain_s=retrain_seconds)
            self._save(seed_jobs[1], ceiling, eps, retrain_seconds, side_a, boot)
            ceiling_boot = boot.get("F_boot")
        f_ceiling = kit.metrics(seed_jobs[1])["F"]
        step()
        # the original as an "unlearner" that changes nothing: deterministic, so F = 0
        orig = side_of(*(np.repeat(lg[None], self.n, 0) for lg in model_logits(original, sc)),
                       sc)
        metrics, eps = scores(orig, side_a)
        metrics["F_ceiling"] = f_ceiling
        boot = bootstrap_arrays(orig, side_a, draws, ceiling=ceiling_boot)
        self._save(seed_jobs[0], metrics, eps, None, orig, boot)
        step()
        for job in seed_jobs[2:]:
            self._method(job, shared, side_a, f_ceiling, progress, draws, ceiling_boot)

    def _ceiling(self, seed: int, side_a: Side, draws: ChallengeDraws | None, say
                 ) -> tuple[dict[str, float], np.ndarray, dict[str, np.ndarray]]:
        """The ceiling row's metrics, epsilons and replicates (B against A): they depend on the
        two populations and the draws only, so they are cached beside them."""
        masks, n_boot = retain_masks(self.sc, self.n), 0 if draws is None else draws.n_boot
        key = "-".join(population_fingerprint(self.sc, f"retrained{p}", seed, masks,
                                              self._seeds(seed, p)) for p in "AB")
        key = f"ceiling-{hashlib.sha256(key.encode()).hexdigest()[:20]}-{n_boot}-" + \
            PROTOCOL.replace("/", "")
        hit = self.kit.cache.read(key)
        if hit is not None and "epsilon" in hit[0]:
            arrays = {k: v.numpy() for k, v in hit[0].items()}
            return hit[1]["metrics"], arrays.pop("epsilon"), arrays
        side_b = self._side(seed, "B")
        ceiling, eps = scores(side_b, side_a)
        say(f"seed {seed}: bootstrap of the ceiling ({self.opts.n_boot} replicates)")
        boot = bootstrap_arrays(side_b, side_a, draws)
        self.kit.cache.write(key, {"epsilon": torch.tensor(np.array(eps, np.float64)),
                                   **{k: torch.tensor(np.array(v)) for k, v in boot.items()}},
                             {"metrics": ceiling, "kind": "ceiling"})
        return ceiling, eps, boot

    def _stored(self, job: Job, name: str, draws: ChallengeDraws | None) -> np.ndarray | None:
        """A finished row's stored replicates ``name`` when they match ``draws`` (else None)."""
        if not self.kit.done(job):
            return None
        values = self.kit.arrays(job).get(name)
        if draws is None:
            return np.zeros(0) if "F" in self.kit.metrics(job) else None
        return values if values is not None and values.size == draws.n_boot else None

    def _method(self, job, shared, side_a, f_ceiling, progress, draws=None, ceiling_boot=None):
        kit, sc = self.kit, self.sc
        info, cfg = kit.method(job)
        prepared = None
        if info.prepare is not None and kit.pending(job):
            progress.say(f"seed {job.seed}: preparing the {job.method} deployment (untimed)")
            prepared = kit.executor.put(kit.prepared(job, self.original))
        done, amortised, one_by_one = None, None, not self._vectorises(info, cfg)
        retrain_seconds = None  # the row's own reference, timed around its timed runs
        if not one_by_one:
            done = population_runs(kit, job, self.n, self.opts.chunk_size,
                                   lambda idx: self._population_chunk(info, cfg, job.seed, idx),
                                   progress=progress)
            one_by_one = isinstance(done, str)
            if one_by_one:
                kit.note(f"{job.method}: the {self.n} runs went one by one: {done}")
            elif done is not None:  # the cut-off reads one single run, timed as retrain is
                amortised = float(np.mean(done[1]))
                single, retrain_seconds = self.bracketed(job, progress, lambda: self.
                                                         single_run_seconds(info, cfg, job.seed))
                done = done[0], [single] * self.n
        if one_by_one:
            def runs():
                return repeated_runs(kit, job, self.n,
                                     lambda i: (unlearning_run, (*shared, info, cfg,
                                                                 run_seed_of(job.seed, i),
                                                                 prepared)),
                                     progress=progress)

            # a finished row keeps the reference it was judged by
            done, retrain_seconds = self.bracketed(job, progress, runs) if kit.pending(job) \
                else (runs(), None)
        if done is None:
            return
        logits, times = done
        classes = sc.num_classes
        stacked = [np.stack([lg[p] for lg in logits]).reshape(self.n, -1, classes)
                   for p in ("forget", "retain", "test")]
        unlearned = side_of(*stacked, sc)
        metrics, eps = scores(unlearned, side_a)
        mean_time = float(np.mean(times))
        over = mean_time > self.opts.cutoff * retrain_seconds
        metrics.update(F_ceiling=f_ceiling, F_ratio=metrics["F"] / f_ceiling if f_ceiling else
                       float("nan"), time_s=mean_time, time_ratio=mean_time / retrain_seconds,
                       time_retrain_s=retrain_seconds, over_cutoff=float(over))
        if amortised is not None:
            metrics["time_population_s"] = amortised  # a run's share of its population's time
        if over:
            metrics["score"] = 0.0
        if draws is not None:
            progress.say(f"seed {job.seed}: {job.method}: bootstrap ({draws.n_boot} replicates)")
        boot = bootstrap_arrays(unlearned, side_a, draws, ceiling=ceiling_boot,
                                times=np.asarray(times, dtype=np.float64),
                                retrain_seconds=retrain_seconds, over_cutoff=over)
        self._save(job, metrics, eps, mean_time, unlearned, boot)

    def _vectorises(self, info, cfg) -> bool:
        """Whether the N runs may train as populations (``protocol.population_runs``): the
        method declares the capability, needs no prepared deployment, has no step size to
        calibrate per run, and the runs go to the local executor. Whether the model itself
        vectorises is the capability's answer (a str: the runs then go one by one)."""
        return (self.opts.population_runs and info.population is not None
                and info.prepare is None and auto_in_config(cfg) is None
                and isinstance(self.kit.executor, LocalExecutor))

    def _population_chunk(self, info, cfg, seed: int, indices: list[int]
                          ) -> tuple[list[dict[str, np.ndarray]], float] | str:
        """The outputs of runs ``indices`` (seeds ``run_seed_of(seed, i)``, as the per-run path's)
        trained as one population from the original, with the training's seconds; or why they
        cannot be."""
        sc = self.sc
        start = time.perf_counter()
        pop = info.population(self.original, sc.x_retain, sc.y_retain, cfg,
                              [run_seed_of(seed, i) for i in indices],
                              batch_size=sc.recipe.batch_size)
        seconds = time.perf_counter() - start
        if isinstance(pop, str):
            return pop
        logits = [predict_population(pop, x) for x in (sc.x_forget, sc.x_retain,
                                                        sc.splits.x_test)]
        return [finite_outputs(info.name, dict(zip(("forget", "retain", "test"),
                                                   (lg[k] for lg in logits), strict=True)))
                for k in range(len(indices))], seconds

    def bracketed(self, job: Job, progress: Progress, timed_work):
        """``(timed_work(), the retrain time job's row is judged by)`` (challenge/5): the mean of
        :func:`time_retrain` timed right before and right after the method's timed runs (the N
        runs, or the one single run of runs trained as populations), so that the cut-off
        compares adjacent measurements on a machine whose speed drifts during a long bench, and
        a drift during the runs themselves moves both sides alike (to first order). Not
        cached: a killed bench re-times both when it resumes the row (the runs it had stored
        keep their times); a finished row keeps the reference it was judged by, as
        ``time_retrain_s``. Costs eight retrainings (two warm-ups, 2 x 3 timed) per method."""
        say = progress.say
        say(f"seed {job.seed}: {job.method}: the retrain time of its cut-off (before its runs)")
        before = time_retrain(self.sc, job.seed, self.original)
        result = timed_work()
        say(f"seed {job.seed}: {job.method}: the retrain time of its cut-off (after its runs)")
        after = time_retrain(self.sc, job.seed, self.original)
        return result, (before + after) / 2

    def single_run_seconds(self, info, cfg, seed: int) -> float:
        """The time the cut-off reads for runs trained as populations: one run (run 0's seed)
        through the runs' own call, timed as the reference retrain is (one warm-up, then the
        mean of 3 single calls, :func:`obliviate.timer.timed_mean`), never a population's wall
        time / N (a population is cheaper per model than any single call)."""
        _, seconds = timed_run(self.sc, self.original, info, cfg, run_seed_of(seed, 0), mean=True)
        return seconds

    def _save(self, job, metrics, epsilons, wall, side: Side,
              boot: dict[str, np.ndarray] | None = None) -> None:
        """Store a row with its per-example epsilons and mean confidences (for the report),
        and its bootstrap replicates and per-run accuracies (``boot``)."""
        self.kit.record(job, metrics, wall=wall,
                        examples={"epsilon": np.asarray(epsilons, dtype=np.float64),
                                  "forget_conf": side.conf.mean(0).astype(np.float32),
                                  "test_conf": side.test_conf.mean(0).astype(np.float32),
                                  **(boot or {})})


PROTOCOLS.add("challenge", ProtocolSpec(
    name="challenge", version=PROTOCOL,
    summary="the NeurIPS 2023 challenge metric: N retrained vs N unlearned models, forgetting "
            "quality F, the score and the runtime cut-off",
    driver=ChallengeDriver, options=ChallengeOptions, tasks=("classification",),
    default_models=64, tunable=True,
    smallest=("protocol.n_boot=0",), smallest_models=3,
    columns=(
        Column("F", "forgetting quality (challenge metric, mean of 2/2^n over forget examples)",
               "higher", "the ceiling (retrain (reference) row)", 4, bounds=UNIT),
        Column("F_ratio", "F / ceiling, the ceiling being F of N retrained models against N "
               "other retrained models", "higher", "1", shown=True, bounds=POSITIVE),
        Column("score", "F x RA_ratio x TA_ratio; 0 over the runtime cut-off", "higher",
               "the ceiling", 4, shown=True, bounds=POSITIVE),
        Column("RA_ratio", "mean retain accuracy / the retrained models'", "higher",
               "1 or above", shown=True, bounds=POSITIVE),
        Column("TA_ratio", "mean test accuracy / the retrained models'", "higher", "1 or above",
               shown=True, bounds=POSITIVE),
        Column("FA", "mean forget accuracy", "closer to retrain", "retrain's value",
               bounds=UNIT),
        Column("F_ceiling", "the ceiling: F of N retrained models against N other retrained "
               "models (its interval beside F's)", "higher", "as high as N allows", 4,
               bounds=UNIT),
        Column("time_s", "mean unlearning run time, seconds", "lower", "under the cut-off", 2),
        Column("time_ratio", "mean run time / time_retrain_s, the retrain time timed around "
               "the method's runs", "lower", "below the cut-off (protocol.cutoff, 0.2)"),
        Column("time_retrain_s", "the retrain time the row's cut-off reads, seconds: the "
               "retrain method through the runs' call, timed before and after the method's runs",
               "closer to retrain", "the retrain (reference) row's (a machine of steady speed)",
               2, optional=True),
        Column("time_population_s", "runs trained as populations: a run's share of their "
               "training time, seconds (time_s is one single run, timed as retrain is)",
               "lower", "below time_s", 3, optional=True),
    ),
    ranking=("score", "higher"),
    flags=(Flag("over_cutoff", "over cut-off",
                "the mean run time passed protocol.cutoff x retrain time: the score is 0"),),
    tradeoff=Axes("F", "TA_ratio", "forgetting quality F (higher is better)",
                  "test accuracy / retrained models' (higher is better)",
                  x_lower_is_better=False),
    pareto=Axes("time_ratio", "F_ratio", "time / retrain time (lower is better)",
                "F / ceiling (higher is better)"),
    distributions=Distributions("forget_conf", "test_conf",
                                "logit-scaled confidence (mean over the N models)"),
    plots=("tradeoff", "pareto", "cost", "epsilon", "distributions"), utility=("RA", "TA"),
))
