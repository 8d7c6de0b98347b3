"""RMU: representation misdirection at one layer (Li et al. 2024, WMDP)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.llm.losses import rmu as rmu_loss
from obliviate.llm.model import decoder_layers, mlp_out_projection
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method


@dataclass(frozen=True)
class RMUConfig:
    """Defaults: the WMDP ``rmu/unlearn.py`` (zephyr-7b: layer 7, update layers 5-7, c 20,
    alpha 100, AdamW lr 5e-5, batch 4, 80 batches)."""

    layer: int = param(7, ge=0, help="block whose output is steered")
    update_layers: tuple[int, ...] = param((5, 6, 7), help="blocks whose MLP output weights train")
    steering_coeff: float = param(20.0, gt=0, help="c: norm of the random control vector")
    alpha: float = param(100.0, ge=0, help="weight of keeping retain activations")
    lr: float = param(5e-5, gt=0, help="AdamW learning rate")
    steps: int = param(80, ge=1, help="forget batches in all")
    batch_size: int = param(4, ge=1, help="forget (and retain) pairs per step")


def check_layers(model: nn.Module, cfg: RMUConfig) -> None:
    """Refuse layers the model does not have (the bench runs this before any training)."""
    n_blocks = len(decoder_layers(model))
    bad = [i for i in (cfg.layer, *cfg.update_layers) if i >= n_blocks]
    if bad:
        raise ConfigError(f"The 'layer'/'update_layers' parameters of rmu must be below the "
                          f"model's {n_blocks} blocks. Got {bad[0]} instead.")


@register_lm_method("rmu", family="editing", needs_retain=True, check=check_layers,
                    reference="hidden",
                    paper="Li et al. 2024, The WMDP Benchmark (RMU)")
def rmu(model: nn.Module, data: LMUnlearnData, cfg: RMUConfig) -> nn.Module:
    """Push forget activations at ``layer`` towards c * u (u a random unit vector) while holding
    retain activations at the original model's, training only chosen MLP output weights.

    With a LoRA adapter (``lora_rank`` > 0) only the adapters on those MLP output weights
    train.

    References:
        Li et al., "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning",
        ICML 2024.
    """
    blocks = decoder_layers(model)
    check_layers(model, cfg)
    lora = hasattr(model, "peft_config")  # then only the adapters on those projections train
    trainable = {id(p) for i in cfg.update_layers
                 for n, p in mlp_out_projection(blocks[i]).named_parameters()
                 if not lora or "lora_" in n}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    width = model.config.hidden_size
    u = torch.rand(width, generator=data.generator)
    control = (cfg.steering_coeff * u / u.norm()).to(next(model.parameters()).device)
    pairs = data.pairs(cfg.batch_size)
    per_epoch = -(-len(data.forget) // cfg.batch_size)
    epochs = -(-cfg.steps // per_epoch)

    def batches(epoch: int):
        for i, pair in enumerate(pairs(epoch)):
            if epoch * per_epoch + i < cfg.steps:
                yield pair

    optimizer = adamw(model, cfg.lr, 0.0)
    data.loop(model, batches,
              lambda m, pair: rmu_loss(m, data.reference, pair[0], pair[1], cfg.layer, control,
                                       cfg.alpha),
              optimizer, epochs, owner="rmu")
    for p in model.parameters():
        p.requires_grad_(True)
    return model
