"""The frozen original's outputs computed once, so that methods which compare against it (NPO,
DPO-style, KL, UNDIAL) train with a single model in memory.

A method declares what it reads from the original when it is registered
(``register_lm_method(reference=..., reference_on=...)``):

- ``sequence``: the summed answer NLL of each row (NPO, NPO+GD, IdkDPO, AltPO);
- ``distribution``: the next-token distribution at each labelled position (KL, UNDIAL);
- ``hidden``: hidden states (RMU), ``model``: anything (users' methods): the frozen model itself;
- ``none``: nothing (GA, GradDiff, SimNPO, ...), so no copy of the original is kept at all.

:class:`PrecomputedReference` stores the ``sequence`` or ``distribution`` values of every row of
the sets the method trains on, keyed by the row's tokens, so a batch drawn in any order (and
on any process) finds its rows. Memory: one float per row for ``sequence``; labelled tokens x
vocabulary x 4 bytes for ``distribution`` (kl on TOFU's retain90 with a 128k vocabulary is tens
of GB: keep ``reference=model`` there, or use LoRA).

The loss functions in :mod:`obliviate.llm.losses` take either the frozen model or this object.
"""

from __future__ import annotations

import torch
from torch import nn

from obliviate.errors import DataError
from obliviate.llm.data import IGNORE, TokenSet

KINDS = ("none", "sequence", "distribution", "hidden", "model")


def _key(ids: torch.Tensor, labels: torch.Tensor) -> bytes:
    return ids.cpu().numpy().tobytes() + b"|" + labels.cpu().numpy().tobytes()


class PrecomputedReference:
    """The frozen model's ``kind`` values (``sequence`` or ``distribution``) on every row of
    ``sets``, computed once in batches of ``batch_size``."""

    def __init__(self, model: nn.Module, sets: list[TokenSet], kind: str, batch_size: int = 16):
        if kind not in ("sequence", "distribution"):
            raise ValueError(f"cannot precompute a '{kind}' reference")
        self.kind = kind
        self.rows: dict[bytes, torch.Tensor] = {}
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for s in sets:
                for i in range(0, len(s), batch_size):
                    ids, labels, mask = (t[i:i + batch_size] for t in s.tensors())
                    logits = model(input_ids=ids.to(device),
                                   attention_mask=mask.to(device)).logits[:, :-1].float()
                    logp = torch.log_softmax(logits, -1).cpu()
                    target = labels[:, 1:]
                    valid = target != IGNORE
                    for r in range(len(ids)):
                        key = _key(ids[r], labels[r])
                        if kind == "sequence":
                            lp = logp[r].gather(-1, target[r].clamp(min=0).unsqueeze(-1))
                            self.rows[key] = -(lp.squeeze(-1) * valid[r]).sum()
                        else:
                            self.rows[key] = logp[r][valid[r]].clone()
        model.train(was_training)

    def _row(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        try:
            return self.rows[_key(ids, labels)]
        except KeyError:
            raise DataError("A training row was not among the rows whose reference values were "
                            "computed before training; pass reference='model' for methods that "
                            "build new rows while they train.") from None

    def sequence_nll(self, batch) -> torch.Tensor:
        """The reference's summed NLL of each row's labelled tokens, shape (B,)."""
        ids, labels = batch[0], batch[1]
        return torch.stack([self._row(ids[r], labels[r]) for r in range(len(ids))])

    def log_probs(self, batch) -> torch.Tensor:
        """The reference's next-token log-probabilities (B, L-1, V), zero where unlabelled."""
        ids, labels = batch[0], batch[1]
        valid = labels[:, 1:] != IGNORE
        first = self._row(ids[0], labels[0])
        out = torch.zeros((*valid.shape, first.shape[-1]), dtype=first.dtype)
        for r in range(len(ids)):
            out[r][valid[r].cpu()] = self._row(ids[r], labels[r])
        return out

    def nbytes(self) -> int:
        """Bytes the stored values take."""
        return sum(t.numel() * t.element_size() for t in self.rows.values())
