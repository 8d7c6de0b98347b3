"""Evaluation: utility, the loss MIA, the challenge metric, LiRA and U-LiRA, the quick audit.

The metrics are plain functions usable without the harness, e.g.
``forgetting_quality(unlearned_conf, retrained_conf)`` over arrays shaped (models, examples).
"""

from obliviate.evaluate.backdoor import attack_success_rate
from obliviate.evaluate.challenge import (
    evaluate_forgetting,
    final_score,
    forgetting_quality,
    logit_scaled_confidence,
    per_example_epsilons,
)
from obliviate.evaluate.lira import attack_metrics, lira, lira_scores, ulira, ulira_split
from obliviate.evaluate.mia import simple_mia

__all__ = [
    "attack_metrics", "attack_success_rate", "evaluate_forgetting", "final_score", "forgetting_quality", "lira",
    "lira_scores", "logit_scaled_confidence", "per_example_epsilons", "simple_mia", "ulira",
    "ulira_split",
]
