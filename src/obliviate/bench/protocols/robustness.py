"""The ``robustness`` protocol: does forgotten knowledge come back under attack?

Per seed: the original, the model retrained without the forget set (for a language model, the
retain-only model) and one run of each method, as in ``quick``/``tofu``; then every row is
attacked, and so is the retrained model, the same way (:mod:`obliviate.robustness`):

- relearning: a few fine-tuning steps on ``protocol.share`` of the forget set; measured on the
  held-out rest of it, so that what the attack teaches directly is not counted. A model that
  only hid the knowledge recovers faster than one that never had it.
- quantization: weights rounded to 8 and 4 bits (per group of 128 inputs, symmetric).
- paraphrase probing (language models): the forget questions paraphrased.

Every attack's number is reported beside the retrained model's under the same attack, as a gap
(the row's value minus retrained's): 0 means no more recovery than a model that never saw the
data, the ideal; the retrained row's gaps are 0 by construction. The leaderboard ranks by the
relearning gap. For classifiers the value is forget accuracy; for language models the answer
probability on the forget questions, with TOFU's forget quality after the attack beside it.

Fidelity: see :mod:`obliviate.robustness.relearn` (Hu et al. 2025; Lynch et al. 2024),
:mod:`~obliviate.robustness.quantize` (Zhang et al. 2025) and
:mod:`~obliviate.robustness.paraphrase`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from obliviate.bench.interfaces import is_language_model
from obliviate.bench.spec import PROTOCOLS, UNIT, Axes, Column, Flag, ProtocolSpec
from obliviate.config import param
from obliviate.errors import DataError, TrainingDivergedError

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job
    from obliviate.bench.spec import Progress

VERSION = "robustness/1"
RECOVERS = 0.1  # a relearning gap above this flags the row ("recovers")


@dataclass(frozen=True)
class RobustnessOptions:
    share: float = param(0.1, gt=0, lt=1, help="share of the forget set the relearning attack "
                                               "trains on (language models: questions, 0.3)")
    steps: int = param(16, ge=1, le=10_000, help="relearning steps")
    lr: float = param(1e-3, gt=0, help="relearning SGD/AdamW learning rate (classifiers)")
    lm_lr: float = param(3e-4, gt=0, help="relearning AdamW learning rate (language models)")
    lm_share: float = param(0.3, gt=0, lt=1, help="share of forget questions relearned (LM)")


def _curve_points(steps: int) -> list[int]:
    """0, 1, 2, 4, ... up to ``steps`` (``steps`` included)."""
    points, k = [0], 1
    while k < steps:
        points.append(k)
        k *= 2
    return [*points, steps]


def relearn_curves(points: list[int], curves: dict, key: str) -> dict[str, np.ndarray]:
    """The stored per-row arrays: the steps, the row's ``key`` curve and the retrained one's."""
    return {name: np.asarray(values, dtype=np.float64) for name, values in
            (("relearn_steps", points), ("relearn_curve", curves[key]),
             ("relearn_retrained", curves[f"retrained_{key}"]))}


def check_forget_share(sc, opts: RobustnessOptions | None) -> None:
    """Refuse, before training, a forget set too small for the relearning share."""
    from obliviate.robustness.relearn import check_share

    opts = opts or RobustnessOptions()
    if hasattr(sc, "forget_qa"):
        check_share(len(sc.forget_qa), opts.lm_share)
    elif hasattr(sc, "forget_idx"):
        check_share(len(sc.forget_idx), opts.share)


def classifier_attacks(model, retrained, sc, opts: RobustnessOptions, seed: int
                       ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The attacks on a classifier: (columns, curves)."""
    from obliviate.robustness import quantize_classifier, relearn_classifier

    points = _curve_points(opts.steps)
    rel = relearn_classifier(model, sc.forget_loader(), retrained=retrained, share=opts.share,
                             steps=points, lr=opts.lr, seed=seed)
    quant = quantize_classifier(model, sc.forget_loader(), test=sc.test_loader(),
                                retrained=retrained)
    m, q, last = rel["metrics"], quant["metrics"], points[-1]
    columns = {"forget": m["forget_acc@0"], "relearned": m[f"forget_acc@{last}"],
               "relearn_gap": m[f"forget_acc_gap@{last}"],
               "quant8_gap": q["forget_acc_gap@8bit"], "quant4_gap": q["forget_acc_gap@4bit"],
               "quant4_utility": q["test_acc@4bit"]}
    return columns, relearn_curves(points, rel["curves"], "forget_acc")


