"""The ``muse`` scenario: MUSE's News or Books corpus read from a local folder, and its measures.

The original is fine-tuned on the forget and retain texts (``raw/forget``, ``raw/retain1``,
``raw/retain2``), the retain-only model on the retain texts; methods get ``raw/retain1`` as
their retain set, as MUSE's baselines do. Measures: VerbMem (ROUGE-L F1 of greedy
continuations of ``verbmem/forget`` prompts), KnowMem on forget and retain QA (ROUGE-L F1 of
answers after MUSE's in-context examples; model utility is KnowMem-retain), the four MIAs on
``privleak/forget`` vs ``privleak/holdout``, and, against the retain-only model, PrivLeak and
the reference-model MIA.

References:
    Shi, Lee, Huang, Malladi, Zhao, Holtzman, Liu, Zettlemoyer, Smith, Zhang, "MUSE: Machine
    Unlearning Six-Way Evaluation for Language Models", 2024 (arXiv 2407.06460); code
    swj0419/muse_bench (``eval.py``, ``metrics/*.py``) at fcd6651.

Fidelity:
    - Follows: the splits, the "Question: ...\\nAnswer: ..." few-shot prompt of KnowMem, the
      answer cut at a blank line or "Question", ROUGE-L F-measure of the ``rouge_score``
      package without stemming (``metrics/logger.py``), Min-40% for PrivLeak.
    - Follows: VerbMem's ground truth is the first 128 tokens with the BOS counted (127 of
      text; :func:`verbmem_truth`), as ``metrics/verbmem.py`` cuts it.
    - Follows: the MIAs score every token of a text (``metrics/privleak.py``); min-k%++,
      which MUSE's code lacks, is OpenUnlearning's (variance clamped at 1e-6).
    - Departs: generation stops at the tokenizer's end token (the byte tokenizer's is the
      newline, so a VerbMem continuation ends at its first line break), and at 128 new tokens
      as MUSE's; texts longer than the model's context are cut to their last tokens.
    - Departs: PrivLeak's reference AUC is our retain-only model's, not MUSE's table for its
      Llama-2 retrain model (OpenUnlearning does the same with its retain logs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from obliviate.cache import ModelCache
from obliviate.config import build_config, config_dict
from obliviate.data.catalog import SCENARIOS, ScenarioSpec
from obliviate.errors import ConfigError, DataError, ForgetSpecError
from obliviate.llm import metrics as M
from obliviate.llm.data import TokenSet, encode_texts
from obliviate.llm.evaluate import complete, model_context, token_set_scores
from obliviate.llm.files import read_muse
from obliviate.llm.model import TINY, build_lm, model_blocks, resolve_device, tokenizer_for
from obliviate.llm.scenario import TofuOptions, TofuRecipe, _hash
from obliviate.llm.training import train_lm

MUSE_FORGET = ("raw:forget",)
VERBMEM_TOKENS, KNOWMEM_TOKENS = 128, 32


def _texts(rows: list[dict]) -> list[str]:
    return [str(r["text"]) for r in rows]


@dataclass
class MuseScenario:
    """MUSE's corpus split into forget / retain / holdout texts and QA; build with
    :func:`load_muse`."""

    options: TofuOptions
    recipe: TofuRecipe
    forget_spec: str
    seed: int
    data: dict[str, dict[str, list[dict]]] = field(repr=False)
    tokenizer: Any = field(repr=False, default=None)
    name: str = "muse"
    task: str = "lm"
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        raw = self.data["raw"]
        self.forget_texts = _texts(raw["forget"])
        self.retain_texts = _texts(raw["retain1"])
        self.all_retain_texts = self.retain_texts + _texts(raw["retain2"])
        self.device = resolve_device(self.options.device)

    # ------------------------------------------------------------------ token sets
    def _windows(self, texts: list[str]) -> TokenSet:
        return encode_texts(self.tokenizer, texts, self.recipe.context)

    def forget_set(self) -> TokenSet:
        return self._windows(self.forget_texts)

    def retain_set(self) -> TokenSet:
        return self._windows(self.retain_texts)

    def forget_idk_set(self) -> None:
        return None  # MUSE's forget set is text, not questions: no refusals

    def forget_alt_set(self, model: nn.Module | None = None) -> None:
        raise DataError("MUSE's forget set is text, not questions: it has no alternative "
                        "answers for altpo; drop -m altpo.")

    def n_blocks(self) -> int:
        return model_blocks(self.options.model, self.options.layers)

    # ------------------------------------------------------------------ facts
    def describe(self) -> dict[str, Any]:
        sizes = {f"{c}/{s}": len(rows) for c, splits in self.data.items()
                 for s, rows in splits.items()}
        return {"scenario": self.name, "options": config_dict(self.options),
                "recipe": config_dict(self.recipe), "forget": self.forget_spec, "sizes": sizes,
                "split_hashes": {"forget": _hash(self.forget_texts),
                                 "retain": _hash(self.all_retain_texts)}}

    def fingerprint(self, kind: str, seed: int) -> str:
        import hashlib
        import json

        o = config_dict(self.options)
        parts = {"kind": kind, "seed": seed, "muse": True, "tokenizer": o["tokenizer"],
                 "model": {k: o[k] for k in ("model", "width", "layers", "heads")},
                 "recipe": config_dict(self.recipe),
                 "texts": _hash(self.forget_texts + self.all_retain_texts if kind == "original"
                                else self.all_retain_texts)}
        blob = json.dumps(parts, sort_keys=True).encode()
        return f"lm-muse-{kind}-{hashlib.sha256(blob).hexdigest()[:20]}"

    # ------------------------------------------------------------------ models
    def new_model(self, seed: int = 0) -> nn.Module:
        o = self.options
        return build_lm(o.model, seed, width=o.width, layers=o.layers, heads=o.heads,
                        context=max(self.recipe.context, 256),
                        tokenizer=self.tokenizer).to(self.device)

    def train_original_timed(self, seed: int = 0, cache: Path | None = None):
        return self._finetuned("original", self.forget_texts + self.all_retain_texts, seed, cache)

    def train_retrained_timed(self, seed: int = 0, cache: Path | None = None):
        return self._finetuned("retrained", self.all_retain_texts, seed, cache)

    def train_original(self, seed: int = 0, cache: Path | None = None) -> nn.Module:
        return self.train_original_timed(seed, cache)[0]

    def train_retrained(self, seed: int = 0, cache: Path | None = None) -> nn.Module:
        return self.train_retrained_timed(seed, cache)[0]

    def _finetuned(self, kind: str, texts: list[str], seed: int, cache: Path | None):
        store = ModelCache(Path(cache)) if cache is not None else None
        fp = self.fingerprint(kind, seed)
        if store is not None:
            hit = store.load(fp, self.new_model(seed))
            if hit is not None:
                return hit[0], float(hit[1].get("train_seconds", float("nan")))
        model = self.new_model(seed)
        start = time.perf_counter()
        r = self.recipe
        train_lm(model, self._windows(texts), lr=r.finetune_lr, batch_size=r.batch_size,
                 seed=seed + 1, epochs=r.finetune_epochs, owner=kind)
        seconds = time.perf_counter() - start
        if store is not None:
            store.write(fp, {k: v.clone() for k, v in model.state_dict().items()},
                         {"kind": kind, "seed": seed, "train_seconds": seconds,
                          "scenario": self.describe()})
        return model, seconds

    # ------------------------------------------------------------------ measures
    def _knowmem(self, model: nn.Module, split: str) -> float | None:
        qa = self.data.get("knowmem", {}).get(split)
        if not qa:
            return None
        icl = self.data["knowmem"].get(f"{split}_icl", [])
        head = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in icl)
        prompts = [f"{head}Question: {r['question']}\nAnswer: " for r in qa]
        outs = complete(model, self.tokenizer, prompts, KNOWMEM_TOKENS,
                        max_prompt=_max_prompt(model, KNOWMEM_TOKENS))
        cut = [o.split("\n\n")[0].split("Question")[0] for o in outs]
        return float(np.mean([M.rouge_l_f1(o, str(r["answer"])) for o, r in zip(cut, qa,
                                                                                  strict=True)]))

    def evaluate(self, model: nn.Module, reference: Any = None
                 ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """MUSE's measures of ``model``; ``reference``: the retain-only model or its arrays."""
        from obliviate.llm.evaluate import reference_metrics

        tok = self.tokenizer
        verb = self.data["verbmem"]["forget"]
        outs = complete(model, tok, [str(r["prompt"]) for r in verb], VERBMEM_TOKENS,
                        max_prompt=_max_prompt(model, VERBMEM_TOKENS))
        gts = [verbmem_truth(tok, str(r["gt"])) for r in verb]
        metrics: dict[str, float] = {
            "verbmem_f": float(np.mean([M.rouge_l_f1(o, g) for o, g in zip(outs, gts,
                                                                             strict=True)]))}
        for key, split in (("knowmem_f", "forget_qa"), ("knowmem_r", "retain_qa")):
            value = self._knowmem(model, split)
            if value is not None:
                metrics[key] = value
        metrics["model_utility"] = metrics.get("knowmem_r", float("nan"))
        arrays: dict[str, np.ndarray] = {}
        for split, prefix in (("forget", "forget"), ("holdout", "holdout")):
            texts = _texts(self.data["privleak"][split])
            scores = token_set_scores(model, self._windows_first(texts), texts)
            arrays.update({f"{prefix}_mia_{k}": v for k, v in scores.items()})
        for name in ("loss", "zlib", "mink", "minkpp"):
            metrics[f"mia_{name}"] = M.mia_auc(arrays[f"forget_mia_{name}"],
                                               arrays[f"holdout_mia_{name}"])
        if isinstance(reference, nn.Module):
            reference = self.evaluate(reference)[1]
        if reference is not None:
            metrics.update(reference_metrics(arrays, reference))
        return metrics, arrays

    def _windows_first(self, texts: list[str]) -> TokenSet:
        """One row per text: its first ``context`` tokens (the MIAs score whole texts)."""
        from obliviate.llm.data import IGNORE, _pad

        rows = [([self.tokenizer.bos] + self.tokenizer.encode(t))[:self.recipe.context]
                for t in texts]
        return _pad(self.tokenizer, rows, [[IGNORE] + r[1:] for r in rows], None)


