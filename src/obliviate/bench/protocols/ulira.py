"""The ``ulira`` protocol in the bench (Hayes et al. 2024).

The forget set is the target pool. Each of N models trains on the retain set plus a random half
of the pool (its in-targets) and is then unlearned on its in-targets by the method. The first
``targets`` models are the attacked targets; the others are shadows that supply, per pool
example, Gaussian fits of the logit-scaled confidence after "trained then unlearned" and after
"never trained". The attack's accuracy at telling a target's unlearned examples from its
never-trained ones is ideally 0.5. Reference rows: ``original`` (no unlearning: plain LiRA on the
originals) and ``retrain (reference)`` (each model retrained on the retain set alone).

References:
    Hayes, Shumailov, Triantafillou, Khalifa, Papernot, "Inexact Unlearning Needs More Careful
    Evaluations to Avoid a False Sense of Privacy", arXiv 2403.01218 (2024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from obliviate.bench.method_runs import prepared_state, timed_unlearn
from obliviate.bench.populations import cached_population, fallback_note, retain_masks
from obliviate.bench.repeated import finite_outputs, repeated_runs
from obliviate.bench.spec import PROTOCOLS, UNIT, Axes, Column, ProtocolSpec
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.evaluate.challenge import logit_scaled_confidence
from obliviate.evaluate.intervals import N_BOOT_ATTACK, bootstrap_attack
from obliviate.evaluate.lira import attack_metrics, ulira, ulira_split
from obliviate.evaluate.utility import accuracy, predict, tensor_batches
from obliviate.population import predict_population
from obliviate.train import tensor_loader

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job
    from obliviate.bench.spec import Progress

PROTOCOL = "ulira/1"


@dataclass(frozen=True)
class UliraOptions:
    """Options of the U-LiRA protocol (``--set protocol.NAME=VALUE``)."""

    targets: int = param(8, ge=1, help="attacked target models; the other models are shadows")
    chunk_size: int | None = param(16, ge=1, help="models trained at once (None: all)")
    n_boot: int = param(N_BOOT_ATTACK, ge=0, help="bootstrap replicates (targets and pool "
                        "examples resampled) for the attack metrics' intervals (0: none)")

    def check(self, n_models: int, scenario: object = None) -> None:
        """Refuse too few shadow models before anything is trained."""
        if self.n_boot == 1:
            raise ConfigError("protocol.n_boot must be 0 (no intervals) or >= 2; use e.g. 200.")
        if n_models - self.targets < 4:
            raise ConfigError(
                f"U-LiRA needs at least 4 shadow models besides its {self.targets} targets; "
                f"raise --models (now {n_models}) or lower protocol.targets."
            )


# --- intervals (see evaluate/intervals.py) ---------------------------------------------------
def attack_numbers(scores: np.ndarray, member: np.ndarray) -> dict[str, float]:
    """The attack's leaderboard numbers from its scores and truths (as ``ulira`` gives them)."""
    m = attack_metrics(scores, member)
    guess = scores > 0
    return {"attack_acc": float(m["accuracy"]),
            "attack_acc_at_0": float(0.5 * (guess[member].mean() + (~guess[~member]).mean())),
            "auc": float(m["auc"]), "tpr_1pct": float(m["tpr_at_1pct_fpr"]),
            "tpr_01pct": float(m["tpr_at_0.1pct_fpr"])}


