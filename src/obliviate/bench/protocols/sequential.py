"""The ``sequential`` protocol: deletion requests arriving one after another.

An engineer honouring the right to be forgotten deletes again and again, each time from the
model the last deletion produced. Per seed, ``protocol.requests`` (K) forget specs are drawn
once from the seed (``protocol.request``: random slices, one whole class each, whole groups, or
authors on the language-model track) and recorded. Each method is applied to its own previous
output, request after request; after each request the protocol measures the task's utility,
the forgetting of the current request **and of every earlier one**, the loss MIA, the time, and
the gap to the model retrained from scratch without everything deleted so far (one reference
per step, cached like every reference model). ``protocol.retrain_every=R`` adds the row
``retrain-every-R``: retrained from scratch every R requests (the step's reference model),
patched with ``protocol.patch`` in between. A method with a prepare phase (SISA) deletes
natively from its deployment. ``protocol.growing=true`` is MUSE's scalability view instead:
step k starts from the original and forgets requests 1..k at once (one request of growing
size).

Each (method, seed, request) is stored as it finishes, with the model it produced in the
cache, so a killed bench resumes at the request it was on. The leaderboard row of a method is
its final step (``avg_gap`` ranks), with the worst step beside it (``worst_gap``); the report
draws each metric against the request number, the retrained reference as a band.

References:
    Shi, Liang, Xia, et al., "MUSE: Machine Unlearning Six-Way Evaluation for Language Models",
    arXiv 2407.06460 (2024): sustainability (successive requests) and scalability (forget-set
    size).
    Bourtoule et al., "Machine Unlearning", IEEE S&P 2021 (SISA's native deletion).

Fidelity notes:
    - MUSE measures sustainability on language models only, with its own utility (KnowMem on
      retain) and forgetting (VerbMem/KnowMem on forget); here classifiers use RA/TA/FA and the
      loss MIA, language models TOFU's model utility and forget quality.
    - Departs: the retrained reference's interval is a normal-approximation 95% binomial
      interval of each accuracy (classifiers); for language models the interval is TOFU's
      thresholds (forget quality >= 0.05, utility >= 0.9 x the reference's).
    - Departs: SISA deletes the union of all requests so far from its original deployment at
      every step (the bench's prepared state keeps no ledger between requests), so a step's
      time counts every shard any request touched; :class:`obliviate.sisa.SisaModel` keeps
      a ledger and retrains less.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from obliviate.bench.interfaces import is_language_model
from obliviate.bench.spec import (
    POSITIVE,
    PROTOCOLS,
    UNIT,
    Axes,
    Column,
    Figure,
    ProtocolSpec,
)
from obliviate.config import param
from obliviate.errors import ConfigError, DataError, TrainingDivergedError

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job
    from obliviate.bench.spec import Progress

VERSION = "sequential/1"
RETRAIN = "retrain (reference)"
_SPEC = re.compile(r"^(random|groups|authors):(\d+(?:\.\d+)?)$|^(class)$")
CLASSIFIER_GAPS = ("RA", "FA", "TA", "MIA")
LM_GAPS = ("model_utility", "forget_prob", "mia_loss")
FQ_THRESHOLD, MU_THRESHOLD = 0.05, 0.9  # TOFU's thresholds (the LM track's interval)


@dataclass(frozen=True)
class SequentialOptions:
    """Options of the sequential protocol (``--set protocol.NAME=VALUE``)."""

    requests: int = param(5, ge=1, le=100, help="deletion requests K, one after another")
    request: str = param("random:0.02", help="what each request deletes: random:FRACTION or "
                         "random:COUNT (training examples), class (one whole class), "
                         "groups:FRACTION or groups:COUNT (whole groups: users, people), "
                         "authors:COUNT (language models)")
    retrain_every: int = param(0, ge=0, help="R > 0 adds the row retrain-every-R: retrained "
                               "from scratch every R requests, patched in between (0: none)")
    patch: str = param("finetune", help="the method retrain-every-R patches with in between")
    growing: bool = param(False, help="MUSE's scalability view: request k starts from the "
                          "original and forgets requests 1..k at once (growing size)")

    def check(self, n_models: int, scenario: Any = None) -> None:
        """Refuse a request spec the scenario cannot serve K times, before any training."""
        m = _SPEC.match(self.request.strip())
        if m is None:
            raise ConfigError(f"protocol.request '{self.request}' is not a request spec: write "
                              f"random:0.02, random:20, class, groups:0.05 or authors:2.")
        from obliviate.unlearning import resolve_method

        resolve_method(self.patch)  # an unknown name says "Did you mean ...?"
        if scenario is not None:
            draw_requests(self, scenario, 0)

    def rows(self) -> tuple[str, ...]:
        """The policy rows this protocol adds beside the methods."""
        return (f"retrain-every-{self.retrain_every}",) if self.retrain_every else ()


# --- requests --------------------------------------------------------------------------------
def _count(arg: str, total: int, what: str) -> int:
    value = float(arg)
    n = int(round(value * total)) if value < 1 else int(value)
    if n < 1:
        raise ConfigError(f"protocol.request selects no {what} (of {total}); raise it.")
    return n


def draw_requests(opts: SequentialOptions, sc, seed: int) -> list[np.ndarray]:
    """The K requests of ``seed``, disjoint, drawn once: training indices (classifiers) or
    author ids (language models)."""
    kind, arg = _parse(opts.request)
    rng = np.random.default_rng([seed, 2022])
    k = opts.requests
    if is_language_model(sc):
        if kind != "authors":
            raise ConfigError("A language model's requests are authors:COUNT "
                              "(e.g. protocol.request=authors:2).")
        pool = np.unique([q.owner for q in sc.qa])
        units, per = pool, _count(arg, len(pool), "author")
    elif kind == "authors":
        raise ConfigError("authors:COUNT requests are for language models; use random:, "
                          "class or groups: here.")
    elif kind == "class":
        y = sc.splits.y_train.numpy()
        classes = rng.permutation(np.unique(y))
        if k >= len(classes):
            raise ConfigError(f"{k} requests of one class each would delete every class "
                              f"({len(classes)}); lower protocol.requests.")
        return [np.flatnonzero(y == c) for c in classes[:k]]
    elif kind == "groups":
        groups = sc.splits.groups
        if groups is None:
            raise ConfigError(f"The {sc.name} scenario has no groups; use random: or class.")
        units = np.unique(groups.numpy())
        per = _count(arg, len(units), "group")
    else:
        units = np.arange(len(sc.splits.y_train))
        per = _count(arg, len(units), "training example")
    if k * per >= len(units):
        raise ConfigError(f"{k} requests of {per} would delete all {len(units)}; lower "
                          f"protocol.requests or the request's size.")
    order = rng.permutation(units)
    picks = [np.sort(order[i * per:(i + 1) * per]) for i in range(k)]
    if kind == "groups":
        g = sc.splits.groups.numpy()
        return [np.flatnonzero(np.isin(g, p)) for p in picks]
    return picks


def _parse(spec: str) -> tuple[str, str]:
    m = _SPEC.match(spec.strip())
    return (m.group(3), "") if m.group(3) else (m.group(1), m.group(2))


def step_scenario(sc, forget: np.ndarray, deleted: np.ndarray, kept: np.ndarray | None = None):
    """``sc`` with ``forget`` as its forget set and everything in ``deleted`` out of its
    retain set (so its retrained model is trained without all of it). Language models: author
    ids; ``kept`` fixes the authors their utility is measured on."""
    if is_language_model(sc):
        out = dataclasses.replace(sc, forget_authors=np.asarray(forget))
        gone = set(np.asarray(deleted).tolist())
        out.retain_qa = [q for q in sc.qa if q.owner not in gone]
        fixed = [q for q in sc.qa if q.owner in set(np.asarray(kept).tolist())]
        step = max(1, len(fixed) // sc.options.retain_eval)
        out.retain_eval_qa = fixed[::step][: sc.options.retain_eval]
        return out
    out = dataclasses.replace(sc, forget_idx=np.asarray(forget))
    out.retain_idx = np.setdiff1d(np.arange(len(sc.splits.y_train)), deleted)
    return out


# --- measuring one step ----------------------------------------------------------------------
def classifier_step(model, sc_k, requests: list[np.ndarray], seed: int
                    ) -> tuple[dict[str, float], np.ndarray]:
    """RA, FA (this request), TA, MIA, FA_all (everything deleted so far) and FA_first; and the
    forget accuracy of each request so far."""
    from obliviate.evaluate.audit import measure
    from obliviate.evaluate.utility import accuracy, predict, tensor_batches

    metrics, _ = measure(model, sc_k, seed=seed)
    x, y = sc_k.splits.x_train, sc_k.splits.y_train
    per = []
    for idx in requests:
        logits, labels = predict(model, tensor_batches(x[idx], y[idx]))
        per.append(accuracy(logits, labels))
    union = np.concatenate(requests)
    logits, labels = predict(model, tensor_batches(x[union], y[union]))
    metrics.update(FA_all=accuracy(logits, labels), FA_first=per[0])
    return metrics, np.asarray(per, dtype=np.float64)


def lm_step(model, sc_k, requests: list[np.ndarray], reference: dict | None
            ) -> tuple[dict[str, float], dict]:
    """TOFU's figures on this request against the step's retain-only model (``reference``: its
    arrays and per-request truth ratios; None for the reference itself), and the forget
    quality of every request so far (``fq_all``: the lowest)."""
    from obliviate.llm import metrics as M
    from obliviate.llm.evaluate import evaluate_lm, question_stats

    metrics, arrays = evaluate_lm(model, sc_k, None if reference is None else reference["arrays"])
    ratios = [question_stats(model, sc_k.tokenizer, [q for q in sc_k.qa if q.owner in set(r)],
                             rouge=False)["truth_ratio"] for r in requests]
    fq = ([1.0] * len(ratios) if reference is None else
          [M.forget_quality(r, ref) for r, ref in zip(ratios, reference["ratios"], strict=True)])
    metrics.setdefault("forget_quality", 1.0)
    metrics.update(fq_all=min(fq), fq_first=fq[0])
    return metrics, {"arrays": arrays, "ratios": ratios, "fq": np.asarray(fq)}


def gaps(metrics: dict[str, float], ref: dict[str, float], lm: bool) -> dict[str, float]:
    """Per-metric gaps to the step's retrained model and their mean absolute value."""
    names = [m for m in (LM_GAPS if lm else CLASSIFIER_GAPS) if m in metrics and m in ref]
    out = {f"{m}_gap": metrics[m] - ref[m] for m in names}
    out["avg_gap"] = float(np.mean([abs(v) for v in out.values()]))
    return out


