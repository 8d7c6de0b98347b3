"""Losses that several methods combine: plain functions of logits or of a model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.batches import Inputs, forward


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               temperature: float = 1.0) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)) * T^2, averaged over the batch.

    The distillation loss of Hinton et al. as SCRUB's ``DistillKL`` computes it.
    """
    t = temperature
    log_p_student = F.log_softmax(student_logits / t, dim=1)
    p_teacher = F.softmax(teacher_logits.detach() / t, dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * t * t


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a probability vector per example, averaged over the batch."""
    return -(target_probs.detach() * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def l1_norm(model: nn.Module) -> torch.Tensor:
    """Sum of absolute values of every parameter (the l1-sparse penalty)."""
    return sum(p.abs().sum() for p in model.parameters())


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: Inputs) -> torch.Tensor:
    """Logits of a frozen teacher in eval mode (``x``: a tensor or keyword arguments)."""
    teacher.eval()
    return forward(teacher, x)