def verbmem_truth(tok, gt: str, n: int = VERBMEM_TOKENS) -> str:
    """VerbMem's ground truth as MUSE cuts it (``metrics/verbmem.py``): the first ``n`` tokens
    of ``gt`` tokenised with the tokenizer's special tokens, so a tokenizer that adds a BOS
    keeps ``n - 1`` tokens of text, decoded without the special tokens. obliviate's byte
    tokenizer has no such call; its prompts open with BOS, so it keeps ``n - 1`` too."""
    hf = getattr(tok, "tok", None)
    if hf is not None:
        ids = hf(gt, add_special_tokens=True)["input_ids"][:n]
        return hf.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
    return tok.decode(tok.encode(gt)[:n - 1])


def _max_prompt(model: nn.Module, new_tokens: int) -> int:
    """Prompt tokens that fit the model's context beside ``new_tokens``."""
    return max(8, model_context(model) - new_tokens - 1)


def load_muse(forget: str = "raw:forget", seed: int = 0, *, recipe: dict | None = None,
              **options: Any) -> MuseScenario:
    """The ``muse`` scenario over the MUSE corpus folder ``data`` (required).

    Args:
        forget: ``raw:forget`` (MUSE's forget set is fixed).
        seed: recorded; MUSE's splits do not depend on it.
        recipe: overrides of :class:`~obliviate.llm.scenario.TofuRecipe`.
        **options: :class:`~obliviate.llm.scenario.TofuOptions` (``data``, ``model``,
            ``tokenizer``, ``device``, ...).
    """
    if forget not in MUSE_FORGET:
        raise ForgetSpecError(f"Forget spec '{forget}' is not MUSE's: its forget set is fixed; "
                              f"pass --forget raw:forget.")
    opts = build_config(TofuOptions, options, "scenario muse")
    rec = build_config(TofuRecipe, recipe, "recipe")
    if not opts.data:
        raise ConfigError("The muse scenario reads MUSE's files: pass scenario.data=PATH of a "
                          "corpus folder (muse_bench's data/news, or the Hub's MUSE-News).")
    tok = tokenizer_for(opts.model, opts.tokenizer)
    if opts.model == TINY and rec.context > 256:
        raise ConfigError("recipe.context above 256 needs a model with a longer context.")
    return MuseScenario(opts, rec, forget, seed, read_muse(Path(opts.data)), tok)


SCENARIOS.add("muse", ScenarioSpec(
    name="muse",
    description="MUSE's News or Books corpus from a local folder (scenario.data=PATH): VerbMem, "
                "KnowMem, PrivLeak; the tiny GPT-2 or a local HF causal LM",
    source="MUSE's files (muse_bench data/news, or the Hub's parquet)", options=TofuOptions,
    build=None, recipes={}, forgets="raw:forget", task="lm", default_forget="raw:forget",
    load=load_muse, models=("tiny-gpt2", "a local HF folder"),
))