def interval(metric: str, value: float, n: int) -> tuple[float, float]:
    """The retrained reference's 95% interval for an accuracy over ``n`` examples (normal
    approximation), or TOFU's thresholds for the language-model figures."""
    if metric == "model_utility":
        return MU_THRESHOLD * value, math.inf
    if metric in ("fq_all", "forget_quality"):
        return FQ_THRESHOLD, 1.0
    half = 1.96 * math.sqrt(max(value * (1 - value), 0.25 / max(n, 1)) / max(n, 1))
    return max(0.0, value - half), min(1.0, value + half)


# --- the driver ------------------------------------------------------------------------------
class SequentialDriver:
    """Runs the sequential protocol for one bench (local executor only)."""

    def __init__(self, kit: Kit, options: SequentialOptions, n_models: int):
        self.kit, self.opts = kit, options
        self.sc = kit.scenario
        self.lm = is_language_model(self.sc)

    def run_all(self, jobs: list[Job], progress: Progress) -> None:
        self.kit.by_seed(jobs, progress, lambda seed_jobs: self._run_seed(seed_jobs, progress))

    def _steps(self, seed: int) -> list[tuple[Any, Any, list[np.ndarray]]]:
        """Per request k: (scenario forgetting requests 1..k at once, scenario of request k
        alone with 1..k out of its retain set, the requests so far)."""
        reqs = draw_requests(self.opts, self.sc, seed)
        kept = None
        if self.lm:
            kept = np.setdiff1d(np.unique([q.owner for q in self.sc.qa]), np.concatenate(reqs))
        out = []
        for k in range(len(reqs)):
            deleted = np.concatenate(reqs[:k + 1])
            measured = step_scenario(self.sc, reqs[k], deleted, kept)
            out.append((step_scenario(self.sc, deleted, deleted, kept), measured, reqs[:k + 1]))
        return out

    def _run_seed(self, jobs: list[Job], progress: Progress) -> None:
        kit, seed = self.kit, jobs[0].seed
        progress.say(f"seed {seed}: the original")
        original, _ = kit.reference("original", seed)
        steps = self._steps(seed)
        refs = self._references(jobs[1], steps, progress)
        progress.step()
        if kit.pending(jobs[0]):
            for k, (_, measured, reqs) in enumerate(steps):
                if not kit.done(jobs[0], f"req{k}"):
                    self._step(jobs[0], k, original, measured, reqs, refs[k], None)
            self._finish(jobs[0], steps, refs)
        progress.step()
        for job in jobs[2:]:
            if kit.pending(job):
                progress.say(f"seed {seed}: {job.method}, {len(steps)} requests")
                try:
                    self._method(job, original, steps, refs, progress)
                except (TrainingDivergedError, DataError) as exc:
                    kit.fail(job, exc)
            progress.step()

    def _references(self, job: Job, steps, progress: Progress) -> list[dict]:
        """Per step, the model retrained without requests 1..k: its row part (metrics, and
        for language models the arrays the methods' forget quality is measured against)."""
        kit, out = self.kit, []
        for k, (_, measured, reqs) in enumerate(steps):
            if not kit.done(job, f"req{k}"):
                progress.say(f"seed {job.seed}: retrained without requests 1..{k + 1}")
                model, seconds = kit.reference("retrained", job.seed, measured)
                self._step(job, k, model, measured, reqs, None, seconds)
            metrics, arrays = kit.metrics(job, f"req{k}"), kit.arrays(job, f"req{k}")
            out.append({"metrics": metrics, "seconds": metrics["time_s"],
                        "n": self._sizes(measured, reqs),
                        "arrays": {n[3:]: a for n, a in arrays.items() if n.startswith("lm_")},
                        "ratios": [arrays[f"ratio_{j}"] for j in range(len(reqs))
                                   if f"ratio_{j}" in arrays]})
        if kit.pending(job):
            self._finish(job, steps, out)
        return out

    def _sizes(self, measured, reqs: list[np.ndarray]) -> dict[str, int]:
        """How many examples each classifier figure is measured on (for its interval)."""
        if self.lm:
            return {}
        return {"TA": len(measured.splits.y_test), "RA": len(measured.retain_idx),
                "FA": len(reqs[-1]), "MIA": len(reqs[-1]), "FA_first": len(reqs[0]),
                "FA_all": int(sum(len(r) for r in reqs))}

    def _method(self, job: Job, original, steps, refs, progress: Progress) -> None:
        kit = self.kit
        policy = job.method in self.opts.rows()
        native = not policy and kit.method(job)[0].prepare is not None
        prepared = kit.prepared(job, original) if native else None
        model = original
        at_once = self.opts.growing or native  # from the original (deployment), 1..k at once
        for k, (cumulative, measured, reqs) in enumerate(steps):
            if kit.done(job, f"req{k}"):
                continue
            if k and not at_once:
                model = self._load(job, k - 1)
            seed = 1000 * job.seed + k
            if policy and (k + 1) % self.opts.retrain_every == 0:
                model, seconds = kit.reference("retrained", job.seed, measured)
            elif policy:
                patch = dataclasses.replace(job, method=self.opts.patch)
                model, seconds = kit.unlearn(patch, model, scenario=measured, seed=seed)
            elif at_once:
                model, seconds = kit.unlearn(job, original, scenario=cumulative, seed=seed,
                                             prepared=prepared)
            else:
                model, seconds = kit.unlearn(job, model, scenario=measured, seed=seed)
            if not at_once:  # else every step starts from the original
                self._save_model(job, k, model)
            self._step(job, k, model, measured, reqs, refs[k], seconds)
            progress.say(f"seed {job.seed}: {job.method}: request {k + 1}/{len(steps)} done")
        self._finish(job, steps, refs)
        kit.keep_model(job, model)

    # --- the store -----------------------------------------------------------------------------
    @staticmethod
    def _fingerprint(job: Job, k: int) -> str:
        return f"sequential-{job.key}-req{k}"

    def _save_model(self, job: Job, k: int, model) -> None:
        state = {n: t.detach().cpu().clone().contiguous() for n, t in model.state_dict().items()}
        self.kit.cache.write(self._fingerprint(job, k), state, {"method": job.method,
                                                                "request": k + 1})

    def _load(self, job: Job, k: int):
        hit = self.kit.cache.read(self._fingerprint(job, k))
        if hit is None:
            raise DataError(f"The model {job.method} produced at request {k + 1} is missing "
                            f"from the cache ({self.kit.cache.root}); delete the run directory "
                            f"to run the bench again.")
        model = self.sc.new_model(job.seed)
        model.load_state_dict(hit[0])
        return model.eval()

    def _step(self, job: Job, k: int, model, measured, reqs, ref: dict | None,
              seconds: float | None) -> None:
        """Measure ``model`` after request k and store it as the row's part ``reqK``; ``ref``
        None: ``model`` is the step's retrained reference."""
        examples: dict[str, np.ndarray] = {}
        if self.lm:
            metrics, extra = lm_step(model, measured, reqs, ref)
            per = extra["fq"]
            if ref is None:  # what the methods' forget quality is measured against
                examples.update({f"lm_{n}": np.asarray(a, dtype=np.float64)
                                 for n, a in extra["arrays"].items()})
                examples.update({f"ratio_{j}": np.asarray(r, dtype=np.float64)
                                 for j, r in enumerate(extra["ratios"])})
        else:
            metrics, per = classifier_step(model, measured, reqs, job.seed)
        metrics.update(gaps(metrics, metrics if ref is None else ref["metrics"], self.lm))
        metrics["request"] = float(k + 1)
        if seconds is not None:
            metrics["time_s"] = seconds
            ref_seconds = seconds if ref is None else ref["seconds"]
            metrics["time_ratio"] = seconds / ref_seconds if ref_seconds else math.nan
        examples["per_request"] = np.asarray(per, dtype=np.float64)
        self.kit.record(job, metrics, wall=seconds, part=f"req{k}", examples=examples)

    def _finish(self, job: Job, steps, refs: list[dict]) -> None:
        """The leaderboard row: the final step, the worst step, the totals, and per-step arrays
        (the report's curves; the reference row also its interval)."""
        kit, n_steps = self.kit, len(steps)
        per_step = [kit.metrics(job, f"req{k}") for k in range(n_steps)]
        final = dict(per_step[-1])
        final.pop("request", None)
        utility, forgetting = ("model_utility", "fq_all") if self.lm else ("TA", "FA_all")
        final["worst_gap"] = max(m["avg_gap"] for m in per_step)
        final["worst_utility"] = min(m[utility] for m in per_step)
        final.pop("time_s", None)
        final.pop("time_ratio", None)
        total = None
        if job.kind != "original":
            total = float(sum(m["time_s"] for m in per_step))
            ref_total = sum(r["seconds"] for r in refs)
            final["time_s"] = total
            final["time_ratio"] = total / ref_total if ref_total else math.nan
        final["drift_step"] = float(self._drift(per_step, refs, utility, forgetting))
        names = sorted({n for m in per_step for n in m if n != "request"})
        examples = {f"step_{n}": np.asarray([m.get(n, math.nan) for m in per_step])
                    for n in names}
        if job.kind == "retrain":
            for n in (utility, forgetting):
                bands = [interval(n, r["metrics"][n], r["n"].get(n, 0)) for r in refs]
                examples[f"step_{n}_lo"] = np.asarray([b[0] for b in bands])
                examples[f"step_{n}_hi"] = np.asarray([b[1] for b in bands])
        kit.record(job, final, wall=total, examples=examples)

    @staticmethod
    def _drift(per_step: list[dict], refs: list[dict], utility: str, forgetting: str) -> int:
        """The first request (1-based) after which utility or forgetting left the retrained
        reference's interval; 0 when it never did."""
        for k, (m, r) in enumerate(zip(per_step, refs, strict=True)):
            for n in (utility, forgetting):
                lo, hi = interval(n, r["metrics"][n], r["n"].get(n, 0))
                if not lo <= m[n] <= hi:
                    return k + 1
        return 0


