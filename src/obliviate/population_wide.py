"""A fast population forward for models that are a plain chain of common layers.

``vmap`` over a small CNN turns each convolution into a grouped convolution, but leaves the
activations in a layout where CPU max-pooling and the ReLU backward are slow: on the digits CNN
(16 models, batch 64, one thread) a vmapped step costs about as much as the 16 models one after
another. Here the population is written out as one wide network instead: the M models' channels
side by side in a channels-last ``(batch, M * channels, H, W)`` tensor for the convolutional part
(grouped convolutions with ``groups=M``), and ``(M, batch, features)`` with batched matrix
products for the dense part. ReLU is applied after a max-pool that follows it (the two commute,
max being monotone), on a quarter of the values. The gradient of the summed per-model losses
with respect to the stacked weights is each model's own gradient, so no ``vmap`` is needed.

It applies when the model's leaf modules, in registration order, are its forward pass and are
all Conv2d (ungrouped, zero padding), ReLU, MaxPool2d, Flatten or Linear, with no buffers and
at least one convolution (dense-only models gain nothing over ``vmap``).
:func:`wide_loss` checks the wide forward against ``functional_call`` on the actual weights
before it is used and returns None otherwise; population training then falls back to ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

Tensors = dict[str, torch.Tensor]
SUPPORTED = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)


def chain_of_layers(skeleton: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The leaf layers in the order the wide forward applies them, or None if unsupported."""
    if list(skeleton.buffers()):
        return None
    layers = [(n, m) for n, m in skeleton.named_modules() if not list(m.children())]
    for _, m in layers:
        if not isinstance(m, SUPPORTED):
            return None
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros"):
            return None
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return None
    if not any(isinstance(m, nn.Conv2d) for _, m in layers):
        return None  # dense-only chains: vmap's batched matmuls were as fast (MLP: 4.0x vs 3.8x)
    for i in range(len(layers) - 1):  # max-pool first, then ReLU: same values, less work
        if isinstance(layers[i][1], nn.ReLU) and isinstance(layers[i + 1][1], nn.MaxPool2d):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    return layers


def wide_forward(layers: list[tuple[str, nn.Module]], params: Tensors,
                 x: torch.Tensor) -> torch.Tensor:
    """Logits (M, batch, classes) of M stacked models, model i on its own batch ``x[i]``."""
    m, batch = x.shape[:2]
    h, image = x, False  # image: h is (batch, M * C, H, W); otherwise (M, batch, ...)
    for name, layer in layers:
        if isinstance(layer, nn.Conv2d):
            if not image:
                h = h.transpose(0, 1).reshape(batch, -1, *h.shape[3:])
                h, image = h.contiguous(memory_format=torch.channels_last), True
            w, b = params[f"{name}.weight"], params.get(f"{name}.bias")
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                         layer.stride, layer.padding, layer.dilation, groups=m)
        elif isinstance(layer, nn.MaxPool2d):
            h = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                             layer.ceil_mode)
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        elif isinstance(layer, nn.Flatten):
            h = h.reshape(batch, m, -1).transpose(0, 1) if image else h.reshape(m, batch, -1)
            image = False
        else:  # Linear
            if image:
                raise ValueError("a Linear layer on image activations needs a Flatten before it")
            w, b = params[f"{name}.weight"], params.get(f"{name}.bias")
            h = h @ w.transpose(1, 2) if b is None else torch.baddbmm(
                b.unsqueeze(1), h, w.transpose(1, 2))
    return h


def wide_loss(skeleton: nn.Module, params: Tensors, x_probe: torch.Tensor
              ) -> Callable[..., torch.Tensor] | None:
    """The summed masked cross-entropy of the population, or None where the wide form is wrong.

    ``x_probe`` (a few training inputs) checks the wide logits against each model's own forward.
    """
    layers = chain_of_layers(skeleton)
    if layers is None:
        return None
    m = len(next(iter(params.values())))
    probe = x_probe.unsqueeze(0).expand(m, *x_probe.shape)
    try:
        with torch.no_grad():
            wide = wide_forward(layers, params, probe)
            first = {k: v[0] for k, v in params.items()}
            own = functional_call(skeleton, first, (x_probe,))
    except (RuntimeError, ValueError):
        return None
    if wide.shape[1:] != own.shape or not torch.allclose(wide[0], own, atol=1e-4, rtol=1e-4):
        return None

    def loss(params: Tensors, xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor):
        logits = wide_forward(layers, params, xb)
        per_example = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
        per_example = per_example.view_as(wb) * wb
        return (per_example.sum(1) / wb.sum(1).clamp(min=1)).sum()

    return loss


# rows x models per forward chunk: the first activation of the digits CNN is then ~67 MB
_PREDICT_CELLS = 8192


@torch.no_grad()
def wide_predict(skeleton: nn.Module, params: Tensors, x: torch.Tensor,
                 batch_size: int = 1024) -> torch.Tensor | None:
    """Logits (M, n, classes) of the M stacked models on every row of ``x``, in one wide
    forward per chunk of rows; None where the wide form does not apply or disagrees with the
    first model's own forward (the caller then uses ``vmap``).

    The same layers as training's wide loss (``chain_of_layers``), with every model reading the
    same rows; about 3x less CPU than ``vmap`` on the digits CNN (32 models, 1,617 rows, one
    thread), equal to the models' own outputs to float tolerance (the sums run in another order).
    """
    layers = chain_of_layers(skeleton)
    if layers is None or not params or len(x) == 0:
        return None
    m = len(next(iter(params.values())))
    rows = max(1, min(batch_size, _PREDICT_CELLS // m))
    try:
        out = torch.cat([wide_forward(layers, params, c.unsqueeze(0).expand(m, *c.shape))
                         for c in x.split(rows)], dim=1)
        probe = x[:8]
        own = functional_call(skeleton, {k: v[0] for k, v in params.items()}, (probe,))
    except (RuntimeError, ValueError):
        return None
    if out.shape[1:] != (len(x), *own.shape[1:]) or \
            not torch.allclose(out[0, :len(probe)], own, atol=1e-4, rtol=1e-4):
        return None
    return out
