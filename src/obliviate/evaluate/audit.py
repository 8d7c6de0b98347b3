"""The ``quick`` protocol: RA, FA, TA and the loss MIA of one model, with gaps to retrain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from obliviate.data.scenario import Scenario
from obliviate.evaluate.backdoor import backdoor_metrics
from obliviate.evaluate.mia import simple_mia
from obliviate.evaluate.tasks import TASKS, MetricInfo, all_metric_infos, gap_metrics, get_task
from obliviate.evaluate.utility import predict, tensor_batches

PROTOCOL = "quick/1"


METRICS: dict[str, MetricInfo] = dict(TASKS["classification"].metrics)
GAP_METRICS = ("RA", "FA", "TA", "MIA")  # classification's; other tasks: tasks.gap_metrics
# Measured only where the scenario defines them; not part of avg_gap.
SCENARIO_METRICS: dict[str, MetricInfo] = {
    "ASR": MetricInfo("backdoor attack success rate on triggered test inputs "
                      "(poisoned:FRACTION only)", "lower is better", "retrain's value"),
}


@dataclass
class AuditReport:
    """Metrics of one model; with a reference (the retrained model) also the gaps to it.

    ``gaps[m]`` is ``metrics[m] - reference[m]``; ``avg_gap`` is the mean absolute gap over
    RA, FA, TA and MIA (SalUn's "Avg. Gap"; lower is better, 0 is ideal), or over the task's
    own four metrics on a regression or anomaly scenario.
    """

    metrics: dict[str, float]
    losses: dict[str, np.ndarray] = field(repr=False)
    reference: dict[str, float] | None = None
    protocol: str = PROTOCOL

    @property
    def gaps(self) -> dict[str, float]:
        if self.reference is None:
            return {}
        return {m: self.metrics[m] - self.reference[m] for m in gap_metrics(self.metrics)}

    @property
    def avg_gap(self) -> float:
        gaps = self.gaps
        return float(np.mean([abs(v) for v in gaps.values()])) if gaps else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.metrics)
        for m, v in self.gaps.items():
            out[f"{m}_gap"] = v
        if self.reference is not None:
            out["avg_gap"] = self.avg_gap
        return out

    def __str__(self) -> str:
        lines = [f"{'metric':<6} {'value':>8} {'retrain':>8} {'gap':>8}  meaning"]
        infos = all_metric_infos()
        for m in gap_metrics(self.metrics):
            info = infos[m]
            ref = "" if self.reference is None else f"{self.reference[m]:8.4f}"
            gap = "" if self.reference is None else f"{self.gaps[m]:+8.4f}"
            lines.append(f"{m:<6} {self.metrics[m]:8.4f} {ref:>8} {gap:>8}  {info.label}; "
                         f"{info.direction}")
        for m, info in SCENARIO_METRICS.items():
            if m in self.metrics:
                ref = "" if self.reference is None else \
                    f"{self.reference.get(m, float('nan')):8.4f}"
                lines.append(f"{m:<6} {self.metrics[m]:8.4f} {ref:>8} {'':>8}  {info.label}; "
                             f"{info.direction}")
        if self.reference is not None:
            lines.append(f"avg |gap| to retrain: {self.avg_gap:.4f} (lower is better, 0 ideal)")
        return "\n".join(lines)


def measure(model: nn.Module, scenario: Scenario, *, seed: int = 0
            ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Retain, forget and test utility and the loss MIA (forget vs test) of ``model``.

    The utility is the scenario task's (:mod:`obliviate.evaluate.tasks`): RA, FA, TA for a
    classifier, R_RMSE, F_RMSE, T_RMSE for ratings, R_ERR, F_AUROC, T_AUROC for anomaly scores;
    and the backdoor's attack success rate (ASR) when the scenario planted one.
    """
    s = scenario.splits
    task = get_task(scenario.task)
    parts = {
        "retain": (scenario.x_retain, scenario.y_retain),
        "forget": (scenario.x_forget, scenario.y_forget),
        "test": (s.x_test, s.y_test),
    }
    outputs = {part: predict(model, tensor_batches(x, y)) for part, (x, y) in parts.items()}
    metrics = task.utility(outputs)
    losses = {part: task.loss(*outputs[part]) for part in ("forget", "test")}
    metrics["MIA"] = simple_mia(losses["forget"], losses["test"], seed=seed)
    metrics.update(backdoor_metrics(model, scenario))
    return metrics, losses


def audit(
    model: nn.Module,
    scenario: Scenario,
    reference: nn.Module | AuditReport | None = None,
    *,
    seed: int = 0,
) -> AuditReport:
    """Audit ``model`` on ``scenario`` under the quick protocol.

    Args:
        model: the model to audit (usually unlearned).
        scenario: supplies the forget, retain and test sets.
        reference: the retrained model (or its AuditReport); adds the gaps to retrain.
        seed: seeds the MIA's balancing subsample.

    Example:
        >>> report = audit(unlearned, sc, reference=sc.train_retrained(seed=0))
        >>> report.metrics["FA"], report.gaps["MIA"]
    """
    metrics, losses = measure(model, scenario, seed=seed)
    ref = None
    if isinstance(reference, AuditReport):
        ref = dict(reference.metrics)
    elif reference is not None:
        ref = measure(reference, scenario, seed=seed)[0]
    return AuditReport(metrics, losses, ref)
