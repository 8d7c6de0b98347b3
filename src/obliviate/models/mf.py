"""Matrix factorisation for explicit ratings: a regression model over (user, item) pairs."""

from __future__ import annotations

import torch
from torch import nn

from obliviate.models import MODELS


class MatrixFactorization(nn.Module):
    """rating(u, i) = mean + b_u + b_i + <p_u, q_i> (Koren, Bell, Volinsky 2009).

    Input: int64 (batch, 2) of (user index, item index). Output: predicted ratings (batch,).
    ``objective`` is the squared error, so the shared training loop and the gradient methods
    (fine-tune, NegGrad, NegGrad+) train and unlearn it unchanged.
    """

    task = "regression"

    def __init__(self, n_users: int, n_items: int, dim: int = 32, mean: float = 3.5):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=0.05)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, i = x[:, 0], x[:, 1]
        dot = (self.user(u) * self.item(i)).sum(dim=1)
        return self.mean + self.user_bias(u).squeeze(1) + self.item_bias(i).squeeze(1) + dot

    @staticmethod
    def objective(predicted: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(predicted, ratings.to(predicted.dtype))


@MODELS.register("mf")
def mf(input_shape: tuple[int, ...], num_classes: int, *, n_users: int, n_items: int,
       mean: float = 3.5, dim: int = 32) -> nn.Module:
    return MatrixFactorization(n_users, n_items, dim=dim, mean=mean)
