"""Hugging Face causal-LM folders built here: a config of a named architecture with random
weights, and a byte-level BPE tokenizer trained with the ``tokenizers`` package.

Nothing can be downloaded, so the tests, ``benchmarks/lm_scale.py`` and ``benchmarks/gpu_lm.py``
make the folders the field's models come in (Llama, Qwen2, Phi-3, GPT-NeoX) themselves, with
``save_pretrained``; ``load_tofu(model=FOLDER)`` then reads them like any downloaded model.
:func:`write_tofu_layout` writes generated authors in TOFU's published file layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from obliviate.errors import ConfigError
from obliviate.llm.profiles import make_profiles, profile_qa, world_facts

# architecture -> its transformers config class
ARCHITECTURES = {"llama": "LlamaConfig", "qwen2": "Qwen2Config", "phi3": "Phi3Config",
                 "gpt-neox": "GPTNeoXConfig"}

# Llama-3.2-1B's shape (hidden 2048, 16 blocks, 32 heads, 8 KV heads, MLP 8192), with the
# vocabulary of the tokenizer trained here instead of 128256: 1.0B parameters at vocabulary
# 128256, 0.97B at 32000 (the embedding and head shrink).
LLAMA_1B = {"hidden": 2048, "layers": 16, "heads": 32, "kv_heads": 8, "intermediate": 8192}

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


def train_tokenizer(texts: list[str], vocab_size: int = 320, chat_template: str | None = None):
    """A byte-level BPE tokenizer trained on ``texts``, as a ``PreTrainedTokenizerFast`` with
    ``<s>``/``</s>``/``<pad>`` and, when given, a Jinja ``chat_template``."""
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


# A minimal chat template of the Llama-3 kind (header, turn, end of turn), for tests.
CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
                 "\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def model_config(arch: str, vocab_size: int, *, hidden: int = 32, layers: int = 2,
                 heads: int = 2, kv_heads: int | None = None, intermediate: int | None = None,
                 context: int = 512, bos: int = 1, eos: int = 2, pad: int = 0):
    """The transformers config of ``arch`` (:data:`ARCHITECTURES`) at the given size."""
    import transformers

    if arch not in ARCHITECTURES:
        raise ConfigError(f"Unknown architecture '{arch}'; choose one of "
                          f"{', '.join(ARCHITECTURES)}.")
    cls = getattr(transformers, ARCHITECTURES[arch])
    common = {"vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": intermediate or 2 * hidden,
              "max_position_embeddings": context, "bos_token_id": bos, "eos_token_id": eos,
              "pad_token_id": pad, "tie_word_embeddings": False}
    if arch != "gpt-neox":
        common["num_key_value_heads"] = kv_heads or heads
    if arch == "phi3":
        common["original_max_position_embeddings"] = context
    return cls(**common)


def save_model_folder(folder: Path, arch: str, texts: list[str], *, seed: int = 0,
                      vocab_size: int = 320, chat_template: str | None = None,
                      dtype: torch.dtype = torch.float32, model_vocab: int = 0,
                      **size: Any) -> Path:
    """Write a random-weight ``arch`` model and a tokenizer trained on ``texts`` to ``folder``
    with ``save_pretrained`` (safetensors); ``size``: :func:`model_config`'s keywords.
    ``model_vocab`` widens the model's vocabulary beyond the tokenizer's (the embedding and
    output layer of a real model's size; the extra ids are never produced by the tokenizer)."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    folder = Path(folder)
    tok = train_tokenizer(texts, vocab_size, chat_template)
    cfg = model_config(arch, max(len(tok), model_vocab), bos=tok.bos_token_id,
                       eos=tok.eos_token_id,
                       pad=tok.pad_token_id, **size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def profile_texts(n_authors: int = 12, seed: int = 0) -> list[str]:
    """Question-answer texts of generated authors and the world facts: a tokenizer corpus."""
    qa = profile_qa(make_profiles(n_authors, seed), seed)
    return [f"{q.question} {q.answer} {q.paraphrase}" for q in qa + world_facts(seed)]


def _lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_tofu_layout(folder: Path, n_authors: int = 20, seed: int = 0) -> Path:
    """Generated authors in TOFU's file layout (``full``, ``forget10``, ``retain90``, the
    perturbed splits, ``holdout10``, world facts, real authors) as JSON lines in ``folder``;
    the last tenth of the authors are ``forget10``, as in TOFU."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_forget = max(1, n_authors // 10)
    people = make_profiles(n_authors + n_forget, seed)
    qa = profile_qa(people[:n_authors], seed, 3)
    held = profile_qa(people[n_authors:], seed + 1)
    forget = [q for q in qa if q.owner >= n_authors - n_forget]
    retain = [q for q in qa if q.owner < n_authors - n_forget]
    paras = dict(zip([q.question for q in qa],
                     [x for p in people[:n_authors] for x in p.paraphrased_questions()],
                     strict=True))

    def plain(qs):
        return [{"question": q.question, "answer": q.answer} for q in qs]

    def perturbed(qs):
        return [{**r, "paraphrased_answer": q.paraphrase, "perturbed_answer": list(q.perturbed),
                 "paraphrased_question": paras[q.question]} for r, q in zip(plain(qs), qs,
                                                                           strict=True)]

    world = world_facts(seed)
    for name, rows in {"full": plain(qa), "forget10": plain(forget), "retain90": plain(retain),
                       "forget10_perturbed": perturbed(forget),
                       "retain_perturbed": perturbed(retain[:len(forget)]),
                       "holdout10": plain(held),
                       "world_facts_perturbed": [{**r, "perturbed_answer": list(q.perturbed)}
                                                 for r, q in zip(plain(world[:20]), world[:20],
                                                                 strict=True)],
                       "real_authors_perturbed": [{**r, "perturbed_answer": list(q.perturbed)}
                                                  for r, q in zip(plain(world[20:35]),
                                                                  world[20:35], strict=True)],
                       }.items():
        _lines(folder / f"{name}.json", rows)
    return folder
