"""TOFU-style evaluation of a causal LM on a :class:`~obliviate.llm.scenario.TofuScenario`.

Per question: the answer's token-mean NLL, the paraphrase's and the perturbed answers' (truth
ratio), and ROUGE-L recall of a greedy generation. Per set: Prob, ROUGE, truth-ratio score;
model utility is their harmonic mean over the retain and world-facts sets. Forget quality is
the KS-test p-value against the retain-only model's forget truth ratios. Sequence MIAs (loss,
zlib, min-k%, min-k%++) give AUCs between forget and held-out authors' QA pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from obliviate.llm import metrics as M
from obliviate.llm.data import TokenSet, encode_pairs, prompt_text
from obliviate.llm.losses import sequence_nll
from obliviate.llm.profiles import QA

if TYPE_CHECKING:
    from obliviate.llm.scenario import TofuScenario

MIN_K = 0.4  # MUSE's K=40%; OpenUnlearning's min-k default


def _batches(s: TokenSet, size: int):
    for i in range(0, len(s), size):
        yield s.ids[i:i + size], s.labels[i:i + size], s.mask[i:i + size]


@torch.no_grad()
def answer_nll(model: nn.Module, tok, questions: list[str], answers: list[str],
               batch_size: int = 64) -> np.ndarray:
    """Token-mean NLL of each answer given its question."""
    model.eval()
    s = encode_pairs(tok, questions, answers)
    out = []
    for batch in _batches(s, batch_size):
        total, n = sequence_nll(model, batch)
        out.append((total / n.clamp(min=1)).cpu())
    return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def generate(model: nn.Module, tok, questions: list[str], max_new_tokens: int = 40,
             batch_size: int = 64) -> list[str]:
    """Greedy answers to ``questions``, up to the end token or ``max_new_tokens``.

    Right-padded batches without a key-value cache: each step reruns the batch, which is cheap
    for short answers and needs nothing model-specific.
    """
    model.eval()
    device = next(model.parameters()).device
    answers: list[str] = []
    for start in range(0, len(questions), batch_size):
        prompts = [[tok.bos] + tok.encode(prompt_text(q))
                   for q in questions[start:start + batch_size]]
        n = len(prompts)
        lengths = torch.tensor([len(p) for p in prompts], device=device)
        buf = torch.full((n, int(lengths.max()) + max_new_tokens), tok.pad, dtype=torch.long,
                         device=device)
        for i, p in enumerate(prompts):
            buf[i, :len(p)] = torch.tensor(p, device=device)
        first = lengths.clone()
        done = torch.zeros(n, dtype=torch.bool, device=device)
        rows = torch.arange(n, device=device)
        for _ in range(max_new_tokens):
            width = int(lengths.max())
            mask = (torch.arange(width, device=device)[None] < lengths[:, None]).long()
            logits = model(input_ids=buf[:, :width], attention_mask=mask).logits
            nxt = logits[rows, lengths - 1].argmax(-1)
            live = ~done
            buf[rows[live], lengths[live]] = nxt[live]
            lengths = lengths + live.long()
            done |= nxt == tok.eos
            if bool(done.all()):
                break
        for i in range(n):
            answers.append(tok.decode(buf[i, first[i]:lengths[i]].tolist()).strip())
    return answers


def question_stats(model: nn.Module, tok, qas: list[QA], *, rouge: bool = True
                   ) -> dict[str, np.ndarray]:
    """Per question: answer, paraphrase and perturbed NLLs, truth ratio, ROUGE-L recall."""
    qs = [q.question for q in qas]
    k = min(len(q.perturbed) for q in qas)
    gt = answer_nll(model, tok, qs, [q.answer for q in qas])
    para = answer_nll(model, tok, qs, [q.paraphrase for q in qas])
    pert = answer_nll(model, tok, [q for q in qs for _ in range(k)],
                      [p for q in qas for p in q.perturbed[:k]]).reshape(len(qas), k)
    out = {"nll": gt, "para_nll": para, "truth_ratio": M.truth_ratio(para, pert),
           "pert_nll_mean": pert.mean(axis=1), "prob_norm": M.normalised_prob(gt, pert)}
    if rouge:
        longest = max(len(tok.encode(" " + q.answer)) for q in qas)
        gen = generate(model, tok, qs, max_new_tokens=longest + 4)
        out["rouge"] = np.array([M.rouge_l_recall(g, q.answer) for g, q in zip(gen, qas,
                                                                               strict=True)])
    return out


@torch.no_grad()
def sequence_scores(model: nn.Module, tok, qas: list[QA], k: float = MIN_K,
                    batch_size: int = 64) -> dict[str, np.ndarray]:
    """MIA scores of each QA text (question and answer), oriented so that higher = member."""
    model.eval()
    s = encode_pairs(tok, [q.question for q in qas], [q.answer for q in qas],
                     loss_on_prompt=True)
    device = next(model.parameters()).device
    out: dict[str, list[float]] = {"loss": [], "zlib": [], "mink": [], "minkpp": []}
    texts = [prompt_text(q.question) + " " + q.answer for q in qas]
    row = 0
    for ids, labels, mask in _batches(s, batch_size):
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        logp_all = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                                     .float(), -1)
        target = labels[:, 1:]
        valid = target != -100
        logp = logp_all.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        p = logp_all.exp()
        mu = (p * logp_all).sum(-1)
        sigma = ((p * logp_all ** 2).sum(-1) - mu ** 2).clamp(min=0).sqrt()
        for i in range(len(ids)):
            v = valid[i]
            lp, m, sd = logp[i][v].cpu().numpy(), mu[i][v].cpu().numpy(), sigma[i][v].cpu().numpy()
            loss = -float(lp.mean())
            out["loss"].append(-loss)
            out["zlib"].append(-M.zlib_ratio(loss, texts[row]))
            out["mink"].append(M.min_k(lp, k))
            out["minkpp"].append(M.min_k_plus_plus(lp, m, sd, k))
            row += 1
    return {name: np.array(v) for name, v in out.items()}


def evaluate_lm(model: nn.Module, sc: TofuScenario, retain_truth_ratio: np.ndarray | None = None
                ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """All TOFU figures for ``model`` on ``sc``: (metrics, per-example arrays).

    ``retain_truth_ratio`` is the retain-only model's forget truth ratios; with it, the
    metrics include ``forget_quality``.
    """
    tok = sc.tokenizer
    f = question_stats(model, tok, sc.forget_qa)
    r = question_stats(model, tok, sc.retain_eval_qa)
    w = question_stats(model, tok, sc.world_qa)
    metrics = {
        "forget_prob": float(np.exp(-f["nll"]).mean()),
        "forget_rouge": float(f["rouge"].mean()),
        "forget_truth_ratio": M.truth_ratio_score(f["truth_ratio"], forget=True),
        "retain_prob": float(np.exp(-r["nll"]).mean()),
        "retain_rouge": float(r["rouge"].mean()),
        "retain_truth_ratio": M.truth_ratio_score(r["truth_ratio"]),
        "world_prob": float(w["prob_norm"].mean()),
        "world_rouge": float(w["rouge"].mean()),
        "world_truth_ratio": M.truth_ratio_score(w["truth_ratio"]),
    }
    metrics["model_utility"] = M.model_utility(
        [metrics[f"{s}_{m}"] for s in ("retain", "world") for m in ("prob", "rouge",
                                                                     "truth_ratio")])
    members = sequence_scores(model, tok, sc.forget_qa)
    others = sequence_scores(model, tok, sc.holdout_qa)
    for name in members:
        metrics[f"mia_{name}"] = M.mia_auc(members[name], others[name])
    if retain_truth_ratio is not None:
        metrics["forget_quality"] = M.forget_quality(f["truth_ratio"], retain_truth_ratio)
    arrays = {"forget_truth_ratio": f["truth_ratio"], "forget_nll": f["nll"],
              **{f"forget_mia_{k}": v for k, v in members.items()},
              **{f"holdout_mia_{k}": v for k, v in others.items()}}
    return metrics, arrays
