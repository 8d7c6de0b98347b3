"""The ``quick`` protocol: RA, FA, TA and the loss MIA of one model, with gaps to retrain.

:func:`audit` scores any model on a scenario, or on the user's own forget, retain and test
sets (loaders or tensors); the scenario form only reads the scenario's tensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.errors import ConfigError, DataError
from obliviate.evaluate.backdoor import backdoor_metrics
from obliviate.evaluate.mia import simple_mia
from obliviate.evaluate.tasks import TASKS, MetricInfo, all_metric_infos, gap_metrics, get_task
from obliviate.evaluate.utility import fixed_order, predict, tensor_batches
from obliviate.inputs import UNSEEN, check_batch, check_loader, check_model, first_batch

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


Part = Iterable | tuple[torch.Tensor, torch.Tensor]  # a loader of batches, or (x, y) tensors


def measure_parts(model: nn.Module, forget: Part, retain: Part, test: Part, *,
                  task: str | None = None, seed: int = 0,
                  device: str | torch.device | None = None
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Retain, forget and test utility and the loss MIA (forget vs test) of ``model``.

    Each part is a loader of batches (``(inputs, labels)`` or mappings with ``labels``, as
    :mod:`obliviate.batches` reads them) or an ``(x, y)`` pair of tensors. The utility is the
    task's (:mod:`obliviate.evaluate.tasks`): RA, FA, TA for a classifier, R_RMSE, F_RMSE,
    T_RMSE for ratings, R_ERR, F_AUROC, T_AUROC for anomaly scores. ``task`` defaults to the
    model's own ``task`` attribute, else classification.
    """
    facts = check_model(model, "audit")
    task_name = task or getattr(model, "task", "classification")
    task_spec = get_task(task_name)
    parts = {"retain": retain, "forget": forget, "test": test}
    for name in ("forget", "retain", "test"):  # ob.unlearn's checks, in its order
        part = parts[name]
        batch = _first_batch(part, name)
        if batch is not UNSEEN:
            check_batch(model, batch, name, facts, task=task_name)
    outputs = {name: predict(model, _batches(part, name), device=device)
               for name, part in parts.items()}
    metrics = task_spec.utility(outputs)
    losses = {part: task_spec.loss(*outputs[part]) for part in ("forget", "test")}
    metrics["MIA"] = simple_mia(losses["forget"], losses["test"], seed=seed)
    return metrics, losses


def _batches(part: Part, name: str) -> Iterable:
    """A part as batches: an (x, y) pair of tensors is cut into unshuffled batches."""
    if isinstance(part, tuple | list) and len(part) == 2 and all(
            isinstance(t, torch.Tensor) for t in part):
        x, y = part
        if len(x) != len(y):
            raise DataError(f"The {name} set has {len(x)} inputs but {len(y)} labels; give one "
                            f"label per input.")
        return tensor_batches(x, y)
    if part is None:
        raise DataError(f"audit needs the {name} set: pass {name}=<DataLoader or (x, y)>.")
    check_loader(part, name)
    return fixed_order(part)


def _first_batch(part: Part, name: str) -> Any:
    """The first batch of a part (an (x, y) pair gives its first rows), UNSEEN for an iterable
    that cannot be read without consuming it; an empty part is refused."""
    if isinstance(part, tuple | list) and len(part) == 2 and all(
            isinstance(t, torch.Tensor) for t in part):
        _batches(part, name)  # checks one label per input
        batch = (part[0][:256], part[1][:256]) if len(part[1]) else None
    else:
        batch = first_batch(_batches(part, name))
    if batch is None:
        raise DataError(f"The {name} set is empty; audit needs at least one example in it "
                        f"(and 5 in forget and test for the MIA).")
    return batch


def measure(model: nn.Module, scenario: Any, *, seed: int = 0,
            device: str | torch.device | None = None
            ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """:func:`measure_parts` on a scenario's forget, retain and test tensors.

    Also the backdoor's attack success rate (ASR) when the scenario planted one. ``scenario``
    is read duck-typed (``x_forget``, ``y_forget``, ``x_retain``, ``y_retain``, ``splits``,
    ``task``, ``backdoor``), so that this module does not import the data package.
    """
    s = scenario.splits
    metrics, losses = measure_parts(
        model, (scenario.x_forget, scenario.y_forget), (scenario.x_retain, scenario.y_retain),
        (s.x_test, s.y_test), task=getattr(scenario, "task", None), seed=seed, device=device)
    metrics.update(backdoor_metrics(model, scenario))
    return metrics, losses


def _is_scenario(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("splits", "x_forget", "x_retain"))


def audit(
    model: nn.Module,
    scenario: Any = None,
    reference: nn.Module | AuditReport | None = None,
    *,
    forget: Part | None = None,
    retain: Part | None = None,
    test: Part | None = None,
    task: str | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> AuditReport:
    """Audit ``model`` under the quick protocol, on a scenario or on your own data.

    Args:
        model: the model to audit (usually unlearned); any classifier whose output is a
            tensor, a tuple with the logits first, or an output with ``.logits``.
        scenario: a :class:`~obliviate.Scenario`, which supplies the forget, retain and test
            sets; or None, and give them as ``forget=``, ``retain=``, ``test=``.
        reference: the retrained model (or its AuditReport); adds the gaps to retrain.
        forget: the forgotten examples (members for the MIA): a DataLoader or ``(x, y)``.
            A shuffling DataLoader is read in a fixed order (by dataset index; see
            :func:`~obliviate.evaluate.utility.fixed_order`), so the scores do not depend on
            the loader's order and two calls give the same numbers.
        retain: the kept training examples: a DataLoader or ``(x, y)``.
        test: held-out examples (the MIA's non-members): a DataLoader or ``(x, y)``.
        task: "classification" (default), "regression" or "anomaly".
        seed: seeds the MIA's balancing subsample.
        device: where to evaluate (a copy of the model is moved there); default: the model's.

    Raises:
        ConfigError: the model is not an nn.Module (a state_dict, say).
        DataError: a set is missing, empty, is not a loader or an (x, y) pair, or is too
            small for the MIA (5 examples); or, as :func:`obliviate.unlearn` checks, its
            labels are not class indices below the model's number of outputs, the model
            fails on its inputs, or its outputs are not (batch, classes) logits.

    Example:
        >>> report = audit(unlearned, forget=forget_loader, retain=retain_loader,
        ...                test=(x_test, y_test), reference=retrained)
        >>> report = audit(unlearned, sc, reference=sc.train_retrained(seed=0))
        >>> report.metrics["FA"], report.gaps["MIA"]
    """
    if scenario is not None and not _is_scenario(scenario):
        raise ConfigError(f"audit's second argument is a Scenario; got "
                          f"{type(scenario).__name__}. Pass your own data as forget=, retain=, "
                          f"test= (loaders or (x, y) tensors).")
    if scenario is not None and any(p is not None for p in (forget, retain, test)):
        raise ConfigError("Pass either a scenario or forget=, retain=, test= to audit, not both.")

    def run(m: nn.Module) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        if scenario is not None:
            return measure(m, scenario, seed=seed, device=device)
        return measure_parts(m, forget, retain, test, task=task, seed=seed, device=device)

    metrics, losses = run(model)
    ref = None
    if isinstance(reference, AuditReport):
        ref = dict(reference.metrics)
    elif reference is not None:
        ref = run(reference)[0]
    return AuditReport(metrics, losses, ref)