def attack_bootstrap(scores: np.ndarray, member: np.ndarray, test_acc: np.ndarray, seed: int,
                     n_boot: int, times: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Replicates ``NAME_boot`` (targets and pool examples resampled; the same draws for every
    row of a seed) and per-model ``TA_runs``; ``times`` (per run) adds ``time_s_boot``."""
    out = {"TA_runs": np.asarray(test_acc, dtype=np.float64)}
    if not n_boot:
        return out
    rng = np.random.default_rng([seed, 2024])
    boot = bootstrap_attack(scores, member, attack_numbers, n_boot=n_boot, rng=rng)
    out.update({f"{k}_boot": b.replicates for k, b in boot.items()})
    models = rng.integers(0, test_acc.size, (n_boot, test_acc.size))
    out["TA_boot"] = out["TA_runs"][models].mean(1)
    if times is not None:
        out["time_s_boot"] = np.asarray(times, dtype=np.float64)[models].mean(1)
    return out


def check_pool(sc, options: UliraOptions | None = None) -> None:
    """Refuse, before training, a forget set too small to split into U-LiRA's halves."""
    if hasattr(sc, "forget_idx") and len(sc.forget_idx) < 2:
        raise ConfigError(f"U-LiRA splits the forget set into halves, and it has "
                          f"{len(sc.forget_idx)} example; forget at least 2 (e.g. --forget "
                          f"random:0.1).")


def ulira_run(sc, model, in_targets: np.ndarray, info, cfg, run_seed: int
              ) -> tuple[dict[str, np.ndarray], float]:
    """Unlearn one shadow/target model's in-targets (a task): its logits on pool and test.

    A method with a prepare phase gets a deployment of its own for this model, prepared on the
    model's own training set (retain set plus its in-targets) and left out of the time.
    """
    mine = sc.forget_idx[in_targets]
    forget = tensor_loader(sc.splits.x_train[mine], sc.splits.y_train[mine],
                           sc.recipe.batch_size, shuffle=True, seed=run_seed)
    trained = np.sort(np.concatenate([sc.retain_idx, mine]))
    prepared = prepared_state(None, info, cfg, model, sc.splits.x_train[trained],
                              sc.splits.y_train[trained], seed=run_seed,
                              num_classes=sc.num_classes, recipe=sc.recipe, origin="")
    model, seconds = timed_unlearn(model, forget, sc.retain_loader(seed=run_seed), info, cfg,
                                   run_seed, num_classes=sc.num_classes, recipe=sc.recipe,
                                   prepared=prepared)
    outputs = {"pool": predict(model, tensor_batches(sc.x_forget, sc.y_forget))[0],
               "test": predict(model, tensor_batches(sc.splits.x_test, sc.splits.y_test))[0]}
    return finite_outputs(info.name, outputs), seconds


class UliraDriver:
    """Runs the U-LiRA protocol for one bench."""

    def __init__(self, kit: Kit, options: UliraOptions, n_models: int):
        self.kit, self.opts, self.n = kit, options, n_models
        self.sc = kit.scenario

    def _conf(self, logits: np.ndarray) -> np.ndarray:
        y = self.sc.y_forget.numpy()
        return logit_scaled_confidence(logits, np.broadcast_to(y, logits.shape[:-1]))

    def _attack(self, conf: np.ndarray, forgot: np.ndarray
                ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The attack's metrics, and its scores and truths (the report draws the ROC)."""
        t = self.opts.targets
        res = ulira(conf[t:], forgot[t:], conf[:t], forgot[:t])
        metrics = attack_metrics(res.scores, res.is_member)
        roc = {"attack_score": np.asarray(res.scores, dtype=np.float64).ravel(),
               "attack_member": np.asarray(res.is_member, dtype=np.float64).ravel()}
        return {"attack_acc": float(res.accuracy), "attack_acc_at_0": float(res.accuracy_at_zero),
                "auc": float(metrics["auc"]), "tpr_1pct": float(metrics["tpr_at_1pct_fpr"]),
                "tpr_01pct": float(metrics["tpr_at_0.1pct_fpr"])}, roc

    def run_all(self, jobs: list[Job], progress: Progress) -> None:
        for seed in self.kit.seeds:
            self.run_seed([j for j in jobs if j.seed == seed], progress)

    def run_seed(self, seed_jobs: list[Job], progress: Progress) -> None:
        sc, seed, n = self.sc, seed_jobs[0].seed, self.n
        say, step = progress.say, progress.step
        in_pool = ulira_split(n, len(sc.forget_idx), seed)  # (n, pool) bool
        masks = retain_masks(sc, n)
        masks[:, torch.from_numpy(sc.forget_idx)] = torch.from_numpy(in_pool)
        seeds = [2_000_000 + 10_000 * seed + i for i in range(n)]
        say(f"seed {seed}: {n} shadow originals")
        originals = cached_population(self.kit.cache, sc, "ulira-original", seed, masks, seeds,
                                      chunk_size=self.opts.chunk_size, device=sc.device)
        say(f"seed {seed}: {n} retrained models")
        retrained = cached_population(self.kit.cache, sc, "ulira-retrained", seed,
                                      retain_masks(sc, n), seeds, chunk_size=self.opts.chunk_size,
                                      device=sc.device)
        for pop, what in ((originals, "the shadow originals"), (retrained, "the retrained models")):
            note = fallback_note(pop, what)
            if note:
                self.kit.note(note)
        x_test, y_test = sc.splits.x_test, sc.splits.y_test.numpy()
        for job, pop in ((seed_jobs[0], originals), (seed_jobs[1], retrained)):
            if self.kit.done(job):
                step()
                continue
            conf = self._conf(predict_population(pop, sc.x_forget))
            metrics, roc = self._attack(conf, in_pool)
            test_acc = np.array([accuracy(lg, y_test) for lg in predict_population(pop, x_test)])
            metrics["TA"] = float(np.mean(test_acc))
            boot = attack_bootstrap(roc["attack_score"].reshape(self.opts.targets, -1),
                                    roc["attack_member"].reshape(self.opts.targets, -1) > 0,
                                    test_acc, seed, self.opts.n_boot)
            self.kit.record(job, metrics, examples={**roc, **boot})
            step()
        models = originals.models()
        shared = self.kit.executor.put(sc)
        for job in seed_jobs[2:]:
            self._method(job, shared, models, in_pool, progress)

    def _method(self, job, shared, models, in_pool, progress) -> None:
        sc = self.sc
        info, cfg = self.kit.method(job)
        done = repeated_runs(
            self.kit, job, self.n,
            lambda i: (ulira_run, (shared, models[i], in_pool[i], info, cfg,
                                   300_000 * job.seed + i)),
            progress=progress)
        if done is None:
            return
        outputs, times = done
        k = sc.num_classes
        conf = self._conf(np.stack([o["pool"].reshape(-1, k) for o in outputs]))
        metrics, roc = self._attack(conf, in_pool)
        y_test = sc.splits.y_test.numpy()
        test_acc = np.array([accuracy(o["test"].reshape(-1, k), y_test) for o in outputs])
        metrics["TA"] = float(np.mean(test_acc))
        metrics["time_s"] = float(np.mean(times))
        boot = attack_bootstrap(roc["attack_score"].reshape(self.opts.targets, -1),
                                roc["attack_member"].reshape(self.opts.targets, -1) > 0,
                                test_acc, job.seed, self.opts.n_boot, times)
        self.kit.record(job, metrics, wall=metrics["time_s"], examples={**roc, **boot})


PROTOCOLS.add("ulira", ProtocolSpec(
    name="ulira", version=PROTOCOL,
    summary="U-LiRA (Hayes et al. 2024): per-example likelihood-ratio attacks on unlearned "
            "shadow models vs retrained ones; attack accuracy, AUC, TPR at low FPR",
    driver=UliraDriver, options=UliraOptions, tasks=("classification",), default_models=32,
    check_scenario=check_pool,
    smallest=("protocol.n_boot=0", "protocol.targets=1"), smallest_models=5,
    columns=(
        Column("attack_acc", "U-LiRA's best-threshold accuracy at telling a target's unlearned "
               "pool examples from never-trained ones", "lower", "retrain's (about 0.5)",
               shown=True, bounds=UNIT),
        Column("attack_acc_at_0", "the same at the log-likelihood-ratio threshold 0", "lower",
               "about 0.5", bounds=UNIT),
        Column("auc", "the attack's ROC AUC", "lower", "0.5", shown=True, bounds=UNIT),
        Column("tpr_1pct", "true-positive rate at 1% false positives", "lower", "0.01",
               shown=True, bounds=UNIT),
        Column("tpr_01pct", "true-positive rate at 0.1% false positives", "lower", "0.001",
               bounds=UNIT),
        Column("TA", "mean test accuracy of the unlearned models", "higher",
               "retrain's value or above", shown=True, bounds=UNIT),
        Column("time_s", "mean unlearning run time, seconds", "lower", "as small as possible", 2),
    ),
    ranking=("attack_acc", "lower"),
    tradeoff=Axes("attack_acc", "TA", "U-LiRA attack accuracy (lower is better, 0.5 ideal)",
                  "test accuracy (higher is better)"),
    plots=("tradeoff", "cost", "roc"), utility=("TA",),
))
