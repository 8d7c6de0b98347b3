"""Pretraining on the bundled corpus and fine-tuning on QA pairs, through the one training loop."""

from __future__ import annotations

import math

import torch
from torch import nn

from obliviate.llm.data import TokenSet, loader
from obliviate.llm.losses import nll
from obliviate.llm.model import refuse_float16_training
from obliviate.train import run_loop


def train_lm(model: nn.Module, data: TokenSet, *, lr: float, batch_size: int, seed: int,
             epochs: int | None = None, steps: int | None = None, weight_decay: float = 0.01,
             owner: str = "train") -> nn.Module:
    """AdamW on the token-mean NLL of ``data`` for ``epochs`` passes or ``steps`` batches.

    The learning rate decays on a cosine over the whole run; the seed fixes the data order.
    """
    refuse_float16_training(model, "Training the scenario's models")
    batches = loader(data, batch_size=batch_size, seed=seed)
    per_epoch = len(batches)
    total = steps if steps is not None else per_epoch * (epochs or 1)
    n_epochs = -(-total // per_epoch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    step = 0

    def loss(m: nn.Module, batch) -> torch.Tensor:
        nonlocal step
        progress = min(step / max(total, 1), 1.0)
        for group in optimizer.param_groups:  # cosine decay per step, set before this step
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * progress))
        step += 1
        return nll(m, batch)

    def epoch_batches(epoch: int):
        for i, batch in enumerate(batches):
            if epoch * per_epoch + i < total:
                yield batch

    return run_loop(model, epoch_batches, loss, optimizer, n_epochs, owner=owner)
