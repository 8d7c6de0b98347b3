"""A multilayer perceptron for flat or image inputs."""

from __future__ import annotations

import math

from torch import nn

from obliviate.models import MODELS


class MLP(nn.Module):
    """Flatten, then ``len(hidden)`` ReLU layers, then a linear classifier."""

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...] = (256, 128)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


@MODELS.register("mlp")
def mlp(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return MLP(math.prod(input_shape), num_classes)
