"""A word n-gram tokenizer for the text scenarios: a vocabulary fitted on training text only."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-cased words; punctuation dropped, contractions kept ("isn't")."""
    return WORD.findall(str(text).lower())


def ngrams(tokens: Sequence[str], n: int) -> list[str]:
    """Every 1- to n-gram of ``tokens``, joined by spaces, in reading order."""
    out = list(tokens)
    for k in range(2, n + 1):
        out += [" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)]
    return out


class NgramTokenizer:
    """Maps text to padded arrays of n-gram ids; id 0 is padding, unseen n-grams are dropped.

    Fitted on the training texts only (n-grams seen at least ``min_count`` times, the
    ``max_vocab`` most frequent), so held-out text never shapes the vocabulary.

    Example:
        >>> tok = NgramTokenizer(n=2).fit(["a good film", "a bad film"] * 2)
        >>> tok.encode(["a good film"]).shape
        (1, 32)
    """

    def __init__(self, n: int = 2, min_count: int = 2, max_vocab: int = 30000,
                 max_len: int = 32):
        self.n, self.min_count, self.max_vocab, self.max_len = n, min_count, max_vocab, max_len
        self.vocab: dict[str, int] = {}

    def fit(self, texts: Iterable[str]) -> NgramTokenizer:
        counts = Counter(g for t in texts for g in set(ngrams(words(t), self.n)))
        kept = [g for g, c in counts.most_common(self.max_vocab) if c >= self.min_count]
        self.vocab = {g: i + 1 for i, g in enumerate(sorted(kept))}
        return self

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding included."""
        return len(self.vocab) + 1

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """int64 array (n, max_len); each row's known n-grams, then zeros."""
        rows = []
        for t in texts:
            ids = [self.vocab[g] for g in ngrams(words(t), self.n) if g in self.vocab]
            ids = ids[: self.max_len]
            rows.append(ids + [0] * (self.max_len - len(ids)))
        return np.asarray(rows, dtype=np.int64).reshape(-1, self.max_len)
