"""The SISA ensemble as one ``nn.Module``: constituents' predictions aggregated."""

from __future__ import annotations

import torch
from torch import nn

AGGREGATIONS = ("mean", "vote")


class SisaEnsemble(nn.Module):
    """S constituent models; outputs log-probabilities of the aggregated prediction.

    ``mean`` averages the constituents' softmax outputs; ``vote`` counts their argmax labels
    (the authors' default, ``--output_type argmax``), ties broken by the mean softmax. Either
    way the output is a log-probability vector, so cross-entropy, accuracy and the
    logit-scaled confidence of the challenge protocol read it like ordinary logits.
    """

    def __init__(self, constituents: list[nn.Module], aggregation: str = "mean"):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            from obliviate.errors import ConfigError

            raise ConfigError(f"SISA aggregation must be one of {', '.join(AGGREGATIONS)}. Got "
                              f"{aggregation!r} instead.")
        self.constituents = nn.ModuleList(constituents)
        self.aggregation = aggregation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).softmax(-1) for m in self.constituents])  # (S, batch, classes)
        mean = probs.mean(0)
        if self.aggregation == "vote":
            votes = nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).sum(0).float()
            # fractions of votes; the mean softmax (< 1 / S) only breaks ties
            mean = (votes + mean) / (len(self.constituents) + 1)
        return mean.clamp_min(1e-12).log()
