"""LoRA unlearning: train only a low-rank adapter to forget, then merge it into the weights.

Every targeted Linear/Conv2d layer gets a rank-r adapter (``peft``; grouped and depthwise
convolutions, which peft cannot adapt, are left as they are, with a note); the original weights are
frozen and the adapter is trained with NegGrad+ or with KL-to-the-original on retain plus ascent
on forget. Merging gives a plain model of the input's class, whose weight change in each adapted
layer has rank at most r; biases and every non-adapted parameter stay exactly as they were.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass

import torch
from torch import nn

from obliviate.batches import forward
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import cycle
from obliviate.methods.losses import distill_kl, teacher_logits
from obliviate.train import (
    cross_entropy_loss,
    make_optimizer,
    model_device,
    run_loop,
    to_device,
)
from obliviate.unlearning import UnlearnData, register_method

logger = logging.getLogger("obliviate.methods")


@dataclass(frozen=True)
class LoraUnlearnConfig:
    """Defaults: rank 8, alpha 16, no dropout (common LoRA settings; TOFU's forget config uses
    alpha 32, dropout 0.05); the retain/forget weighting alpha 0.95 is NegGrad+'s (SCRUB
    small-scale notebook). The "kl" objective, 5 epochs and Adam lr 1e-3 are ours, not from a
    paper's code: on digits, "neggrad+" through the adapter barely moved forget accuracy, because
    retain cross-entropy on a saturated model keeps sharpening the logits against the ascent."""

    rank: int = param(8, ge=1, help="LoRA rank r")
    lora_alpha: float = param(16.0, gt=0, help="LoRA scaling numerator (scale = lora_alpha / r)")
    target_modules: tuple[str, ...] = param((), help="module names to adapt (empty: every "
                                                     "nn.Linear and nn.Conv2d)")
    objective: str = param("kl", choices=("neggrad+", "kl"),
                           help="adapter loss: NegGrad+ or KL on retain + ascent on forget")
    alpha: float = param(0.95, gt=0, lt=1, help="weight of the retain term; 1-alpha on forget")
    temperature: float = param(1.0, gt=0, help="softmax temperature of the KL objective")
    epochs: int = param(5, ge=1, help="epochs over the retain set")
    lr: float = param(1e-3, gt=0, help="Adam learning rate of the adapter")


def neggrad_plus_loss(model: nn.Module, retain_batch, forget_batch, alpha: float) -> torch.Tensor:
    """alpha * CE(retain) - (1 - alpha) * CE(forget)."""
    return (alpha * cross_entropy_loss(model, retain_batch)
            - (1 - alpha) * cross_entropy_loss(model, forget_batch))


def kl_ascent_loss(model: nn.Module, teacher: nn.Module, retain_batch, forget_batch,
                   alpha: float, temperature: float) -> torch.Tensor:
    """alpha * KL(original || model) on retain - (1 - alpha) * CE(forget)."""
    x, _ = to_device(retain_batch, model_device(model))
    kl = distill_kl(forward(model, x), teacher_logits(teacher, x), temperature)
    return alpha * kl - (1 - alpha) * cross_entropy_loss(model, forget_batch)


def grouped(module: nn.Module) -> bool:
    """A grouped or depthwise convolution (``groups > 1``), which peft's LoRA cannot adapt."""
    return isinstance(module, nn.Conv2d) and module.groups > 1


