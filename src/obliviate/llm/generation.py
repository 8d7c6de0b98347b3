"""Greedy generation through a Hugging Face model's own key-value cache (``generate``), in
left-padded batches.

The cache-free loop of :func:`obliviate.llm.evaluate.complete` reruns the whole batch for every
new token, O(length^2) per answer; with the cache each new token costs one step over one
position. Both decode greedily and stop a row at its first end token, so they give the same
tokens (``tests/test_llm_scale.py`` checks it on tiny Llama and GPT-2 models); how many new
tokens to allow is the caller's (``max_new_tokens`` passes through untouched).

Settings a model folder ships in ``generation_config.json`` (sampling, repetition penalties,
forced or suppressed tokens) are not applied: the evaluation decodes plain greedy, as TOFU's
and OpenUnlearning's do with ``do_sample=False``.
"""

from __future__ import annotations

import torch
from torch import nn


def uses_generate(model: nn.Module) -> bool:
    """Whether ``model`` is a Hugging Face model that generates with its key-value cache."""
    can = getattr(model, "can_generate", None)
    return callable(can) and bool(can()) and hasattr(model, "generate")


@torch.no_grad()
def greedy_cached(model: nn.Module, tok, prompts: list[list[int]], max_new_tokens: int,
                  batch_size: int = 64) -> list[list[int]]:
    """The greedy continuation of each token list in ``prompts``, up to and including its first
    end token (``tok.eos``) or ``max_new_tokens`` tokens."""
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    plain = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                             eos_token_id=tok.eos, pad_token_id=tok.pad, use_cache=True)
    saved = model.generation_config
    model.generation_config = GenerationConfig()  # nothing from the folder's defaults
    out: list[list[int]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            rows = prompts[start:start + batch_size]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), tok.pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, r in enumerate(rows):  # left padding: every row ends where generation starts
                ids[i, width - len(r):] = torch.tensor(r)
                mask[i, width - len(r):] = 1
            new = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 generation_config=plain)[:, width:].cpu()
            for row in new.tolist():
                out.append(row[:row.index(tok.eos) + 1] if tok.eos in row else row)
    finally:
        model.generation_config = saved
    return out
