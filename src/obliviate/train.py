"""The reference training loop, shared by original, retrained and unlearning runs.

One loop (:func:`run_loop`) takes a batch source and a loss function; everything that varies
between methods is in those two callables. :func:`train_model` is the deterministic recipe used
for the original and the retrained models, so the two differ only in their data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from obliviate.batches import forward, inputs_to, split_batch
from obliviate.config import param
from obliviate.errors import ConfigError, TrainingDivergedError
from obliviate.models import build_model

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


@dataclass(frozen=True)
class Recipe:
    """How a scenario's models are trained from scratch (original and retrained alike)."""

    optimizer: str = param("sgd", choices=("sgd", "adam"), help="optimizer")
    lr: float = param(0.05, gt=0, help="learning rate")
    epochs: int = param(30, ge=1, help="training epochs")
    batch_size: int = param(64, ge=1, help="minibatch size")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")
    schedule: str = param("cosine", choices=("cosine", "constant"), help="lr schedule per epoch")


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam over ``params``."""
    params = [p for p in params if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, epochs: int):
    """Cosine annealing over ``epochs`` (stepped once per epoch), or None for a constant lr."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def tensor_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
) -> DataLoader:
    """A DataLoader over in-memory tensors; shuffling is driven by its own seeded generator."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator
    )


def check_finite(loss: torch.Tensor, owner: str, epoch: int, step: int) -> None:
    """Stop with a clear error when a loss is NaN or infinite, before it reaches the weights."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{owner}: the loss became {value} at epoch {epoch + 1}, step {step + 1}; "
            f"no model was written. Lower its learning rate or number of epochs."
        )


def check_finite_weights(model: nn.Module, owner: str) -> None:
    """Refuse a model whose weights hold NaN or infinite values."""
    for name, p in model.state_dict().items():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise TrainingDivergedError(
                f"{owner}: weight '{name}' holds NaN or infinite values; no model was written. "
                f"Lower its learning rate or number of epochs."
            )


def run_loop(
    model: nn.Module,
    batches: Callable[[int], Iterable[Batch]],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    scheduler: Any = None,
    owner: str = "train",
    after_backward: Callable[[nn.Module], None] | None = None,
    amp: bool = False,
) -> nn.Module:
    """Run ``epochs`` epochs of ``loss_fn`` over ``batches(epoch)``; the one loop everyone uses.

    ``after_backward`` can edit gradients before the step (e.g. a saliency mask). ``amp`` runs
    the forward and loss under ``torch.autocast`` in bfloat16 on the model's device (bfloat16
    keeps float32's range, so no gradient scaler is needed; the weights stay float32).
    """
    model.train()
    step = 0
    device_type = model_device(model).type
    for epoch in range(epochs):
        for batch in batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type, dtype=torch.bfloat16) if amp else nullcontext():
                loss = loss_fn(model, batch)
            check_finite(loss, owner, epoch, step)
            loss.backward()
            if after_backward is not None:
                after_backward(model)
            optimizer.step()
            step += 1
        if scheduler is not None:
            scheduler.step()
    model.eval()
    check_finite_weights(model, owner)
    return model


def model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None): the GPU when there is one, else the CPU; otherwise as given.

    Raises:
        ConfigError: an unknown device, or CUDA asked for where there is none.
    """
    if isinstance(device, torch.device):
        return device
    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"Unknown device '{device}'; use auto, cpu or cuda (cuda:N for a "
                          f"given GPU).") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device '{device}' was asked for but CUDA is not available here; use "
                          f"--device cpu, or auto to take a GPU only when there is one.")
    return resolved


def to_device(batch: Batch, device: torch.device) -> tuple[Any, torch.Tensor]:
    """The (inputs, labels) of a batch, on ``device``; extra fields (indices, groups) are dropped.

    Inputs are a tensor, or a mapping of the model's keyword arguments (see :mod:`batches`).
    """
    x, y = split_batch(batch)
    return inputs_to(x, device), y.to(device)


def cross_entropy_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The training loss of a batch: cross-entropy, or the model's own ``objective``.

    Models of other tasks (rating regression, anomaly scoring) declare
    ``objective(outputs, targets)``; every method built on this loss then works on them too.
    """
    x, y = to_device(batch, model_device(model))
    objective = getattr(model, "objective", None)
    if objective is not None:
        return objective(forward(model, x), y)
    return nn.functional.cross_entropy(forward(model, x), y)


def fit(
    model: nn.Module,
    loader_for_epoch: Callable[[int], Iterable[Batch]],
    recipe: Recipe,
    *,
    owner: str = "train",
    amp: bool = False,
) -> nn.Module:
    """Train ``model`` in place with cross-entropy under ``recipe`` (``amp``: see run_loop)."""
    optimizer = make_optimizer(
        model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay
    )
    scheduler = make_scheduler(optimizer, recipe.schedule, recipe.epochs)
    return run_loop(
        model, loader_for_epoch, cross_entropy_loss, optimizer, recipe.epochs,
        scheduler=scheduler, owner=owner, amp=amp,
    )


def train_model(
    model_name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: Recipe,
    seed: int,
    *,
    owner: str = "train",
    device: str | torch.device = "cpu",
    model_options: dict[str, Any] | None = None,
    amp: bool = False,
) -> tuple[nn.Module, float]:
    """Train a fresh ``model_name`` on (x, y) from ``seed``; returns (model, wall seconds).

    The seed fixes the initial weights, the data order and the dropout masks (drawn from the
    global RNG, seeded here), and the global RNG is left as it was, so the same call gives
    bit-identical weights on CPU. ``device`` may be ``"auto"``; ``amp``: see :func:`run_loop`.
    """
    start = time.perf_counter()
    device = resolve_device(device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_model(model_name, input_shape, num_classes, seed=seed,
                            **(model_options or {})).to(device)
        loader = tensor_loader(x, y, recipe.batch_size, shuffle=True, seed=seed)
        fit(model, lambda epoch: loader, recipe, owner=owner, amp=amp)
    return model, time.perf_counter() - start
