"""Language-model unlearning losses as plain functions, so that methods (and users) combine them.

A batch is ``(ids, labels, mask, ...)`` as :mod:`obliviate.llm.data` builds it; labels are -100
where no loss is taken. Formulas follow TOFU's ``dataloader.py``, the NPO / SimNPO / RMU authors' code (see
``reference/methods.md`` section 3.6), and OpenUnlearning's ``trainer/utils.py`` for UNDIAL,
WGA and SatImp (locuslab/open-unlearning at d3d7cf9). ``reference`` is the frozen original, or
its values computed once before training (:mod:`obliviate.llm.reference`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.llm.data import IGNORE


def _on(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    device = next(model.parameters()).device
    return tuple(t.to(device) for t in batch[:3])  # type: ignore[return-value]


def token_logprobs(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each labelled token (B, L-1) and the 0/1 mask of labelled tokens."""
    ids, labels, mask = _on(model, batch)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    valid = target != IGNORE
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1))
    return logp.squeeze(-1) * valid, valid


def token_nll(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """NLL of each labelled token (B, L-1; 0 where unlabelled) and the 0/1 mask of labelled tokens."""
    logp, valid = token_logprobs(model, batch)
    return -logp, valid


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the positions where ``valid`` is true."""
    return (values * valid).sum() / valid.sum().clamp(min=1)


def sequence_nll(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL of each sequence's labelled tokens (TOFU's ``get_batch_loss``) and their count."""
    logp, valid = token_logprobs(model, batch)
    return -logp.sum(dim=1), valid.sum(dim=1)


def nll(model: nn.Module, batch) -> torch.Tensor:
    """Token-averaged NLL over the batch (the ``outputs.loss`` of an HF causal LM)."""
    logp, valid = token_logprobs(model, batch)
    return -logp.sum() / valid.sum().clamp(min=1)


def reference_sequence_nll(reference, batch) -> torch.Tensor:
    """The frozen reference's summed NLL of each row: from the model (no gradient), or from a
    :class:`~obliviate.llm.reference.PrecomputedReference`."""
    if isinstance(reference, nn.Module):
        with torch.no_grad():
            return sequence_nll(reference, batch)[0]
    return reference.sequence_nll(batch).to(batch[0].device)


def reference_logits(reference, ids, mask, batch) -> torch.Tensor:
    """The frozen reference's next-token logits (B, L-1, V) from the model, or its
    log-probabilities from a precomputed reference: the same distribution under softmax."""
    if isinstance(reference, nn.Module):
        with torch.no_grad():
            return reference(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return reference.log_probs(batch).to(ids.device)


def gradient_ascent(model: nn.Module, forget_batch) -> torch.Tensor:
    """-NLL on the forget batch."""
    return -nll(model, forget_batch)


def kl_to_reference(model: nn.Module, reference, batch) -> torch.Tensor:
    """KL(p_reference || p_model) per labelled token, summed over the vocabulary and averaged."""
    ids, labels, mask = _on(model, batch)
    valid = labels[:, 1:] != IGNORE
    logq = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
    logp = torch.log_softmax(reference_logits(reference, ids, mask, batch), -1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    return (kl * valid).sum() / valid.sum().clamp(min=1)


def npo(model: nn.Module, reference, forget_batch, beta: float) -> torch.Tensor:
    """NPO: -(2/beta) E log sigmoid(beta (S_theta - S_ref)), S the summed forget NLL."""
    s_theta, _ = sequence_nll(model, forget_batch)
    s_ref = reference_sequence_nll(reference, forget_batch)
    return -(2.0 / beta) * F.logsigmoid(beta * (s_theta - s_ref)).mean()


def simnpo(model: nn.Module, forget_batch, beta: float, gamma: float) -> torch.Tensor:
    """SimNPO: -(2/beta) E log sigmoid(beta (S_theta/|y| - gamma)); no reference model."""
    s_theta, n = sequence_nll(model, forget_batch)
    return -(2.0 / beta) * F.logsigmoid(beta * (s_theta / n.clamp(min=1) - gamma)).mean()


def dpo(model: nn.Module, reference, chosen, rejected, beta: float) -> torch.Tensor:
    """DPO preferring ``chosen`` over ``rejected`` answers to the same questions."""
    s_c, _ = sequence_nll(model, chosen)
    s_r, _ = sequence_nll(model, rejected)
    r_c = reference_sequence_nll(reference, chosen)
    r_r = reference_sequence_nll(reference, rejected)
    # log pi(chosen) - log pi(rejected) = S(rejected) - S(chosen)
    margin = (s_r - s_c) - (r_r - r_c)
    return -F.logsigmoid(beta * margin).mean()


def weighted_ascent(model: nn.Module, forget_batch, weight) -> torch.Tensor:
    """-mean over labelled tokens of w(p) * NLL, with w a function of the detached token
    probability p = exp(-NLL): the shared form of WGA and SatImp."""
    loss, valid = token_nll(model, forget_batch)
    w = weight(torch.exp(-loss).detach())
    return -masked_mean(w * loss, valid)


def wga(model: nn.Module, forget_batch, beta: float) -> torch.Tensor:
    """WGA (Wang et al. 2025): gradient ascent with each token weighted by p^beta."""
    return weighted_ascent(model, forget_batch, lambda p: p ** beta)


def satimp(model: nn.Module, forget_batch, beta1: float, beta2: float) -> torch.Tensor:
    """SatImp (Yang et al. 2025): gradient ascent with token weights p^beta1 * (1 - p)^beta2."""
    return weighted_ascent(model, forget_batch, lambda p: p ** beta1 * (1 - p) ** beta2)


def undial(model: nn.Module, reference, forget_batch, beta: float) -> torch.Tensor:
    """UNDIAL (Dong et al. 2025): cross-entropy to the reference's distribution with the logit of
    each answer token lowered by ``beta``, averaged over labelled tokens."""
    ids, labels, mask = _on(model, forget_batch)
    target = labels[:, 1:]
    valid = target != IGNORE
    logq = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
    with torch.no_grad():
        teacher = reference_logits(reference, ids, mask, forget_batch)
        teacher = teacher.scatter_add(-1, target.clamp(min=0).unsqueeze(-1),
                                      torch.full_like(teacher[..., :1], -beta))
        soft = torch.softmax(teacher, -1)
    return masked_mean(-(soft * logq).sum(-1), valid)


def hidden_at(model: nn.Module, batch, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Output of transformer block ``layer`` (B, L, d) and the mask of real tokens."""
    ids, _labels, mask = _on(model, batch)
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return out.hidden_states[layer + 1], mask


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real tokens (averaged over the hidden dimension too)."""
    per_token = ((a - b) ** 2).mean(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def rmu(model: nn.Module, reference: nn.Module, forget_batch, retain_batch, layer: int,
        control: torch.Tensor, alpha: float) -> torch.Tensor:
    """RMU: steer forget activations at ``layer`` to ``control``; keep retain ones as the reference's."""
    h_f, m_f = hidden_at(model, forget_batch, layer)
    h_r, m_r = hidden_at(model, retain_batch, layer)
    with torch.no_grad():
        h_ref, _ = hidden_at(reference, retain_batch, layer)
    target = control.to(h_f.dtype).expand_as(h_f)
    return masked_mse(h_f, target, m_f) + alpha * masked_mse(h_r, h_ref, m_r)