def adapter_targets(model: nn.Module, names: tuple[str, ...], *, announce: bool = False
                    ) -> list[str]:
    """The named Linear/Conv2d modules, or all of them (in registration order) when none given.

    Grouped and depthwise convolutions (MobileNet, EfficientNet, ConvNeXt, RegNet blocks) are
    left out of the default set, with a note at WARNING when ``announce``; naming one is a
    ConfigError, before any work.
    """
    layers = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)}
    adaptable = {n: m for n, m in layers.items() if not grouped(m)}
    skipped = [n for n, m in layers.items() if grouped(m)]
    if not names:
        if not adaptable:
            raise ConfigError("lora-unlearn found no nn.Linear or ungrouped nn.Conv2d layer in "
                              "the model; LoRA needs one to adapt (peft cannot adapt grouped "
                              "or depthwise convolutions).")
        if skipped and announce:
            logger.warning("lora-unlearn: %d grouped/depthwise convolution(s) left without an "
                           "adapter (peft cannot adapt groups > 1), e.g. '%s'; their weights stay "
                           "as they are", len(skipped), skipped[0])
        return list(adaptable)
    bad = [n for n in names if n in skipped]
    if bad:
        raise ConfigError(f"lora-unlearn cannot adapt grouped or depthwise convolutions "
                          f"(groups > 1): {bad}. Leave them out of target_modules.")
    bad = [n for n in names if n not in adaptable]
    if bad:
        raise ConfigError(f"lora-unlearn can adapt only nn.Linear/nn.Conv2d modules; {bad} are "
                          f"not among them. Choose from: {', '.join(adaptable)}.")
    return list(names)


LAYER_ATTRIBUTES = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size",
                    "stride", "padding", "dilation", "groups", "padding_mode")


def expose_layer_attributes(adapted: nn.Module) -> None:
    """Give each peft wrapper its base layer's shape attributes: a model that reads them in its
    forward (Hugging Face MobileNet's TF padding reads ``conv.stride``) would fail otherwise."""
    for module in adapted.modules():
        base = getattr(module, "base_layer", None)
        if isinstance(base, nn.Linear | nn.Conv2d) and module is not base:
            for name in LAYER_ATTRIBUTES:
                if hasattr(base, name) and name not in module.__dict__:
                    try:
                        getattr(module, name)
                    except AttributeError:
                        object.__setattr__(module, name, getattr(base, name))


@register_method("lora-unlearn", family="lora", needs_retain=True,
                 paper="Hu et al. 2022, LoRA; objectives from Kurmanji et al. 2023",
                 tasks=("classification",),
                 check=lambda model, cfg: adapter_targets(model, cfg.target_modules))
def lora_unlearn(model: nn.Module, data: UnlearnData, cfg: LoraUnlearnConfig) -> nn.Module:
    """Train a rank-r adapter on a forgetting objective, then merge it into the weights.

    Each retain batch is paired with the next forget batch (the forget loader is cycled), as in
    NegGrad+. With ``objective="kl"`` the retain term is the KL divergence to the original
    model instead of cross-entropy. Needs ``peft`` (``pip install 'obliviate[lora]'``).

    References:
        Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022; Kurmanji,
        Triantafillou, Hayes, Triantafillou, "Towards Unbounded Machine Unlearning", NeurIPS
        2023 (NegGrad+); Maini et al., "TOFU", 2024 (unlearning through LoRA adapters).
    """
    try:
        import peft
    except ImportError:
        raise ConfigError("lora-unlearn needs peft: pip install 'obliviate[lora]'") from None
    targets = adapter_targets(model, cfg.target_modules, announce=True)
    trainable = {n: p.requires_grad for n, p in model.named_parameters()}
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    lora = peft.LoraConfig(
        r=cfg.rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, bias="none",
        target_modules="^(?:" + "|".join(re.escape(n) for n in targets) + ")$",  # exact names
    )
    with torch.random.fork_rng(devices=[]):  # the adapters' initial A matrices
        torch.manual_seed(data.seed())
        adapted = peft.get_peft_model(model, lora)
    expose_layer_attributes(adapted)
    forget = cycle(data.forget)

    def loss(m: nn.Module, retain_batch) -> torch.Tensor:
        if cfg.objective == "kl":
            return kl_ascent_loss(m, teacher, retain_batch, next(forget), cfg.alpha,
                                  cfg.temperature)
        return neggrad_plus_loss(m, retain_batch, next(forget), cfg.alpha)

    optimizer = make_optimizer(adapted.parameters(), "adam", cfg.lr)  # the adapters only
    run_loop(adapted, lambda epoch: data.retain, loss, optimizer, cfg.epochs,
             owner="lora-unlearn")
    merged = adapted.merge_and_unload()
    for name, p in merged.named_parameters():  # peft froze the base weights; undo that
        p.requires_grad_(trainable[name])
    return merged
