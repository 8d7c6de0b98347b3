"""An autoencoder anomaly detector whose output is each example's anomaly score."""

from __future__ import annotations

import math

import torch
from torch import nn

from obliviate.models import MODELS


class AnomalyAutoencoder(nn.Module):
    """Encoder to a narrow code, decoder back; forward returns the reconstruction error.

    Returning the per-example mean squared reconstruction error (the anomaly score) rather than
    the reconstruction lets the shared loop train it with ``objective`` = the mean score, and
    lets NegGrad raise the score of the examples it is told to forget. Labels are ignored:
    training is unsupervised, as on contaminated data in practice.
    """

    task = "anomaly"

    def __init__(self, in_features: int, hidden: int = 32, code: int = 3):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
                                     nn.Linear(hidden, code))  # linear code: no dead units
        self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.ReLU(),
                                     nn.Linear(hidden, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return ((self.decoder(self.encoder(x)) - flat) ** 2).mean(dim=1)

    @staticmethod
    def objective(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return scores.mean()


@MODELS.register("autoencoder")
def autoencoder(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return AnomalyAutoencoder(math.prod(input_shape))
