"""Fine-tuning on the retain set (the NeurIPS 2023 challenge starting kit's baseline)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.population import Population
from obliviate.population_runs import train_runs
from obliviate.train import Recipe, cross_entropy_loss, make_optimizer, make_scheduler, run_loop
from obliviate.unlearning import UnlearnData, register_method


@dataclass(frozen=True)
class FinetuneConfig:
    """Defaults: the starting kit's recipe (5 epochs, SGD lr 0.1, momentum 0.9, wd 5e-4, cosine)."""

    epochs: int = param(5, ge=1, help="epochs over the retain set")
    lr: float = param(0.1, gt=0, help="SGD learning rate")
    momentum: float = param(0.9, ge=0, lt=1, help="SGD momentum")
    weight_decay: float = param(5e-4, ge=0, help="L2 weight decay")
    schedule: str = param("cosine", choices=("cosine", "constant"), help="lr schedule per epoch")


def finetune_population(original: nn.Module, x_retain, y_retain, cfg: FinetuneConfig,
                        seeds: list[int], *, batch_size: int, chunk_size: int | None = None
                        ) -> Population | str:
    """The M runs of :func:`finetune` with ``seeds``, trained at once
    (:func:`obliviate.population_runs.train_runs`): the same SGD, schedule and batches."""
    numbers = (cfg.lr, cfg.momentum, cfg.weight_decay)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        return "its parameters are not all numbers (e.g. lr=auto calibrates each run)"
    recipe = Recipe("sgd", float(cfg.lr), cfg.epochs, batch_size, float(cfg.momentum),
                    float(cfg.weight_decay), cfg.schedule)
    return train_runs(original, x_retain, y_retain, recipe, seeds, chunk_size=chunk_size)


@register_method("finetune", family="gradient", needs_retain=True,
                 paper="Triantafillou et al. 2023, NeurIPS Machine Unlearning Challenge kit",
                 default=True, population=finetune_population)
def finetune(model: nn.Module, data: UnlearnData, cfg: FinetuneConfig) -> nn.Module:
    """Fine-tune on the retain set only, minimising retain cross-entropy so the forget set fades.

    Forgetting comes only from catastrophic forgetting: the forget set is never looked at.

    References:
        Triantafillou et al., "NeurIPS 2023 Machine Unlearning Challenge", starting kit
        ``unlearning-CIFAR10.ipynb`` (2023).
    """
    optimizer = make_optimizer(model.parameters(), "sgd", cfg.lr, cfg.momentum, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg.schedule, cfg.epochs)
    return run_loop(model, lambda epoch: data.retain, cross_entropy_loss, optimizer, cfg.epochs,
                    scheduler=scheduler, owner="finetune")
