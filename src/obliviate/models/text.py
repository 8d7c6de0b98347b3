"""A bag-of-n-grams text classifier: mean of n-gram embeddings, then a linear layer."""

from __future__ import annotations

import torch
from torch import nn

from obliviate.models import MODELS


class EmbeddingBagClassifier(nn.Module):
    """fastText-style classifier (Joulin et al. 2017) over padded n-gram ids (0 is padding).

    Input: int64 (batch, length) of token and n-gram ids from
    :class:`obliviate.data.text.NgramTokenizer`. Output: logits (batch, classes).
    """

    def __init__(self, vocab_size: int, num_classes: int, dim: int = 32):
        super().__init__()
        self.features = nn.EmbeddingBag(vocab_size, dim, mode="mean", padding_idx=0)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@MODELS.register("embbag")
def embbag(num_classes: int, input_shape: tuple[int, ...], *, vocab_size: int,
           dim: int = 32) -> nn.Module:
    return EmbeddingBagClassifier(vocab_size, num_classes, dim=dim)
