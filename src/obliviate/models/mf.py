"""Matrix factorisation for explicit ratings: a regression model over (user, item) pairs."""

from __future__ import annotations

import torch
from torch import nn

from obliviate.models import MODELS


class _Table(nn.Embedding):
    """An embedding table drawn from N(0, std^2); std 0 gives zeros (the biases).

    Its own ``reset_parameters`` keeps this initialisation when a method re-initialises the
    model (``retrain``, EU-k): nn.Embedding's default N(0, 1) would wreck the dot products.
    """

    def __init__(self, rows: int, dim: int, std: float):
        self.std = std
        super().__init__(rows, dim)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0.0, self.std) if self.std > 0 else self.weight.zero_()


class MatrixFactorization(nn.Module):
    """rating(u, i) = mean + b_u + b_i + <p_u, q_i> (Koren, Bell, Volinsky 2009).

    Input: int64 (batch, 2) of (user index, item index). Output: predicted ratings (batch,).
    ``objective`` is the squared error, so the shared training loop and the gradient methods
    (fine-tune, NegGrad, NegGrad+) train and unlearn it unchanged.
    """

    task = "regression"

    def __init__(self, n_users: int, n_items: int, dim: int = 32, mean: float = 3.5):
        super().__init__()
        self.user = _Table(n_users, dim, std=0.05)
        self.item = _Table(n_items, dim, std=0.05)
        self.user_bias = _Table(n_users, 1, std=0.0)
        self.item_bias = _Table(n_items, 1, std=0.0)
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, i = x[:, 0], x[:, 1]
        dot = (self.user(u) * self.item(i)).sum(dim=1)
        return self.mean + self.user_bias(u).squeeze(1) + self.item_bias(i).squeeze(1) + dot

    @staticmethod
    def objective(predicted: torch.Tensor, ratings: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(predicted, ratings.to(predicted.dtype))


@MODELS.register("mf")
def mf(num_classes: int, input_shape: tuple[int, ...], *, n_users: int, n_items: int,
       mean: float = 3.5, dim: int = 32) -> nn.Module:
    return MatrixFactorization(n_users, n_items, dim=dim, mean=mean)
