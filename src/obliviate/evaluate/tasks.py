"""What a scenario's model does (classify, predict ratings, score anomalies) and how to measure it.

The quick protocol reports, for every task, a utility on the retain, forget and test sets and
the loss MIA (forget vs test), each beside the retrained model's value. Only the utility
changes with the task:

- ``classification``: accuracy (RA, FA, TA);
- ``regression`` (ratings): root mean squared error (R_RMSE, F_RMSE, T_RMSE);
- ``anomaly``: the mean anomaly score on retain (R_ERR), the AUROC of the score at telling
  forget examples from normal test examples (F_AUROC: near 1 when forgotten anomalies are
  flagged again) and the test AUROC, anomalies vs normal (T_AUROC).

The per-example loss that the MIA reads is the task's own: cross-entropy, squared error, or the
anomaly score (the reconstruction error the detector was trained to lower).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from obliviate.errors import ConfigError, ForgetSpecError
from obliviate.evaluate.utility import accuracy, per_example_loss

# Methods whose only contact with the labels is the model's training loss, so they unlearn any
# model that declares its ``objective`` (see train.cross_entropy_loss). The others read class
# probabilities (distillation, random labels, saliency on cross-entropy, Fisher of a softmax).
TASK_AGNOSTIC_METHODS = ("retrain", "finetune", "neggrad", "neggrad+", "l1-sparse")


@dataclass(frozen=True)
class MetricInfo:
    """What a metric means, which way is better, and what the ideal is."""

    label: str
    direction: str
    ideal: str


Parts = Mapping[str, tuple[np.ndarray, np.ndarray]]  # 'retain'/'forget'/'test' -> (out, target)


@dataclass(frozen=True)
class Task:
    """A kind of model output: its metrics, per-example loss and the forget specs it accepts.

    ``utility(parts)`` maps the model's outputs and targets on the retain, forget and test sets
    to the task's three utility metrics; ``loss(outputs, targets)`` is the per-example loss the
    MIA reads.
    """

    name: str
    metrics: Mapping[str, MetricInfo]
    loss: Callable[[np.ndarray, np.ndarray], np.ndarray]
    utility: Callable[[Parts], dict[str, float]]
    forget_kinds: tuple[str, ...] | None = None  # None: every kind


def squared_error(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    return (np.asarray(predicted, np.float64).ravel() - np.asarray(target, np.float64)) ** 2


def rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error (nan for no examples)."""
    if len(target) == 0:
        return float("nan")
    return float(np.sqrt(squared_error(predicted, target).mean()))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of the score at telling label 1 (anomaly) from label 0; nan with one class."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score  # here: sklearn costs most of a second at start

    return float(roc_auc_score(labels, np.asarray(scores, np.float64).ravel()))


def _scores(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.asarray(outputs, np.float64).ravel()


def _classification(parts: Parts) -> dict[str, float]:
    return {f"{p[0].upper()}A": accuracy(*parts[p]) for p in ("retain", "forget", "test")}


def _regression(parts: Parts) -> dict[str, float]:
    return {f"{p[0].upper()}_RMSE": rmse(*parts[p]) for p in ("retain", "forget", "test")}


def _anomaly(parts: Parts) -> dict[str, float]:
    retain, forget, (test_scores, test_labels) = parts["retain"], parts["forget"], parts["test"]
    normal = _scores(test_scores, test_labels)[np.asarray(test_labels) == 0]
    forget_scores = _scores(*forget)
    return {
        "R_ERR": float(np.mean(_scores(*retain))) if len(retain[0]) else float("nan"),
        "F_AUROC": auroc(np.r_[forget_scores, normal],
                         np.r_[np.ones(len(forget_scores)), np.zeros(len(normal))]),
        "T_AUROC": auroc(test_scores, test_labels),
    }


MIA_INFO = MetricInfo("loss-MIA accuracy, forget vs test", "closer to retrain is better",
                      "retrain's value (about 0.5)")

TASKS: dict[str, Task] = {
    "classification": Task(
        "classification",
        {"RA": MetricInfo("retain accuracy", "higher is better", "retrain's value or above"),
         "FA": MetricInfo("forget accuracy", "closer to retrain is better", "retrain's value"),
         "TA": MetricInfo("test accuracy", "higher is better", "retrain's value or above"),
         "MIA": MIA_INFO},
        per_example_loss, _classification),
    "regression": Task(
        "regression",
        {"R_RMSE": MetricInfo("retain RMSE", "lower is better", "retrain's value or below"),
         "F_RMSE": MetricInfo("forget RMSE", "closer to retrain is better", "retrain's value"),
         "T_RMSE": MetricInfo("test RMSE (held-out ratings)", "lower is better",
                              "retrain's value or below"),
         "MIA": MIA_INFO},
        squared_error, _regression, forget_kinds=("random", "ids", "groups")),
    "anomaly": Task(
        "anomaly",
        {"R_ERR": MetricInfo("mean anomaly score (reconstruction error) on retain",
                             "lower is better", "retrain's value or below"),
         "F_AUROC": MetricInfo("AUROC of forget examples vs normal test examples",
                               "closer to retrain is better", "retrain's value"),
         "T_AUROC": MetricInfo("test AUROC, anomalies vs normal", "higher is better",
                               "retrain's value or above"),
         "MIA": MIA_INFO},
        _scores, _anomaly, forget_kinds=("random", "ids", "class", "classes")),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"Unknown task '{name}'. Use one of: {', '.join(TASKS)}.")
    return TASKS[name]


def all_metric_infos() -> dict[str, MetricInfo]:
    """Every task's metrics, classification's first (the legend reads them by name)."""
    out: dict[str, MetricInfo] = {}
    for task in TASKS.values():
        out.update(task.metrics)
    return out


def gap_metrics(metrics: Mapping[str, object]) -> tuple[str, ...]:
    """The metrics of the task whose metric names ``metrics`` holds (gaps to retrain are taken
    over these); classification's RA, FA, TA, MIA when none matches."""
    for task in TASKS.values():
        if all(m in metrics for m in task.metrics):
            return tuple(task.metrics)
    return tuple(TASKS["classification"].metrics)


def check_forget_kind(task: str, kind: str, text: str, scenario: str) -> None:
    """Refuse a forget spec that has no meaning for the task (e.g. ``class:3`` on ratings)."""
    allowed = get_task(task).forget_kinds
    if allowed is not None and kind not in allowed:
        raise ForgetSpecError(
            f"'{text}' does not apply to {scenario}, a {task} scenario (its targets are not "
            f"classes); use one of: {', '.join(k + ':...' for k in allowed)}."
        )


def check_method_task(method: str, family: str, task: str) -> None:
    """Refuse a built-in method that needs class probabilities on a regression/anomaly model.

    Users' own methods (family ``user``) are let through: they know what their code reads.
    """
    if task == "classification" or family == "user" or method in TASK_AGNOSTIC_METHODS:
        return
    raise ConfigError(
        f"Method '{method}' needs a classifier (it reads class probabilities or labels) and this "
        f"model is a {task} model. Methods that work on it: "
        f"{', '.join(TASK_AGNOSTIC_METHODS)}."
    )
