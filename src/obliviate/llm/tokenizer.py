"""Tokenizers: a byte-level one shipped as code (nothing to download) and an adapter for HF ones.

Both expose the same four things the track needs: ``encode(text) -> list[int]``,
``decode(ids) -> str`` and the ids ``bos``, ``eos`` and ``pad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256). Byte 0 pads, byte 1 opens a sequence, and the
    newline ends an answer, so generation stops at the end of a line."""

    bos: int = 1
    eos: int = 10
    pad: int = 0
    vocab_size: int = 256
    name: str = "bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 2 <= i < 256 or i == self.eos).decode("utf-8", "replace")


class HFTokenizer:
    """A Hugging Face tokenizer (``AutoTokenizer``) behind the same small interface."""

    def __init__(self, tok: Any, name: str):
        self.tok = tok
        self.name = name
        self.eos = tok.eos_token_id if tok.eos_token_id is not None else 0
        self.bos = tok.bos_token_id if tok.bos_token_id is not None else self.eos
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else self.eos
        self.vocab_size = len(tok)

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if i != self.pad], skip_special_tokens=True)
