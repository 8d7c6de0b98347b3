"""2nd prize, NeurIPS 2023 unlearning challenge (Kookmin University): re-initialise the
convolution weights whose retain and forget gradients cancel, then retrain the rest slowly.

Source: the team's write-up (Doun Lee, Jinwoo Bae, Jangho Kim), "3rd place solution" on Kaggle's
private leaderboard, second of the seven prize winners,
https://www.kaggle.com/competitions/neurips-2023-machine-unlearning/discussion/459200, and its
notebook https://www.kaggle.com/code/nuod8260/targeted-re-initialization-3rd-on-private-lb as
reimplemented by DeepUnlearn (Cadet et al. 2024, ``munl/unlearning/kgltop2.py``).

Item by item:

- Gradient collection: cross-entropy ascent on the forget set plus cross-entropy descent on a
  random part of the retain set as large as the forget set, accumulated into one gradient: as
  the write-up (the random part is what makes each run re-initialise differently, which the
  write-up found better than the whole retain set). The retain part here is the first batches
  of the run's shuffled retain loader, so it works on any loader.
- Selection: the ``init_rate`` (30%) of convolution weights with the smallest absolute
  gradient, chosen globally over all convolutions ("globally unstructured", as the write-up
  says; DeepUnlearn's reimplementation picks 30% per layer instead). Biases are never selected.
- Re-initialisation: He normal, fan-out, ReLU gain (torchvision's ResNet initialisation), as
  the write-up. For a model without convolutions the hidden Linear layers stand in for them
  (see :func:`winners_common.conv_layers`).
- Retraining: cross-entropy on the retain set, the kept (not re-initialised) selected weights'
  gradients scaled by 0.1, every other parameter at full rate: as the write-up. SGD lr 0.001,
  momentum 0.9, weight decay 5e-4, 5 epochs: the notebook's values via DeepUnlearn; the
  write-up gives none of them.
- Schedule: linear warm-up then linear decay, per epoch: the write-up's choice; the shape
  (over ``epochs + 1`` steps, peak after ``(epochs + 1) // 2``, i.e. lr x 1/3, 2/3, 1, 2/3,
  1/3 for 5 epochs) is the notebook's via DeepUnlearn.

References:
    Lee, Bae, Kim, "3rd place solution" (2nd prize), NeurIPS 2023 Machine Unlearning Challenge,
    Kaggle discussion 459200 (2023); Triantafillou et al., arXiv 2406.09073 (2024); Cadet et
    al., "Deep Unlearn: Benchmarking Machine Unlearning", arXiv 2410.01276 (2024).
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

PAPER = "Lee, Bae, Kim (Kookmin Univ.), NeurIPS 2023 unlearning challenge 2nd prize (459200)"


@dataclass(frozen=True)
class WinnerGradReinitConfig:
    """Defaults: the write-up (30%, He fan-out, x0.1) and its notebook (see the module doc)."""

    init_rate: float = param(0.3, gt=0, le=1, help="fraction of conv weights re-initialised")
    kept_grad_scale: float = param(0.1, ge=0, le=1,
                                   help="gradient factor of the conv weights kept")
    epochs: int = param(5, ge=1, help="retraining epochs over the retain set")
    lr: float = param(0.001, gt=0, help="peak SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")


@torch.no_grad()
def reinit_smallest_gradients(weights: list[torch.Tensor], rate: float,
                              generator: torch.Generator) -> list[torch.Tensor]:
    """Re-draw the ``rate`` of entries with the smallest |grad| over all ``weights`` (He
    normal); returns one bool mask per tensor, True where an entry was re-drawn."""
    scores = torch.cat([w.grad.abs().flatten() for w in weights])
    k = max(1, round(rate * scores.numel()))
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    chosen[torch.topk(-scores, k).indices] = True
    masks, start = [], 0
    for w in weights:
        mask = chosen[start:start + w.numel()].view_as(w)
        w.copy_(torch.where(mask, he_normal(w, generator), w))
        masks.append(mask)
        start += w.numel()
    return masks


@register_method("winner-grad-reinit", family="saliency", needs_retain=True, paper=PAPER,
                 tasks=("classification",))
def winner_grad_reinit(model: nn.Module, data: UnlearnData,
                       cfg: WinnerGradReinitConfig) -> nn.Module:
    """Re-initialise the conv weights least moved by (retain - forget) gradients, retrain.

    The 30% of convolution weights with the smallest |grad(CE_retain) - grad(CE_forget)| (a
    random retain part as large as the forget set) get He-normal values; the model is then
    trained on the retain set with the kept conv weights learning 10x slower.

    References:
        Lee, Bae, Kim, "3rd place solution" (2nd prize), NeurIPS 2023 Machine Unlearning
        Challenge, https://www.kaggle.com/competitions/neurips-2023-machine-unlearning/discussion/459200;
        Triantafillou et al., arXiv 2406.09073 (2024).
    """
    weights = [layer.weight for layer in conv_layers(model, "winner-grad-reinit")]
    collect_gradients(model, data)
    masks = reinit_smallest_gradients(weights, cfg.init_rate, data.generator)
    model.zero_grad(set_to_none=True)
    factors = [torch.where(m, 1.0, cfg.kept_grad_scale).to(w.dtype) for w, m in
               zip(weights, masks, strict=True)]

    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_decay(cfg.epochs))
    return run_loop(model, lambda _: data.retain, cross_entropy_loss, optimizer, cfg.epochs,
                    scheduler=scheduler, owner="winner-grad-reinit",
                    after_backward=gradient_scaler(weights, factors))
