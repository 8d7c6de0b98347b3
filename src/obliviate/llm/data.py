"""Question-answer pairs as padded token tensors, and the loaders the methods train on.

A set is three aligned tensors: ``ids`` (N, L), ``labels`` (N, L) with -100 wherever no loss is
taken (the question and the padding), and ``mask`` (N, L), 1 on real tokens. Sequences are
right-padded, so a causal model's outputs on real tokens do not depend on the padding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from obliviate.errors import ForgetSpecError

IGNORE = -100


def prompt_text(question: str, tok=None) -> str:
    """``question`` in ``tok``'s template (:mod:`obliviate.llm.tokenizer`); ``Q: ...\nA:``
    without a tokenizer."""
    return tok.prompt(question) if hasattr(tok, "prompt") else f"Q: {question}\nA:"


@dataclass
class TokenSet:
    ids: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.ids, self.labels, self.mask


def encode_pairs(tok, questions: Sequence[str], answers: Sequence[str],
                 max_len: int | None = None, loss_on_prompt: bool = False) -> TokenSet:
    """Tokenise ``Q: question / A: answer`` pairs; the loss covers the answer and its end token.

    ``loss_on_prompt`` puts the loss on every token (plain language modelling, used by the MIAs).
    """
    rows, labels = [], []
    for q, a in zip(questions, answers, strict=True):
        prompt = [tok.bos] + tok.encode(prompt_text(q, tok))
        answer = tok.encode(" " + a) + [tok.eos]
        ids = prompt + answer
        # labels sit at the same positions as ids (the model shifts them); nothing predicts bos
        head = [IGNORE] + prompt[1:] if loss_on_prompt else [IGNORE] * len(prompt)
        rows.append(ids)
        labels.append(head + answer)
    return _pad(tok, rows, labels, max_len)


def encode_texts(tok, texts: Sequence[str], max_len: int) -> TokenSet:
    """Plain text, cut into windows of ``max_len`` tokens, for pretraining."""
    stream: list[int] = []
    for t in texts:
        stream += [tok.bos] + tok.encode(t) + [tok.eos]
    rows = [stream[i:i + max_len] for i in range(0, max(1, len(stream) - 1), max_len)]
    rows = [r for r in rows if len(r) > 1]
    labels = [[IGNORE] + r[1:] for r in rows]
    return _pad(tok, rows, labels, max_len)


def _pad(tok, rows: list[list[int]], labels: list[list[int]], max_len: int | None) -> TokenSet:
    length = max(len(r) for r in rows)
    if max_len is not None:
        length = min(length, max_len)
    n = len(rows)
    ids = torch.full((n, length), tok.pad, dtype=torch.long)
    lab = torch.full((n, length), IGNORE, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    for i, (r, y) in enumerate(zip(rows, labels, strict=True)):
        r, y = r[:length], y[:length]
        ids[i, :len(r)] = torch.tensor(r)
        lab[i, :len(y)] = torch.tensor(y)
        mask[i, :len(r)] = 1
    return TokenSet(ids, lab, mask)


def loader(*sets: TokenSet, batch_size: int, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """Batches of the concatenated tensors of aligned ``sets`` (ids, labels, mask, ids2, ...)."""
    tensors = [t for s in sets for t in s.tensors()]
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle,
                      generator=generator)


_SPEC = re.compile(r"^(authors|groups):(\d+(?:\.\d*)?|\.\d+)$")


def select_authors(spec: str, n_profiles: int, seed: int) -> np.ndarray:
    """Profile indices to forget for ``authors:FRACTION`` (0 < f < 1) or ``authors:COUNT``.

    Raises:
        ForgetSpecError: a malformed spec, or one that selects no author or every author.
    """
    m = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    if m is None:
        raise ForgetSpecError(
            f"Forget spec '{spec}' is not valid for the language-model track: write "
            f"authors:FRACTION (e.g. authors:0.1, as TOFU's forget10) or authors:COUNT."
        )
    value = float(m.group(2))
    k = int(round(value * n_profiles)) if "." in m.group(2) else int(value)
    if not 1 <= k < n_profiles:
        raise ForgetSpecError(
            f"Forget spec '{spec}' selects {k} of {n_profiles} authors; it must select at least "
            f"one and leave at least one. Use a fraction in (0, 1) or a count below {n_profiles}."
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_profiles)[:k])
