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
    transformers.utils.logging.disable_progress_bar()
    return transformers


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model",
                   "spiece.model", "vocab.txt")


def _hf_tokenizer(folder: str, role: str) -> HFTokenizer:
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"Tokenizer folder '{folder}' does not exist; pass scenario.tokenizer="
                          f"bytes or the folder of a saved HF tokenizer.")
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ConfigError(f"The {role} '{folder}' has no tokenizer files ({', '.join(TOKENIZER_FILES[:4])}"
                          f", ...); pass scenario.tokenizer=bytes or scenario.tokenizer=PATH "
                          f"of a folder that has them.")
    tr = _transformers()
    try:
        tok = HFTokenizer(tr.AutoTokenizer.from_pretrained(str(path), trust_remote_code=False),
                          str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the tokenizer in '{folder}' ({exc}); pass "
                          f"scenario.tokenizer=bytes or another folder.") from None
    if not tok.encode("Where was Ada born?"):
        raise ConfigError(f"The tokenizer in '{folder}' turns text into no tokens; pass "
                          f"scenario.tokenizer=bytes or another folder.")
    return tok


def tokenizer_for(model: str, choice: str = "auto"):
    """The tokenizer ``choice`` names for ``model``, checked against the model's vocabulary.

    ``auto``: the byte tokenizer for the tiny default, else the one saved beside ``model``;
    ``bytes``: the byte tokenizer; any other value: a folder with a saved HF tokenizer.

    Raises:
        ConfigError: a missing folder, a folder without tokenizer files, a tokenizer that
            yields no tokens, or ids beyond the model's vocabulary (before any training).
    """
    if model != TINY and not Path(model).is_dir():
        raise ConfigError(f"Model '{model}' is neither '{TINY}' nor a local folder; nothing is "
                          f"downloaded at run time: pass the path of a saved HF causal LM.")
    if choice == "bytes" or (choice == "auto" and model == TINY):
        tok = ByteTokenizer()
    elif choice == "auto":
        tok = _hf_tokenizer(model, "model folder")
    else:
        tok = _hf_tokenizer(choice, "tokenizer folder")
    if model != TINY:
        vocab = model_vocab_size(model)
        top = max(tok.vocab_size - 1, tok.bos, tok.eos, tok.pad)
        if vocab is not None and top >= vocab:
            raise ConfigError(f"The tokenizer ({tok.name}) has ids up to {top} but model "
                              f"'{model}' has a vocabulary of {vocab}; pass the tokenizer the "
                              f"model was trained with (scenario.tokenizer=PATH).")
    return tok


def _model_config(model: str):
    try:
        return _transformers().AutoConfig.from_pretrained(model, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the model config in '{model}' ({exc}); pass the folder "
                          f"of a saved HF causal LM (with config.json).") from None


def model_vocab_size(model: str) -> int | None:
    """The vocabulary size in the config of the HF model folder ``model``."""
    return getattr(_model_config(model), "vocab_size", None)


def model_blocks(model: str, layers: int) -> int:
    """Transformer blocks of the tiny GPT-2 (``layers``) or of the HF model folder ``model``."""
    if model == TINY:
        return layers
    cfg = _model_config(model)
    return int(getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0))


def build_lm(model: str, seed: int, *, width: int = 96, layers: int = 4, heads: int = 4,
             context: int = 128, tokenizer=None, dtype: str = "float32") -> nn.Module:
    """A fresh tiny GPT-2 (randomly initialised from ``seed``), or the HF model at ``model``,
    with weights in ``dtype`` (``float32``, ``bfloat16``, ``float16``).

    The tiny model's vocabulary and special ids are the tokenizer's (the byte tokenizer's 256
    by default). Code shipped in a model folder is never run (``trust_remote_code=False``):
    only architectures of the installed transformers load.
    """
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    tr = _transformers()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model == TINY:
            tok = tokenizer or ByteTokenizer()
            cfg = tr.GPT2Config(vocab_size=tok.vocab_size, n_positions=context, n_embd=width,
                                n_layer=layers, n_head=heads, bos_token_id=tok.bos,
                                eos_token_id=tok.eos, pad_token_id=tok.pad,
                                tie_word_embeddings=False, resid_pdrop=0.0, embd_pdrop=0.0,
                                attn_pdrop=0.0)
            return tr.GPT2LMHeadModel(cfg).to(dt)
        if not Path(model).is_dir():
            tokenizer_for(model)  # raises the missing-folder error
        # a folder's auto_map never runs its code (docs/security.md)
        return tr.AutoModelForCausalLM.from_pretrained(model, trust_remote_code=False, dtype=dt)


def refuse_float16_training(model: nn.Module, who: str) -> None:
    """Refuse to train float16 weights: AdamW's epsilon (1e-8) rounds to 0 in float16, so the
    first update of a weight whose gradient is 0 divides 0 by 0 (the loss turns NaN).

    Raises:
        ConfigError: a trainable float16 parameter.
    """
    if any(p.dtype == torch.float16 and p.requires_grad for p in model.parameters()):
        raise ConfigError(f"{who} cannot train float16 weights (AdamW's epsilon rounds to 0 in "
                          f"float16 and the loss turns NaN); use dtype=bfloat16, or float32 "
                          f"weights under accelerate's mixed_precision fp16 on a GPU. float16 "
                          f"serves evaluation only.")


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
