"""Tokenizers: a byte-level one shipped as code (nothing to download) and an adapter for HF ones.

Both expose what the track needs: ``encode(text) -> list[int]``, ``decode(ids) -> str``, the
ids ``bos``, ``eos`` and ``pad``, and ``prompt(question) -> str``, the text a question is asked
with (``template`` names it; ``config.json`` records it):

- ``qa``: ``Q: {question}\nA:``, the tiny byte-level model's (what its corpus is written in);
- ``chat``: the tokenizer's own chat template (one user turn and the assistant's header), when
  the tokenizer has one, as OpenUnlearning applies it to Llama-3 and Phi-3 instruct models;
- ``question-answer``: ``Question: {question}\nAnswer:``, TOFU's and OpenUnlearning's template
  for models without a chat template (their ``question_start_tag``/``answer_tag`` for Phi-1.5).
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
    template: str = "qa"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 2 <= i < 256 or i == self.eos).decode("utf-8", "replace")

    def prompt(self, question: str) -> str:
        return prompt_with(self.template, question)


def prompt_with(template: str, question: str) -> str:
    """``question`` in the ``qa`` or ``question-answer`` template (``chat`` needs the tokenizer)."""
    if template == "question-answer":
        return f"Question: {question}\nAnswer:"
    return f"Q: {question}\nA:"


class HFTokenizer:
    """A Hugging Face tokenizer (``AutoTokenizer``) behind the same small interface; its
    template is ``chat`` when it has a chat template, else ``question-answer``."""

    def __init__(self, tok: Any, name: str):
        self.tok = tok
        self.name = name
        self.template = "chat" if getattr(tok, "chat_template", None) else "question-answer"
        self.eos = tok.eos_token_id if tok.eos_token_id is not None else 0
        self.bos = tok.bos_token_id if tok.bos_token_id is not None else self.eos
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else self.eos
        self.vocab_size = len(tok)

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([i for i in ids if i != self.pad], skip_special_tokens=True)

    def prompt(self, question: str) -> str:
        """The question as the template asks it; a chat template's leading BOS text is dropped
        (the track puts the BOS id in front of every sequence itself)."""
        if self.template != "chat":
            return prompt_with(self.template, question)
        text = self.tok.apply_chat_template([{"role": "user", "content": question}],
                                            tokenize=False, add_generation_prompt=True)
        bos = self.tok.bos_token or ""
        return text[len(bos):] if bos and text.startswith(bos) else text
