"""Which methods are statistically indistinguishable from the best one and from retrain.

Read from the run directory alone: the protocol's ranking metric per row and seed, and its
bootstrap replicates (``NAME_boot``) where the driver stored them; the test itself is
:func:`obliviate.evaluate.comparisons.paired_comparison`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.bench.store import ResultStore
from obliviate.evaluate.comparisons import ALPHA, Verdict, paired_comparison
from obliviate.report.rundir import REFERENCES, RunDir

TESTS = {
    "bootstrap": "paired bootstrap z-test: the difference of the two rows' values over the "
                 "standard deviation of their replicate differences, every row of a seed "
                 "resampled with the same draws (models and forget examples, or target models "
                 "and pool examples), seeds averaged replicate by replicate",
    "seeds": "paired t-test over seeds (each seed's original, retrained model and runs are "
             "shared by the rows it compares)",
}


@dataclass
class Comparisons:
    """The verdicts of one run and how they were reached."""

    metric: str
    direction: str
    kind: str  # "bootstrap" or "seeds"
    reference: str
    best: list[Verdict]
    against_reference: list[Verdict]

    @property
    def method_text(self) -> str:
        families = "vs the best" + (f", vs {self.reference}" if self.against_reference else "")
        return (f"{TESTS[self.kind]}; Holm's step-down correction over the methods in each "
                f"family ({families}); family-wise error {ALPHA}; 'indistinguishable': the "
                f"adjusted p-value is above {ALPHA}.")


def _reference(run: RunDir) -> str:
    """The row methods are compared with as "retrain": the spec's ``compare_with`` (a protocol
    whose reference row is 0 by construction names the independent ``retrain`` method), when
    the run has it."""
    name = run.spec.compare_with
    return name if name in run.methods else ""


def comparisons(run: RunDir) -> Comparisons | None:
    """The run's paired comparisons on its ranking metric, or None when nothing can be tested."""
    metric, direction = run.spec.ranking
    reference = _reference(run)
    done = run.runs[run.runs["status"] == "done"].sort_values("seed", kind="stable")
    per_seed: dict[str, dict[int, float]] = {}
    boots: dict[str, dict[int, np.ndarray]] = {}
    with ResultStore(run.db, readonly=True) as store:
        for method, key, seed in zip(done["method"], done["key"], done["seed"], strict=True):
            value = store.metrics(key).get(metric)
            if value is None:
                continue
            per_seed.setdefault(method, {})[int(seed)] = float(value)
            rep = store.example_values(key, f"{metric}_boot")
            if rep is not None:
                boots.setdefault(method, {})[int(seed)] = rep
    rows = [m for m in run.methods if m in per_seed and (m not in REFERENCES or m == reference)]
    seeds = sorted({s for m in rows for s in per_seed[m]})
    rows = [m for m in rows if set(per_seed[m]) == set(seeds)]  # paired: the same seeds
    if not seeds or len(rows) < 2:
        return None
    estimates = {m: float(np.mean([per_seed[m][s] for s in seeds])) for m in rows}
    if all(m in boots and set(boots[m]) == set(seeds) for m in rows):
        kind = "bootstrap"
        draws = {m: np.mean([boots[m][s] for s in seeds], axis=0) for m in rows}
    else:
        kind = "seeds"
        draws = {m: np.array([per_seed[m][s] for s in seeds]) for m in rows}
    found = paired_comparison(estimates, draws, higher_is_better=direction == "higher", kind=kind,
                              reference=reference or None,
                              candidates=[m for m in rows if m not in REFERENCES])
    return Comparisons(metric, direction, kind, reference or "retrain", found["best"],
                       found["reference"])


def verdict_text(v: Verdict) -> str:
    if v.p_value != v.p_value:
        return "not tested (needs 2+ seeds)"
    return "indistinguishable" if v.indistinguishable else "different"


def _cells(v: Verdict | None) -> list[str]:
    if v is None:
        return ["-", "-", "-"]
    p = "-" if v.p_holm != v.p_holm else f"{v.p_holm:.3g}"
    return [f"{v.difference:+.4g}", p, verdict_text(v)]


@dataclass
class VerdictTable:
    """The comparison table the report shows: a title, how it was tested, a header, rows."""

    title: str
    text: str
    header: list[str]
    rows: list[list[str]]


def verdict_table(run: RunDir) -> VerdictTable | None:
    """One row per method: its difference, Holm p-value and verdict vs the best and vs retrain."""
    found = comparisons(run)
    if found is None or not (found.best or found.against_reference):
        return None
    by_best = {v.method: v for v in found.best}
    by_ref = {v.method: v for v in found.against_reference}
    best = found.best[0].against if found.best else next(iter(by_ref))
    names = [best, *by_best] if found.best else list(by_ref)
    title = f"Statistical comparisons ({found.metric}, {found.direction} is better)"
    if all(v.p_value != v.p_value for v in [*found.best, *found.against_reference]):
        # one seed and no bootstrap: say once that nothing was tested, keep the differences
        rows = [[name, "-" if name == best else _cells(by_best.get(name))[0],
                 *([_cells(by_ref.get(name))[0]] if by_ref else [])] for name in names]
        header = ["method", f"vs {best}: difference",
                  *([f"vs {found.reference}: difference"] if by_ref else [])]
        return VerdictTable(title, f"Best: {best}. Not tested: the paired tests need 2+ seeds "
                                   f"(this run has one); the differences are that seed's.",
                            header, rows)
    rows = [[name, *(["-", "-", "the best"] if name == best else _cells(by_best.get(name))),
             *(_cells(by_ref.get(name)) if by_ref else [])] for name in names]
    header = ["method", f"vs {best}: difference", "p (Holm)", "verdict",
              *([f"vs {found.reference}: difference", "p (Holm)", "verdict"] if by_ref else [])]
    return VerdictTable(title, f"Best: {best}. Test: {found.method_text}", header, rows)


def markdown_section(run: RunDir) -> list[str]:
    """Lines of ``leaderboard.md``'s comparison section (empty when nothing was tested)."""
    table = verdict_table(run)
    if table is None:
        return []
    return ["", f"## {table.title}", "", table.text, "",
            "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header),
            *("| " + " | ".join(r) + " |" for r in table.rows)]
