"""Pieces that the NeurIPS 2023 unlearning-challenge entries share: plain functions.

Which layers an entry perturbs (the convolutions, or the hidden layers of a model without any),
He initialisation and Gaussian noise drawn from the run's generator, losses on logits that
several entries use, loaders re-batched from the run's generator, and the 2nd prize's gradient
collection and lr shape (which its write-up and DeepUnlearn's MSG reading share). No method logic lives
here; each entry's file composes these in its own order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from obliviate.batches import batch_size_of, forward
from obliviate.errors import ConfigError
from obliviate.train import model_device, to_device


def conv_layers(model: nn.Module, owner: str) -> list[nn.Module]:
    """The model's convolutions; for a model without any, its Linear layers but the last.

    The entries were written for ResNet-18, whose weights are almost all convolutions and whose
    one Linear layer is the classifier: "the convolutional layers" there are the trunk that
    computes features. On an MLP the hidden Linear layers play that part.
    """
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if convs:
        return convs
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(linears) >= 2:
        return linears[:-1]
    raise ConfigError(f"{owner} perturbs convolutions or hidden Linear layers; this model has "
                      f"neither. Use a method that works on any layer (e.g. finetune).")


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Every convolution and Linear layer, in registration order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd | nn.Linear)]


def fan_out(weight: torch.Tensor) -> int:
    """Output units times kernel size, as ``torch.nn.init`` computes it."""
    return weight.shape[0] * (math.prod(weight.shape[2:]) if weight.dim() > 2 else 1)


def fan_in(weight: torch.Tensor) -> int:
    return weight.shape[1] * (math.prod(weight.shape[2:]) if weight.dim() > 2 else 1)


def he_normal(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` values (torchvision's ResNet
    initialisation) for a tensor shaped like ``weight``, drawn from ``generator``."""
    std = math.sqrt(2.0 / fan_out(weight))
    return std * torch.randn(weight.shape, generator=generator).to(weight.device, weight.dtype)


def default_uniform(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) values shaped like ``weight``, from ``generator``."""
    bound = 1.0 / math.sqrt(fan_in(weight))
    u = torch.rand(weight.shape, generator=generator).to(weight.device, weight.dtype)
    return (2 * u - 1) * bound


def gaussian_like(t: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Zero-mean Gaussian noise of ``std`` shaped like ``t``, from ``generator``."""
    return std * torch.randn(t.shape, generator=generator).to(t.device, t.dtype)


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform || softmax(logits)), averaged over the batch."""
    uniform = torch.full_like(logits, 1.0 / logits.shape[1])
    return F.kl_div(F.log_softmax(logits, dim=1), uniform, reduction="batchmean")


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of softmax(logits), one value per row."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def rebatched(loader, batch_size: int, generator: torch.Generator):
    """A shuffling loader over ``loader``'s dataset with ``batch_size``, its order from
    ``generator``; a loader without a dataset (a plain iterable) is returned as it is."""
    if not isinstance(loader, DataLoader) or loader.batch_size == batch_size:
        return loader
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return DataLoader(loader.dataset, batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed),
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers)


def warmup_decay(epochs: int):
    """The notebook's per-epoch factor: up linearly for (epochs+1)//2 steps, then down."""
    peak, total = (epochs + 1) // 2, epochs + 1

    def factor(epoch: int) -> float:
        k = epoch + 1
        return k / peak if k <= peak else (total - k) / (total - peak)

    return factor


def collect_gradients(model: nn.Module, data) -> None:
    """Accumulate grad(CE on a retain part as large as the forget set) - grad(CE on forget)."""
    device = model_device(model)
    model.zero_grad(set_to_none=True)
    n_forget = 0
    for batch in data.forget:
        x, y = to_device(batch, device)
        (-F.cross_entropy(forward(model, x), y)).backward()
        n_forget += batch_size_of(x)
    seen = 0
    for batch in data.retain:
        if seen >= n_forget:
            break
        x, y = to_device(batch, device)
        F.cross_entropy(forward(model, x), y).backward()
        seen += batch_size_of(x)


def gradient_scaler(weights: list[torch.Tensor], factors: list[torch.Tensor]):
    """An ``after_backward`` hook (:func:`obliviate.train.run_loop`) that multiplies each
    weight's gradient by its factor tensor."""
    def scale(model: nn.Module) -> None:
        for w, f in zip(weights, factors, strict=True):
            if w.grad is not None:
                w.grad.mul_(f)

    return scale