# --- the report's figure ---------------------------------------------------------------------
def draw_requests_figure(run) -> Any:
    """Each metric against the request number, one line per method (mean over seeds), the
    retrained reference as a band (its interval, or the spread over seeds)."""
    import matplotlib.pyplot as plt

    lm = "step_model_utility" in {n for n in _array_names(run)}
    names = (["model_utility", "fq_all", "forget_quality", "mia_loss", "avg_gap", "time_ratio"]
             if lm else ["TA", "RA", "FA", "FA_all", "MIA", "avg_gap", "time_ratio"])
    colors = {m: f"C{i}" for i, m in enumerate(m for m in run.methods if m != RETRAIN)}
    cols = len(names) // 2 + 1  # a spare panel for the legend
    fig, grid = plt.subplots(2, cols, figsize=(3.4 * cols, 6.4))
    axes = grid.ravel()
    for ax in axes[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes, names, strict=False):
        for method, curves in run.arrays(f"step_{name}").items():
            curve = np.nanmean(np.stack(curves), axis=0)
            x = np.arange(1, len(curve) + 1)
            if method == RETRAIN:
                lo, hi = run.arrays(f"step_{name}_lo").get(method), \
                    run.arrays(f"step_{name}_hi").get(method)
                if lo and hi:
                    ax.fill_between(x, np.min(lo, 0), np.minimum(np.max(hi, 0), 1.05 *
                                    np.nanmax(curve) + 0.05), color="0.85", label=f"{method} "
                                    "interval")
                elif len(curves) > 1:
                    ax.fill_between(x, np.min(curves, 0), np.max(curves, 0), color="0.85")
                ax.plot(x, curve, color="black", lw=2, label=method)
            else:
                ax.plot(x, curve, marker="o", ms=3, label=method, color=colors.get(method))
        ax.set_xlabel("request")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(name)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].legend(handles, labels, loc="center", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _array_names(run) -> set[str]:
    from obliviate.bench.store import ResultStore

    with ResultStore(run.db, readonly=True) as store:
        return {r[0] for r in store.conn.execute("SELECT DISTINCT name FROM examples")}


_SHARE = "closer to retrain"
PROTOCOLS.add("sequential", ProtocolSpec(
    name="sequential", version=VERSION,
    summary="K deletion requests one after another, each applied to the previous output: "
            "utility, forgetting of every request so far, the MIA, time and the gap to the "
            "model retrained without everything deleted so far (MUSE's sustainability)",
    driver=SequentialDriver, options=SequentialOptions, tasks=("classification", "lm"),
    executors=("local",), policies=SequentialOptions.rows,
    smallest=("protocol.requests=2", "protocol.retrain_every=2"),
    columns=(
        Column("avg_gap", "final step: mean |gap| to the model retrained without every request "
               "(RA, FA, TA, MIA; LM: utility, forget probability, loss MIA)", "lower", "0",
               shown=True, bounds=POSITIVE),
        Column("worst_gap", "the largest avg_gap over the requests", "lower", "0", shown=True,
               bounds=POSITIVE),
        Column("drift_step", "the first request after which utility or forgetting left the "
               "retrained reference's interval (0: never)", "lower", "0", 0),
        Column("TA", "final test accuracy", "higher", "retrain's", bounds=UNIT,
               tasks=("classification",)),
        Column("RA", "final accuracy on what is kept", "higher", "retrain's", bounds=UNIT,
               tasks=("classification",)),
        Column("FA", "forget accuracy on the last request", _SHARE, "retrain's", bounds=UNIT,
               tasks=("classification",)),
        Column("FA_all", "forget accuracy on everything deleted so far", _SHARE, "retrain's",
               shown=True, bounds=UNIT, tasks=("classification",)),
        Column("FA_first", "forget accuracy on the first request, after all of them (does it "
               "come back?)", _SHARE, "retrain's", bounds=UNIT, tasks=("classification",)),
        Column("MIA", "loss MIA on the last request vs test", _SHARE, "retrain's", bounds=UNIT,
               tasks=("classification",)),
        Column("worst_utility", "the lowest utility over the requests (TA; LM: model utility)",
               "higher", "retrain's", bounds=UNIT),
        Column("model_utility", "final TOFU model utility", "higher", "retrain's",
               bounds=UNIT, tasks=("lm",)),
        Column("forget_quality", "forget quality of the last request against the step's "
               "retain-only model", "higher", ">= 0.05", bounds=UNIT, tasks=("lm",)),
        Column("fq_all", "the lowest forget quality over every request so far", "higher",
               ">= 0.05", shown=True, bounds=UNIT, tasks=("lm",)),
        Column("fq_first", "forget quality of the first request after all of them", "higher",
               ">= 0.05", bounds=UNIT, tasks=("lm",)),
        Column("mia_loss", "loss-attack AUC, last request vs held-out authors", _SHARE,
               "retrain's", bounds=UNIT, tasks=("lm",)),
        Column("time_s", "unlearning seconds summed over the requests (reference: training)",
               "lower", "as small as possible", 2),
        Column("time_ratio", "time_s / the references' training seconds summed over requests",
               "lower", "well below 1", bounds=POSITIVE),
    ),
    ranking=("avg_gap", "lower"),
    tradeoff=Axes("avg_gap", "worst_utility", "final gap to retrain (lower is better)",
                  "worst utility over the requests (higher is better)"),
    plots=("tradeoff", "cost"), figures=(Figure("requests", draw_requests_figure,
                                                "Each metric against the request number, one "
                                                "line per method; the grey band is the "
                                                "retrained reference's interval."),),
    compare_with=RETRAIN,
    notes=("each row is the final request; worst_gap / worst_utility the worst request; "
           "per-request values are in the store (parts reqK) and the report's requests plot",),
))
