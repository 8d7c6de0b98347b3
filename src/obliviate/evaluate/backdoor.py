"""Attack success rate (ASR) of a backdoor: how often the trigger still steers the model.

References:
    Gu et al., "BadNets: Identifying vulnerabilities in the machine learning model supply
    chain", 2017 (the attack and the metric).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from obliviate.evaluate.utility import predict, tensor_batches

if TYPE_CHECKING:
    from obliviate.data.reasons import Backdoor
    from obliviate.data.scenario import Scenario


def attack_success_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        backdoor: Backdoor) -> float:
    """Fraction of inputs outside the target class that the model assigns to the target class
    once the trigger is stamped on them (nan when every input is of the target class).

    Example:
        >>> attack_success_rate(model, sc.splits.x_test, sc.splits.y_test, sc.backdoor)
    """
    keep = y != backdoor.target
    if not bool(keep.any()):
        return float("nan")
    logits, _ = predict(model, tensor_batches(backdoor.stamp(x[keep]), y[keep]))
    return float((logits.argmax(axis=1) == backdoor.target).mean())


def backdoor_metrics(model: nn.Module, scenario: Scenario) -> dict[str, float]:
    """``{"ASR": ...}`` on the triggered test set when the scenario planted a backdoor."""
    if scenario.backdoor is None:
        return {}
    s = scenario.splits
    return {"ASR": attack_success_rate(model, s.x_test, s.y_test, scenario.backdoor)}
