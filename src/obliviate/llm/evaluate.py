"""TOFU-style evaluation of a causal LM on a :class:`~obliviate.llm.scenario.TofuScenario`.

Per question: the answer's token-mean NLL, the paraphrase's and the perturbed answers' (truth
ratio), ROUGE-L recall of a greedy generation, and on forget answers exact memorisation and
extraction strength of the teacher-forced greedy predictions. Per set: Prob, ROUGE, truth-ratio
score; model utility is their harmonic mean over the retain and world-facts sets (and TOFU's
real authors when read from files). Sequence MIAs (loss, zlib, min-k%, min-k%++) give AUCs
between forget and held-out authors' QA pairs. Against the retain-only model (its arrays, or
the model itself): forget quality (KS-test p-value of the forget truth ratios), MUSE's
PrivLeak (min-k% AUC relative to the retain-only model's) and the reference-model MIA.

References:
    Maini et al., "TOFU", 2024 (truth ratio, forget quality, model utility); Shi et al.,
    "MUSE", 2024 (PrivLeak with Min-40%); Carlini et al., "Extracting Training Data from Large
    Language Models", USENIX Security 2021 (reference-model attack, extraction); Tirumala et
    al., "Memorization Without Overfitting", NeurIPS 2022 (exact memorisation); Wang et al.,
    "Towards Effective Evaluations and Comparisons for LLM Unlearning Methods", ICLR 2025 (ES
    and EM for unlearning); OpenUnlearning ``src/evals/metrics`` (d3d7cf9).

Fidelity (to OpenUnlearning; the table is ``docs/lm-fidelity.md``, and the tests pin each
figure to values OpenUnlearning's own functions computed on the same model and tokens,
``tests/fixtures/lm_reference.json``):
    - Generation is greedy, stops at the end token, and allows 200 new tokens
      (``generation/default.yaml``); ``scenario.max_new_tokens=0`` keeps obliviate's earlier
      cap (the longest true answer + 4 tokens), a departure named in the leaderboard's legend.
      Departs: an answer stops where the model's context ends (:func:`generation_length`; the
      tiny GPT-2's 256 positions leave about 190 new tokens after a TOFU question).
    - ROUGE is ``rouge_score``'s ROUGE-L recall with stemming (``eval_text_similarity``).
    - ES and EM are computed on the forget answers given their questions, teacher-forced,
      without the answer's end token (``tokenwise_vocab_logprobs`` takes the labelled positions
      ``[:-1]``), as OpenUnlearning does on ``forget10_perturbed``.
    - The MIAs score the answer tokens given the question (``TOFU_MIA`` on ``QADataset``):
      loss and zlib over the answer and its end token (zlib's length: the decoded answer),
      min-k% and min-k%++ without the end token. ``scenario.mia_tokens=qa`` keeps obliviate's
      earlier scoring of every question and answer token, named in the legend.
    - PrivLeak uses Min-40% with forget as members and held-out authors as non-members, and
      the retain-only model's AUC on the same sets as the reference (OpenUnlearning's
      ``privleak`` with ``retain_model_logs``), not MUSE's fixed retrained AUC table.
    - The reference MIA uses the retain-only model as the reference model, as OpenUnlearning's
      TOFU config suggests (``..._retain90``); its AUC is 0.5 for the retain-only model itself.
    - Departs: the prompt is obliviate's "Q: ...\nA:" template for the tiny model, not a chat
      template; the world-facts and real-authors sets are scored as TOFU's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.llm import metrics as M
from obliviate.llm.data import TokenSet, encode_pairs, prompt_text
from obliviate.llm.generation import greedy_cached, uses_generate
from obliviate.llm.profiles import QA

if TYPE_CHECKING:
    from obliviate.llm.scenario import TofuScenario

MIN_K = 0.4  # MUSE's K=40%; OpenUnlearning's min-k default
GENERATION_TOKENS = 200  # new tokens per answer: OpenUnlearning's generation/default.yaml, TOFU's
MIA_TOKENS = ("answer", "qa")  # what TOFU's MIAs score: OpenUnlearning's, or obliviate's earlier


def _batches(s: TokenSet, size: int):
    for i in range(0, len(s), size):
        yield s.ids[i:i + size], s.labels[i:i + size], s.mask[i:i + size]


@torch.no_grad()
def answer_pass(model: nn.Module, tok, questions: list[str], answers: list[str],
                batch_size: int = 64) -> dict[str, np.ndarray]:
    """Per answer given its question: token-mean NLL (end token included), and exact
    memorisation and extraction strength of the teacher-forced greedy predictions of the
    answer's tokens without the end token (OpenUnlearning's ``tokenwise_vocab_logprobs``)."""
    model.eval()
    s = encode_pairs(tok, questions, answers)
    device = next(model.parameters()).device
    nll, em, es = [], [], []
    for ids, labels, mask in _batches(s, batch_size):
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        valid = target != -100
        logp = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1))
        total = -(logp.squeeze(-1) * valid).sum(1)
        nll.append((total / valid.sum(1).clamp(min=1)).cpu())
        pred = logits.argmax(-1)
        for i in range(len(ids)):
            at = valid[i].nonzero().squeeze(1)[:-1]  # the answer without its end token, as OU
            p, t = pred[i][at].cpu().numpy(), target[i][at].cpu().numpy()
            em.append(M.exact_memorisation(p, t))
            es.append(M.extraction_strength(p, t))
    return {"nll": torch.cat(nll).numpy().astype(np.float64), "em": np.array(em),
            "es": np.array(es)}


def answer_nll(model: nn.Module, tok, questions: list[str], answers: list[str],
               batch_size: int = 64) -> np.ndarray:
    """Token-mean NLL of each answer given its question."""
    return answer_pass(model, tok, questions, answers, batch_size)["nll"]


def generate(model: nn.Module, tok, questions: list[str], max_new_tokens: int = 40,
             batch_size: int = 64, temperature: float = 0.0,
             generator: torch.Generator | None = None) -> list[str]:
    """Greedy (or, with ``temperature`` > 0, sampled) answers to ``questions``, up to the end
    token or ``max_new_tokens``."""
    return complete(model, tok, [prompt_text(q, tok) for q in questions], max_new_tokens,
                    batch_size, temperature, generator)


@torch.no_grad()
def complete(model: nn.Module, tok, prompts: list[str], max_new_tokens: int = 40,
             batch_size: int = 64, temperature: float = 0.0,
             generator: torch.Generator | None = None, max_prompt: int | None = None,
             cache: bool = True) -> list[str]:
    """Continuations of raw ``prompts`` (greedy, or sampled at ``temperature`` from
    ``generator`` on the CPU, so a seed gives the same text on any device), up to the end token
    or ``max_new_tokens``; ``max_prompt`` keeps only a prompt's last tokens.

    Greedy answers of a Hugging Face model come from its own key-value cache
    (:func:`~obliviate.llm.generation.greedy_cached`, left-padded batches). Sampling, other
    models, or ``cache=False`` take the cache-free loop: right-padded batches, each step reruns
    the batch (the same tokens, O(length^2) per answer, nothing model-specific).
    """
    model.eval()
    device = next(model.parameters()).device
    answers: list[str] = []
    if cache and temperature == 0 and uses_generate(model):
        ids = [([tok.bos] + tok.encode(p))[-(max_prompt or 0):] for p in prompts]
        return [tok.decode(r).strip() for r in greedy_cached(model, tok, ids, max_new_tokens,
                                                              batch_size)]
    for start in range(0, len(prompts), batch_size):
        ids = [[tok.bos] + tok.encode(p) for p in prompts[start:start + batch_size]]
        if max_prompt is not None:
            ids = [p[-max_prompt:] for p in ids]
        n = len(ids)
        lengths = torch.tensor([len(p) for p in ids], device=device)
        buf = torch.full((n, int(lengths.max()) + max_new_tokens), tok.pad, dtype=torch.long,
                         device=device)
        for i, p in enumerate(ids):
            buf[i, :len(p)] = torch.tensor(p, device=device)
        first = lengths.clone()
        done = torch.zeros(n, dtype=torch.bool, device=device)
        rows = torch.arange(n, device=device)
        for _ in range(max_new_tokens):
            width = int(lengths.max())
            mask = (torch.arange(width, device=device)[None] < lengths[:, None]).long()
            logits = model(input_ids=buf[:, :width], attention_mask=mask).logits
            last = logits[rows, lengths - 1].float()
            if temperature > 0:
                probs = torch.softmax(last / temperature, -1).cpu()
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(device)
            else:
                nxt = last.argmax(-1)
            live = ~done
            buf[rows[live], lengths[live]] = nxt[live]
            lengths = lengths + live.long()
            done |= nxt == tok.eos
            if bool(done.all()):
                break
        for i in range(n):
            answers.append(tok.decode(buf[i, first[i]:lengths[i]].tolist()).strip())
    return answers


def sample_alternates(model: nn.Module, tok, qas: list[QA], k: int, seed: int = 0,
                      rounds: int = 4) -> list[list[str]]:
    """``k`` answers per question sampled from ``model`` at temperature 1 that differ from the
    true answer (AltPO's ``generate.py`` samples 5 at temperature 1). After ``rounds`` tries
    a question keeps whatever it has, padded with repeats, or its true answer."""
    gen = torch.Generator().manual_seed(seed)
    longest = max(len(tok.encode(" " + q.answer)) for q in qas) + 8
    found: list[list[str]] = [[] for _ in qas]
    for _ in range(rounds):
        todo = [i for i, f in enumerate(found) if len(f) < k]
        if not todo:
            break
        for _ in range(k):
            outs = generate(model, tok, [qas[i].question for i in todo], longest,
                            temperature=1.0, generator=gen)
            for i, text in zip(todo, outs, strict=True):
                if text and text != qas[i].answer and len(found[i]) < k:
                    found[i].append(text)
    return [((f or [q.answer]) * k)[:k] for f, q in zip(found, qas, strict=True)]


def question_stats(model: nn.Module, tok, qas: list[QA], *, rouge: bool = True,
                   max_new_tokens: int = GENERATION_TOKENS) -> dict[str, np.ndarray]:
    """Per question: answer, paraphrase and perturbed NLLs, truth ratio, ROUGE-L recall of a
    greedy answer of up to ``max_new_tokens`` (0: the longest true answer + 4, obliviate's
    earlier cap), and the answer's exact memorisation (``em``) and extraction strength
    (``es``)."""
    qs = [q.question for q in qas]
    k = min(len(q.perturbed) for q in qas)
    answer = answer_pass(model, tok, qs, [q.answer for q in qas])
    gt = answer["nll"]
    para = answer_nll(model, tok, qs, [q.paraphrase for q in qas])
    pert = answer_nll(model, tok, [q for q in qs for _ in range(k)],
                      [p for q in qas for p in q.perturbed[:k]]).reshape(len(qas), k)
    out = {"nll": gt, "para_nll": para, "truth_ratio": M.truth_ratio(para, pert),
           "pert_nll_mean": pert.mean(axis=1), "prob_norm": M.normalised_prob(gt, pert),
           "em": answer["em"], "es": answer["es"]}
    if rouge:
        n = generation_length(tok, qas, max_new_tokens, model_context(model))
        gen = generate(model, tok, qs, max_new_tokens=n)
        out["rouge"] = np.array([M.rouge_l_recall(g, q.answer) for g, q in zip(gen, qas,
                                                                               strict=True)])
    return out


def model_context(model: nn.Module) -> int:
    """Positions the model can attend over (GPT-2's ``n_positions``, else
    ``max_position_embeddings``; 2048 where the config names neither)."""
    cfg = getattr(model, "config", None)
    return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
               or 2048)


def generation_length(tok, qas: list[QA], max_new_tokens: int,
                      context: int | None = None) -> int:
    """New tokens generated per answer: ``max_new_tokens``, or with 0 obliviate's earlier cap
    (the longest true answer of ``qas`` + 4 tokens); never past ``context`` positions after the
    longest prompt (the tiny GPT-2 has 256)."""
    n = int(max_new_tokens) or max(len(tok.encode(" " + q.answer)) for q in qas) + 4
    if context is not None:
        longest = max(len(tok.encode(prompt_text(q.question))) + 1 for q in qas)
        n = min(n, context - longest)
    return max(n, 1)


def scenario_max_new_tokens(sc: Any) -> int:
    """The scenario's ``max_new_tokens`` option (:data:`GENERATION_TOKENS` where it has none)."""
    return int(getattr(getattr(sc, "options", None), "max_new_tokens", GENERATION_TOKENS))


def sequence_scores(model: nn.Module, tok, qas: list[QA], k: float = MIN_K,
                    batch_size: int = 64, tokens: str = "answer") -> dict[str, np.ndarray]:
    """MIA scores of each QA pair, oriented so that higher = member.

    ``tokens="answer"`` (OpenUnlearning's ``TOFU_MIA``): the answer's tokens given the question;
    loss and zlib over the answer and its end token, zlib's length that of the decoded answer,
    min-k% and min-k%++ without the end token. ``tokens="qa"`` (obliviate's earlier scoring):
    every token of question and answer, zlib over the whole QA text.
    """
    if tokens not in MIA_TOKENS:
        raise ConfigError(f"mia_tokens must be one of {', '.join(MIA_TOKENS)}; got '{tokens}'.")
    qs, answers = [q.question for q in qas], [q.answer for q in qas]
    if tokens == "qa":
        s = encode_pairs(tok, qs, answers, loss_on_prompt=True)
        texts = [prompt_text(q) + " " + a for q, a in zip(qs, answers, strict=True)]
        return token_set_scores(model, s, texts, k, batch_size)
    s = encode_pairs(tok, qs, answers)
    texts = [tok.decode(tok.encode(" " + a)) for a in answers]
    return token_set_scores(model, s, texts, k, batch_size, drop_last=True)


def vocab_moments(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of log p under p over the last (vocabulary) axis of log-probabilities
    ``logp``: min-k%++'s normalisers (OpenUnlearning's ``MinKPlusPlusAttack``)."""
    p = logp.exp()
    mu = (p * logp).sum(-1)
    return mu, (p * logp ** 2).sum(-1) - mu ** 2


@torch.no_grad()
def token_set_scores(model: nn.Module, s: TokenSet, texts: list[str], k: float = MIN_K,
                     batch_size: int = 64, drop_last: bool = False) -> dict[str, np.ndarray]:
    """Loss, zlib, min-k% and min-k%++ scores of each row of ``s`` (its labelled tokens),
    oriented so that higher = member; ``texts`` are the rows' strings, for zlib.
    ``drop_last``: min-k% and min-k%++ leave out the last labelled token (the end token), as
    OpenUnlearning's ``tokenwise_logprobs`` does."""
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, list[float]] = {"loss": [], "zlib": [], "mink": [], "minkpp": []}
    row = 0
    for ids, labels, mask in _batches(s, batch_size):
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        logp_all = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                                     .float(), -1)
        target = labels[:, 1:]
        valid = target != -100
        logp = logp_all.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        mu, var = vocab_moments(logp_all)
        for i in range(len(ids)):
            at = valid[i].nonzero().squeeze(1)
            lp = logp[i][at].cpu().numpy()
            loss = -float(lp.mean())
            out["loss"].append(-loss)
            out["zlib"].append(-M.zlib_ratio(loss, texts[row]))
            if drop_last and len(at) > 1:
                at = at[:-1]
            lp, m, v = logp[i][at].cpu().numpy(), mu[i][at].cpu().numpy(), var[i][at].cpu().numpy()
            out["mink"].append(M.min_k(lp, k))
            out["minkpp"].append(M.min_k_plus_plus(lp, m, v, k))
            row += 1
    return {name: np.array(v) for name, v in out.items()}


