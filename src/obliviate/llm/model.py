"""Causal language models: the offline tiny GPT-2 default, or any Hugging Face causal LM.

transformers (and peft, for LoRA) are imported only here and only when a model is built, so the
rest of obliviate starts without them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.llm.tokenizer import ByteTokenizer, HFTokenizer

TINY = "tiny-gpt2"


def resolve_device(device: str) -> torch.device:
    """``cpu``, or ``cuda`` (``cuda:N``) when asked for and available."""
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"Device '{device}' was asked for but torch sees no CUDA GPU; "
                              f"use device=cpu.")
        return torch.device(device)
    raise ConfigError(f"Unknown device '{device}'; use cpu or cuda.")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError("The language-model track needs transformers: pip install "
                          "'obliviate[llm]'.") from None
    transformers.logging.set_verbosity_error()
    return transformers


def tokenizer_for(model: str):
    """The byte tokenizer for the tiny default, or the HF tokenizer stored beside ``model``."""
    if model == TINY:
        return ByteTokenizer()
    if not Path(model).exists():
        raise ConfigError(f"Model '{model}' is neither '{TINY}' nor a local folder; nothing is "
                          f"downloaded at run time: pass the path of a saved HF causal LM.")
    tr = _transformers()
    return HFTokenizer(tr.AutoTokenizer.from_pretrained(model), model)


def build_lm(model: str, seed: int, *, width: int = 96, layers: int = 4, heads: int = 4,
             context: int = 128, vocab_size: int = 256) -> nn.Module:
    """A fresh tiny GPT-2 (randomly initialised from ``seed``), or the HF model at ``model``."""
    tr = _transformers()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model == TINY:
            tok = ByteTokenizer()
            cfg = tr.GPT2Config(vocab_size=vocab_size, n_positions=context, n_embd=width,
                                n_layer=layers, n_head=heads, bos_token_id=tok.bos,
                                eos_token_id=tok.eos, pad_token_id=tok.pad,
                                tie_word_embeddings=False, resid_pdrop=0.0, embd_pdrop=0.0,
                                attn_pdrop=0.0)
            return tr.GPT2LMHeadModel(cfg)
        tokenizer_for(model)  # checks the path
        return tr.AutoModelForCausalLM.from_pretrained(model)


def with_lora(model: nn.Module, rank: int) -> nn.Module:
    """Wrap ``model`` in a peft LoRA adapter of ``rank`` on its attention/MLP projections."""
    try:
        import peft
    except ImportError:
        raise ConfigError("lora_rank > 0 needs peft: pip install 'obliviate[llm]'.") from None
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
             if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"}
    targets = sorted(names & {"c_attn", "c_proj", "c_fc", "q_proj", "v_proj", "k_proj",
                              "o_proj", "up_proj", "down_proj", "gate_proj"})
    if not targets:
        raise ConfigError("Found no attention or MLP projection to put a LoRA adapter on.")
    fan_in_fan_out = any(type(m).__name__ == "Conv1D" for m in model.modules())
    cfg = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets,
                          lora_dropout=0.0, fan_in_fan_out=fan_in_fan_out)
    return peft.get_peft_model(model, cfg)


def merged(model: nn.Module) -> nn.Module:
    """A plain model with a LoRA adapter folded into its weights (no-op without one)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks (GPT-2's ``transformer.h``, Llama's ``model.layers``)."""
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", 0)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ConfigError("Cannot find the model's list of transformer blocks.")


def mlp_out_projection(block: nn.Module) -> nn.Module:
    """A block's MLP output projection (GPT-2 ``mlp.c_proj``, Llama ``mlp.down_proj``)."""
    for name in ("mlp.c_proj", "mlp.down_proj", "mlp.fc2", "mlp.dense_4h_to_h"):
        try:
            return block.get_submodule(name)
        except AttributeError:
            continue
    raise ConfigError("Cannot find the MLP output projection of a transformer block.")
