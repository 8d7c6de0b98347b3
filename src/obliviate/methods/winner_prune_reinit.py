"""4th prize, NeurIPS 2023 unlearning challenge (Sebastian Oleszko): prune 99% of the weights
by magnitude, re-initialise them, fine-tune with an entropy-matching regulariser.

Source: the write-up "5th Place Solution" (5th on Kaggle's private leaderboard, fourth of the
seven prize winners), https://www.kaggle.com/competitions/neurips-2023-machine-unlearning/discussion/459148,
and its notebook https://www.kaggle.com/code/sebastianoleszko/prune-re-init-entropy-regularized-fine-tuning
as reimplemented by DeepUnlearn (Cadet et al. 2024, ``munl/unlearning/kgltop4.py``).

Item by item:

- Pruning: global unstructured L1 pruning of 99% of the parameters of every convolution and
  Linear layer, weights and biases together (the write-up: "pruned (99% of the parameters)
  based on an unstructured L1-norm criteria"; biases included as in the notebook). Batch-norm
  parameters are not pruned.
- Re-initialisation: every pruned weight gets a fresh value from U(-1/sqrt(fan_in),
  1/sqrt(fan_in)); pruned biases stay at zero: the notebook's rule; the write-up says only
  "re-initialized to random weights".
- Fine-tuning loss: cross-entropy on the retain set with class weights count^-0.1 plus the MSE
  between the entropy of the model's prediction and that of the original model's on the same
  batch: the write-up's two terms, its "w^(0.1)" class weights, and the notebook's exact form.
- 3.2 epochs (counted in steps, the last epoch partial), SGD lr 5e-4, momentum 0.9, weight
  decay 5e-4, no schedule: the notebook's values via DeepUnlearn; the write-up says only that
  lr and epochs were tuned on the public leaderboard.
- The result is rounded to half precision and back ("PRMQ: Prune, Retrain, Mask, Quantize" in
  the notebook); the write-up does not mention it.

References:
    Oleszko, "5th Place Solution" (4th prize), NeurIPS 2023 Machine Unlearning Challenge, Kaggle
    discussion 459148 (2023); Triantafillou et al., arXiv 2406.09073 (2024); Jia et al., "Model
    Sparsity Can Simplify Machine Unlearning", NeurIPS 2023 (the write-up's inspiration).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.batches import forward
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.winners_common import default_uniform, entropy, weight_layers
from obliviate.train import make_optimizer, model_device, run_loop, to_device
from obliviate.unlearning import UnlearnData, register_method

PAPER = "Oleszko, NeurIPS 2023 unlearning challenge 4th prize (Kaggle discussion 459148)"


@dataclass(frozen=True)
class WinnerPruneReinitConfig:
    """Defaults: the notebook's values (99%, 3.2 epochs, lr 5e-4; see the module docstring)."""

    prune: float = param(0.99, gt=0, lt=1, help="fraction of weights pruned and re-initialised")
    epochs: float = param(3.2, gt=0, help="epochs of fine-tuning (fractions count in steps)")
    lr: float = param(5e-4, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")
    class_weight_power: float = param(-0.1, le=0, help="class weight = count ** this")
    quantize: bool = param(True, help="round the result to half precision and back")


@torch.no_grad()
def prune_and_reinit(layers: list[nn.Module], fraction: float, generator: torch.Generator) -> None:
    """Zero the ``fraction`` of smallest-magnitude weights and biases over all ``layers``
    together, then re-draw the zeroed weights (not biases) from the default uniform init."""
    tensors = [t for layer in layers for t in (layer.weight, layer.bias) if t is not None]
    magnitudes = torch.cat([t.abs().flatten() for t in tensors])
    k = int(round(fraction * magnitudes.numel()))
    if k == 0:
        return
    pruned = torch.zeros_like(magnitudes, dtype=torch.bool)
    pruned[torch.topk(magnitudes, k, largest=False).indices] = True
    start = 0
    for t in tensors:
        mask = pruned[start:start + t.numel()].view_as(t)
        start += t.numel()
        t.masked_fill_(mask, 0.0)
    for layer in layers:
        w = layer.weight
        w.copy_(torch.where(w == 0, default_uniform(w, generator), w))


def class_weights(retain, num_classes: int, power: float) -> torch.Tensor:
    """count_c ** power for each class of the retain set (classes absent get weight 0)."""
    counts = torch.zeros(num_classes)
    for batch in retain:
        _, y = to_device(batch, torch.device("cpu"))
        counts += torch.bincount(y.flatten(), minlength=num_classes)[:num_classes].float()
    return torch.where(counts > 0, counts.clamp(min=1) ** power, torch.zeros_like(counts))


@register_method("winner-prune-reinit", family="distillation", needs_retain=True, paper=PAPER,
                 tasks=("classification",))
def winner_prune_reinit(model: nn.Module, data: UnlearnData,
                        cfg: WinnerPruneReinitConfig) -> nn.Module:
    """Prune 99% of weights by magnitude and re-draw them, then fine-tune on retain with
    weighted cross-entropy plus the MSE between the model's and the original's entropies.

    References:
        Oleszko, "5th Place Solution" (4th prize), NeurIPS 2023 Machine Unlearning Challenge,
        https://www.kaggle.com/competitions/neurips-2023-machine-unlearning/discussion/459148;
        Triantafillou et al., arXiv 2406.09073 (2024).
    """
    layers = weight_layers(model)
    if not layers:
        raise ConfigError("winner-prune-reinit prunes convolution and Linear weights; this model "
                          "has none. Use a method that works on any layer (e.g. finetune).")
    device = model_device(model)
    original = copy.deepcopy(model).eval().requires_grad_(False)
    weights = class_weights(data.retain, data.num_classes, cfg.class_weight_power).to(device)
    prune_and_reinit(layers, cfg.prune, data.generator)

    def loss(m: nn.Module, batch) -> torch.Tensor:
        x, y = to_device(batch, device)
        out = forward(m, x)
        with torch.no_grad():
            target = entropy(forward(original, x))
        return (F.cross_entropy(out, y, weight=weights.to(out.dtype))
                + F.mse_loss(entropy(out), target))

    steps = math.floor(len(data.retain) * cfg.epochs) + 1  # the notebook stops past max_iters
    per_epoch = len(data.retain)
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)

    def batches(epoch: int):
        return itertools.islice(data.retain, steps - epoch * per_epoch)

    run_loop(model, batches, loss, optimizer, math.ceil(steps / per_epoch),
             owner="winner-prune-reinit")
    if cfg.quantize:
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(t.half().to(t.dtype))
    return model