def evaluate_lm(model: nn.Module, sc: TofuScenario, reference: Any = None
                ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """All TOFU figures for ``model`` on ``sc``: (metrics, per-example arrays).

    Args:
        reference: the retain-only model, or the arrays its own ``evaluate_lm`` returned, or
            (the older form) its forget truth ratios alone. With the model or its arrays the
            metrics include ``forget_quality``, ``privleak`` and ``mia_reference``; with the
            truth ratios, ``forget_quality`` only.
    """
    if hasattr(sc, "evaluate"):  # scenarios with their own measures (MUSE)
        return sc.evaluate(model, reference)
    tok = sc.tokenizer
    gen = scenario_max_new_tokens(sc)
    f = question_stats(model, tok, sc.forget_qa, max_new_tokens=gen)
    r = question_stats(model, tok, sc.retain_eval_qa, max_new_tokens=gen)
    w = question_stats(model, tok, sc.world_qa, max_new_tokens=gen)
    metrics = {
        "forget_prob": float(np.exp(-f["nll"]).mean()),
        "forget_rouge": float(f["rouge"].mean()),
        "forget_truth_ratio": M.truth_ratio_score(f["truth_ratio"], forget=True),
        "forget_es": float(f["es"].mean()),
        "forget_em": float(f["em"].mean()),
        "retain_prob": float(np.exp(-r["nll"]).mean()),
        "retain_rouge": float(r["rouge"].mean()),
        "retain_truth_ratio": M.truth_ratio_score(r["truth_ratio"]),
        "world_prob": float(w["prob_norm"].mean()),
        "world_rouge": float(w["rouge"].mean()),
        "world_truth_ratio": M.truth_ratio_score(w["truth_ratio"]),
    }
    sets = ["retain", "world"]
    if sc.real_qa:  # TOFU's real authors, scored like the world facts
        a = question_stats(model, tok, sc.real_qa, max_new_tokens=gen)
        metrics.update({"real_prob": float(a["prob_norm"].mean()),
                        "real_rouge": float(a["rouge"].mean()),
                        "real_truth_ratio": M.truth_ratio_score(a["truth_ratio"])})
        sets.append("real")
    metrics["model_utility"] = M.model_utility(
        [metrics[f"{s}_{m}"] for s in sets for m in ("prob", "rouge", "truth_ratio")])
    mia_tokens = getattr(sc.options, "mia_tokens", "answer")
    members = sequence_scores(model, tok, sc.forget_qa, tokens=mia_tokens)
    others = sequence_scores(model, tok, sc.holdout_qa, tokens=mia_tokens)
    for name in members:
        metrics[f"mia_{name}"] = M.mia_auc(members[name], others[name])
    arrays = {"forget_truth_ratio": f["truth_ratio"], "forget_nll": f["nll"],
              **{f"forget_mia_{k}": v for k, v in members.items()},
              **{f"holdout_mia_{k}": v for k, v in others.items()}}
    if isinstance(reference, nn.Module):
        reference = evaluate_lm(reference, sc)[1]
    if isinstance(reference, Mapping):
        metrics.update(reference_metrics(arrays, reference))
    elif reference is not None:
        metrics["forget_quality"] = M.forget_quality(f["truth_ratio"], np.asarray(reference))
    return metrics, arrays


def reference_metrics(arrays: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
                      ) -> dict[str, float]:
    """Forget quality, PrivLeak and the reference-model MIA of a model's :func:`evaluate_lm`
    arrays against the retain-only model's (the retain-only model against itself gives 1.0,
    0.0 and 0.5)."""
    out = {}
    if "forget_truth_ratio" in arrays and "forget_truth_ratio" in reference:
        out["forget_quality"] = M.forget_quality(arrays["forget_truth_ratio"],
                                                 reference["forget_truth_ratio"])
    auc_model = M.mia_auc(arrays["forget_mia_mink"], arrays["holdout_mia_mink"])
    auc_retain = M.mia_auc(reference["forget_mia_mink"], reference["holdout_mia_mink"])
    # the "loss" score is -NLL, so model score minus reference score = reference NLL - model NLL
    ref_forget = M.reference_scores(-arrays["forget_mia_loss"], -reference["forget_mia_loss"])
    ref_holdout = M.reference_scores(-arrays["holdout_mia_loss"], -reference["holdout_mia_loss"])
    return {**out, "privleak": M.privleak(auc_model, auc_retain),
            "mia_reference": M.mia_auc(ref_forget, ref_holdout)}
