"""Multinomial logistic regression: one linear layer on flattened inputs."""

from __future__ import annotations

import math

from torch import nn

from obliviate.models import MODELS


class LogisticRegression(nn.Module):
    """Flatten, then a single linear layer whose logits feed softmax cross-entropy."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.features = nn.Flatten()
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


@MODELS.register("logreg")
def logreg(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return LogisticRegression(math.prod(input_shape), num_classes)
