"""Bad Teacher: distil from a competent teacher on retain data and an incompetent one on forget."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, default_collate

from obliviate.batches import forward, inputs_to, split_batch
from obliviate.config import param
from obliviate.errors import ConfigError
from obliviate.methods.common import reinit_parameters
from obliviate.methods.losses import teacher_logits
from obliviate.train import make_optimizer, model_device, run_loop
from obliviate.unlearning import UnlearnData, register_method


class Tagged(Dataset):
    """(example, tag) for every example of ``dataset``: tag 1 marks forget examples, 0 retain."""

    def __init__(self, dataset: Dataset, tag: int):
        self.dataset, self.tag = dataset, tag

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return self.dataset[i], self.tag


def tagged_collate(collate: Callable) -> Callable:
    """The user's ``collate`` on the examples, and the tags as a tensor beside them."""

    def collate_fn(items):
        return collate([example for example, _ in items]), torch.tensor([t for _, t in items])

    return collate_fn


def shared_collate(forget: DataLoader, retain: DataLoader) -> Callable:
    """The collate_fn both loaders use; mixed batches need one."""
    collate = getattr(forget, "collate_fn", None) or default_collate
    if getattr(retain, "collate_fn", None) not in (None, collate):
        raise ConfigError("bad-teacher mixes forget and retain examples in one batch, so the two "
                          "loaders must share one collate_fn; give both the same function.")
    return collate


def mixed_teacher_kl(student: torch.Tensor, competent: torch.Tensor, incompetent: torch.Tensor,
                     is_forget: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(l * p_incompetent + (1 - l) * p_competent || p_student) per example, batch-averaged.

    The official ``UnlearnerLoss``, with l = 1 on forget examples and 0 on retain; every distribution is a
    softmax at ``temperature``.
    """
    t, forget = temperature, is_forget.float().unsqueeze(1)
    target = (forget * F.softmax(incompetent / t, dim=1)
              + (1 - forget) * F.softmax(competent / t, dim=1))
    return F.kl_div(F.log_softmax(student / t, dim=1), target, reduction="batchmean")


def map_style(loader: DataLoader, name: str) -> Dataset:
    dataset = getattr(loader, "dataset", None)
    if dataset is None or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise ConfigError(
            f"bad-teacher mixes single examples of the forget and retain sets, so the {name} "
            f"loader needs a map-style dataset (with __len__ and __getitem__)."
        )
    return dataset


@dataclass(frozen=True)
class BadTeacherConfig:
    """Defaults: the official code and notebook (Adam lr 1e-4, 1 epoch, T=1, batch 256, 30%
    of the retain set), as also used by the SSD repository's reimplementation."""

    epochs: int = param(1, ge=1, help="epochs over the forget set plus the retain subset")
    lr: float = param(1e-4, gt=0, help="Adam learning rate")
    temperature: float = param(1.0, gt=0, help="softmax temperature of the KL")
    batch_size: int = param(256, ge=1, help="minibatch size of the mixed set")
    retain_fraction: float = param(0.3, gt=0, le=1, help="share of the retain set distilled")


@register_method("bad-teacher", family="distillation", needs_retain=True,
                 paper="Chundawat et al. 2023, Can Bad Teaching Induce Forgetting?",
                 tasks=("classification",))
def bad_teacher(model: nn.Module, data: UnlearnData, cfg: BadTeacherConfig) -> nn.Module:
    """Minimise the KL from a per-example teacher: the original on retain, a random net on forget.

    The student starts at the original model; the competent teacher is a frozen copy of it and
    the incompetent teacher the same architecture with fresh random weights. Forget examples and
    a random ``retain_fraction`` of the retain set (drawn from the run's generator) are shuffled
    together and distilled for ``epochs`` epochs with Adam. The mixed batches are built with the
    loaders' own ``collate_fn``, so mapping batches (Hugging Face style) work as given.

    References:
        Chundawat, Tarun, Mandal, Kankanhalli, "Can Bad Teaching Induce Forgetting? Unlearning
        in Deep Networks Using an Incompetent Teacher", AAAI 2023 (``unlearn.py``).
    """
    forget_set, retain_set = map_style(data.forget, "forget"), map_style(data.retain, "retain")
    n_keep = max(1, round(cfg.retain_fraction * len(retain_set)))
    keep = torch.randperm(len(retain_set), generator=data.generator)[:n_keep].tolist()
    mixed = ConcatDataset([Tagged(forget_set, 1), Tagged(Subset(retain_set, keep), 0)])
    loader = DataLoader(mixed, batch_size=cfg.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(data.seed()),
                        collate_fn=tagged_collate(shared_collate(data.forget, data.retain)))

    competent = copy.deepcopy(model).eval().requires_grad_(False)
    incompetent = reinit_parameters(copy.deepcopy(model), data.generator).eval()
    incompetent.requires_grad_(False)
    optimizer = make_optimizer(model.parameters(), "adam", cfg.lr)
    device = model_device(model)

    def loss(m: nn.Module, batch) -> torch.Tensor:
        examples, is_forget = batch
        x, is_forget = inputs_to(split_batch(examples)[0], device), is_forget.to(device)
        return mixed_teacher_kl(forward(m, x), teacher_logits(competent, x),
                                teacher_logits(incompetent, x), is_forget, cfg.temperature)

    return run_loop(model, lambda epoch: loader, loss, optimizer, cfg.epochs,
                    owner="bad-teacher")