def lm_attacks(model, retrained, sc, opts: RobustnessOptions, seed: int, memo: dict
               ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The attacks on a causal LM (``memo`` keeps the retain-only model's results per seed)."""
    from obliviate.robustness import paraphrase_probe, quantize_lm, relearn_lm

    points = _curve_points(opts.steps)
    rel = relearn_lm(model, sc, retrained=retrained, share=opts.lm_share, steps=points,
                     lr=opts.lm_lr, seed=seed, cache=memo)
    quant = quantize_lm(model, sc, retrained=retrained, cache=memo)
    probe = paraphrase_probe(model, sc, retrained=retrained, probes=("paraphrased",), cache=memo)
    m, q, p, last = rel["metrics"], quant["metrics"], probe["metrics"], points[-1]
    columns = {"forget": m["forget_prob@0"], "relearned": m[f"forget_prob@{last}"],
               "relearn_gap": m[f"forget_prob_gap@{last}"],
               "relearn_fq": m[f"forget_quality@{last}"],
               "quant8_gap": q["forget_prob_gap@8bit"], "quant4_gap": q["forget_prob_gap@4bit"],
               "quant4_utility": q["model_utility@4bit"],
               "para_gap": p["paraphrased_forget_prob_gap"],
               "para_fq": p["paraphrased_forget_quality"]}
    return columns, relearn_curves(points, rel["curves"], "forget_prob")


class RobustnessDriver:
    """Runs the robustness protocol for one bench (local executor only)."""

    def __init__(self, kit: Kit, options: RobustnessOptions, n_models: int):
        self.kit, self.opts = kit, options
        self.sc = kit.scenario
        self.lm = is_language_model(self.sc)

    def run_all(self, jobs: list[Job], progress: Progress) -> None:
        self.kit.by_seed(jobs, progress, lambda seed_jobs: self._run_seed(seed_jobs, progress))

    def _references(self, jobs: list[Job]):
        seed = jobs[0].seed
        original, t_orig = self.kit.reference("original", seed)
        retrained, t_ret = self.kit.reference("retrained", seed)
        return original, t_orig, retrained, t_ret

    def _attack(self, model, retrained, seed: int, memo: dict):
        if self.lm:
            return lm_attacks(model, retrained, self.sc, self.opts, seed, memo)
        return classifier_attacks(model, retrained, self.sc, self.opts, seed)

    def _run_seed(self, jobs: list[Job], progress: Progress) -> None:
        seed, kit = jobs[0].seed, self.kit
        progress.say(f"seed {seed}: original and retrained models")
        original, t_orig, retrained, t_ret = self._references(jobs)
        memo: dict = {}
        for job, model, seconds in ((jobs[0], original, t_orig), (jobs[1], retrained, t_ret)):
            if not kit.done(job):
                progress.say(f"seed {seed}: attacking the {job.method} model")
                columns, curves = self._attack(model, retrained, seed, memo)
                columns["time_s"] = seconds
                if job.kind != "original":
                    columns["time_ratio"] = 1.0
                kit.record(job, columns, wall=seconds, examples=curves)
            progress.step()
        for job in jobs[2:]:
            if kit.pending(job):
                progress.say(f"seed {seed}: {job.method}, then the attacks")
                self._method(job, original, retrained, t_ret, memo)
            progress.step()

    def _method(self, job: Job, original, retrained, t_ret: float, memo: dict) -> None:
        try:
            model, wall = self.kit.unlearn(job, original)
        except (TrainingDivergedError, DataError) as exc:
            self.kit.fail(job, exc)
            return
        columns, curves = self._attack(model, retrained, job.seed, memo)
        columns["time_s"] = wall
        columns["time_ratio"] = wall / t_ret if t_ret else float("nan")
        columns["recovers"] = float(columns["relearn_gap"] > RECOVERS)
        self.kit.record(job, columns, wall=wall, examples=curves)


GAP = "closer to 0"
PROTOCOLS.add("robustness", ProtocolSpec(
    name="robustness", version=VERSION,
    summary="relearning, 8/4-bit quantization and (language models) paraphrase attacks on "
            "each unlearned model, beside the retrained model under the same attack",
    driver=RobustnessDriver, options=RobustnessOptions, check_scenario=check_forget_share,
    tasks=("classification", "lm"), executors=("local",),
    smallest=("protocol.steps=2",),
    columns=(
        Column("forget", "forget accuracy (LM: answer probability) on the held-out forget "
               "examples, before any attack", "closer to retrain", "the retrained model's",
               shown=True, bounds=UNIT),
        Column("relearned", "the same after protocol.steps relearning steps on protocol.share "
               "of the forget set", "closer to retrain", "the retrained model's", bounds=UNIT),
        Column("relearn_gap", "relearned minus the retrained model's after the same attack",
               "lower", "0 (no more recovery than a model that never saw the data)",
               shown=True),
        Column("relearn_fq", "LM: TOFU forget quality after the relearning attack", "higher",
               ">= 0.05", shown=True, bounds=UNIT, tasks=("lm",)),
        Column("quant8_gap", "forget accuracy (LM: probability) at 8-bit weights minus the "
               "retrained model's at 8 bits", GAP, "0"),
        Column("quant4_gap", "forget accuracy (LM: probability) at 4-bit weights minus the "
               "retrained model's at 4 bits", GAP, "0", shown=True),
        Column("quant4_utility", "test accuracy (LM: model utility) at 4-bit weights", "higher",
               "the retrained model's", bounds=UNIT),
        Column("para_gap", "LM: answer probability on paraphrased forget questions minus the "
               "retain-only model's", GAP, "0", tasks=("lm",)),
        Column("para_fq", "LM: forget quality on the paraphrased questions", "higher",
               ">= 0.05", bounds=UNIT, tasks=("lm",)),
        Column("time_s", "unlearning wall time (references: training time), seconds", "lower",
               "as small as possible", 2),
        Column("time_ratio", "wall time / retrain's training time", "lower", "well below 1"),
    ),
    ranking=("relearn_gap", "lower"),
    flags=(Flag("recovers", "recovers", f"relearning brings back more than {RECOVERS:g} above "
                "what it brings back on the retrained model (relearn_gap)"),),
    tradeoff=Axes("relearn_gap", "quant4_gap", "relearning gap to retrain (lower is better)",
                  "4-bit quantization gap to retrain", y_lower_is_better=True),
    plots=("tradeoff", "cost"), compare_with="retrain (reference)",
    notes=("gap: the row's value minus the retrained model's under the same attack; 0: it "
           "recovers no more than a model that never saw the forget set",),
))
