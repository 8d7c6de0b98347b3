"""Logistic regression (flatten, one linear layer) and the certified head that replaces one."""

from __future__ import annotations

import math

import torch
from torch import nn

from obliviate.models import MODELS


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: a single linear layer over the flattened input."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.features = nn.Flatten()
        self.classifier = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


@MODELS.register("logreg")
def logreg(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return LogisticRegression(math.prod(input_shape), num_classes)


class UnitNormLinear(nn.Module):
    """A bias-free linear layer over unit-L2-norm inputs: ``normalize(x) @ weight.T``.

    The form certified removal needs (|x| <= 1, no bias). ``certificate`` holds the removal
    guarantee of the weights, when they come from :mod:`obliviate.certified`.
    """

    def __init__(self, weight: torch.Tensor, certificate: object = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone().to(dtype))
        self.certificate = certificate

    def forward(self, x):
        return nn.functional.normalize(x.flatten(1), dim=1) @ self.weight.T
