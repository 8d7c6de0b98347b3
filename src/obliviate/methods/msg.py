"""MSG, Masked Small Gradients: DeepUnlearn's reading of the challenge's 2nd prize, which re-draws
in every convolution the weights with the smallest (retain - forget) gradient, then retrains
with the kept convolution weights learning 10x slower.

Source: Cadet et al. 2024, "Deep Unlearn" (github.com/xcadet/deepunlearn,
``munl/unlearning/kgltop2.py``, named "MSG" in ``munl/settings.py``), the method the paper finds,
with CT (:mod:`obliviate.methods.winner_conv_transpose`), the most consistent across datasets,
models and seeds. It reimplements the notebook of Lee, Bae and Kim's 2nd-prize entry, which
obliviate implements from the team's write-up as ``winner-grad-reinit``. The two differ in one
place, and MSG is registered on its own so that both readings can be ranked:

- Selection: DeepUnlearn picks the ``init_rate`` (30%) smallest |grad| **per convolution**
  (``nparams_toprune = round(px * mask.nelement())`` layer by layer); the write-up says
  "globally unstructured", which ``winner-grad-reinit`` follows. Per layer, every convolution
  loses the same share, the first (small) one included.

Everything else follows DeepUnlearn's code, which matches the write-up where it speaks:

- Gradients: cross-entropy ascent on the forget set plus descent on a random part of the retain
  set as large as the forget set, accumulated (:func:`winners_common.collect_gradients`: the
  first batches of the run's shuffled retain loader).
- Re-initialisation: He normal, fan-out, ReLU gain (``kaiming_normal_``); biases untouched.
  A model without convolutions has its hidden Linear layers stand in (as for the 2nd prize).
- Retraining: cross-entropy on the retain set, every kept convolution weight's gradient x0.1
  (DeepUnlearn's gradient mask is 1 on re-drawn weights and 0.1 on all others of the layer),
  SGD lr 0.001, momentum 0.9, weight decay 5e-4, 5 epochs, linear warm-up then decay per epoch
  over ``epochs + 1`` steps (:func:`winners_common.warmup_decay`).

References:
    Cadet et al., "Deep Unlearn: Benchmarking Machine Unlearning", arXiv 2410.01276 (2024);
    Lee, Bae, Kim, "3rd place solution" (2nd prize), NeurIPS 2023 Machine Unlearning Challenge,
    Kaggle discussion 459200 (2023); Triantafillou et al., arXiv 2406.09073 (2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.methods.winners_common import (
    collect_gradients,
    conv_layers,
    gradient_scaler,
    he_normal,
    warmup_decay,
)
from obliviate.train import cross_entropy_loss, make_optimizer, run_loop
from obliviate.unlearning import UnlearnData, register_method

PAPER = "Cadet et al. 2024, Deep Unlearn: MSG (the 2nd prize as reimplemented, kgltop2)"


@dataclass(frozen=True)
class MsgConfig:
    """Defaults: DeepUnlearn's (30% per layer, x0.1, 5 epochs, SGD 1e-3)."""

    init_rate: float = param(0.3, gt=0, le=1, help="fraction of each conv's weights re-drawn")
    kept_grad_scale: float = param(0.1, ge=0, le=1,
                                   help="gradient factor of the conv weights kept")
    epochs: int = param(5, ge=1, help="retraining epochs over the retain set")
    lr: float = param(0.001, gt=0, help="peak SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")


@torch.no_grad()
def redraw_smallest_per_layer(weight: torch.Tensor, rate: float,
                              generator: torch.Generator) -> torch.Tensor:
    """Re-draw (He normal) the ``rate`` of ``weight``'s entries with the smallest |grad|;
    returns the bool mask of the re-drawn entries."""
    scores = weight.grad.abs().flatten()
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    chosen[torch.topk(-scores, max(1, round(rate * scores.numel()))).indices] = True
    mask = chosen.view_as(weight)
    weight.copy_(torch.where(mask, he_normal(weight, generator), weight))
    return mask


@register_method("msg", family="saliency", needs_retain=True, paper=PAPER,
                 tasks=("classification",))
def msg(model: nn.Module, data: UnlearnData, cfg: MsgConfig) -> nn.Module:
    """Masked Small Gradients: per convolution, re-draw the weights with the smallest
    |grad(CE_retain) - grad(CE_forget)|, retrain with the kept ones 10x slower.

    References:
        Cadet et al., "Deep Unlearn", arXiv 2410.01276 (2024), MSG.
    """
    weights = [layer.weight for layer in conv_layers(model, "msg")]
    collect_gradients(model, data)
    factors = []
    for w in weights:
        mask = redraw_smallest_per_layer(w, cfg.init_rate, data.generator)
        factors.append(torch.where(mask, 1.0, cfg.kept_grad_scale).to(w.dtype))
    model.zero_grad(set_to_none=True)

    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_decay(cfg.epochs))
    return run_loop(model, lambda _: data.retain, cross_entropy_loss, optimizer, cfg.epochs,
                    scheduler=scheduler, owner="msg",
                    after_backward=gradient_scaler(weights, factors))
