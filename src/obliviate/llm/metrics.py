"""TOFU's measures and sequence-level MIA statistics as plain functions of numbers and strings.

Nothing here runs a model: :mod:`obliviate.llm.evaluate` computes the per-question NLLs and the
generations, and these functions turn them into the reported figures.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
from scipy.stats import hmean, ks_2samp
from sklearn.metrics import roc_auc_score

_WORD = re.compile(r"[a-z0-9']+")


def _lcs(prediction: str, reference: str) -> tuple[int, int, int]:
    """(longest common subsequence of words, words in prediction, words in reference)."""
    pred, ref = _WORD.findall(prediction.lower()), _WORD.findall(reference.lower())
    prev = [0] * (len(pred) + 1)
    for r in ref:
        cur = [0]
        for j, p in enumerate(pred):
            cur.append(prev[j] + 1 if r == p else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1], len(pred), len(ref)


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall: longest common subsequence of words / words in ``reference``.

    Words are lower-cased runs of letters, digits and apostrophes (TOFU reports this recall).
    """
    lcs, _, n_ref = _lcs(prediction, reference)
    return lcs / n_ref if n_ref else 0.0


def rouge_l_f1(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (MUSE's ``rougeL``): harmonic mean of LCS recall and precision."""
    lcs, n_pred, n_ref = _lcs(prediction, reference)
    if not lcs:
        return 0.0
    recall, precision = lcs / n_ref, lcs / n_pred
    return 2 * recall * precision / (recall + precision)


def truth_ratio(paraphrase_nll: np.ndarray, perturbed_nll: np.ndarray) -> np.ndarray:
    """R = mean-P(perturbed) / P(paraphrase) per question, with P = exp(-token-mean NLL).

    Perturbed NLLs (N, K) are averaged first, as TOFU's code does.
    """
    return np.exp(np.asarray(paraphrase_nll) - np.asarray(perturbed_nll).mean(axis=1))


def truth_ratio_score(r: np.ndarray, forget: bool = False) -> float:
    """TOFU's summary: mean max(0, 1 - R) on retain/world data, mean min(R, 1/R) on forget."""
    r = np.asarray(r, dtype=float)
    return float(np.mean(np.minimum(r, 1 / r)) if forget else np.mean(np.maximum(0.0, 1 - r)))


def forget_quality(unlearned_r: np.ndarray, retain_r: np.ndarray) -> float:
    """p-value of the two-sample KS test between the unlearned and retain-only models' truth
    ratios on the forget questions; high (> 0.05) means indistinguishable from retain-only."""
    return float(ks_2samp(np.asarray(unlearned_r), np.asarray(retain_r)).pvalue)


def model_utility(values: list[float]) -> float:
    """Harmonic mean of the utility measures (0 when any is 0)."""
    v = np.asarray(values, dtype=float)
    return 0.0 if (v <= 0).any() else float(hmean(v))


def normalised_prob(true_nll: np.ndarray, perturbed_nll: np.ndarray) -> np.ndarray:
    """P(true) / (P(true) + sum P(perturbed)), per question (TOFU's world-facts Prob)."""
    t = np.exp(-np.asarray(true_nll))
    return t / (t + np.exp(-np.asarray(perturbed_nll)).sum(axis=1))


def min_k(token_logp: np.ndarray, k: float) -> float:
    """Min-K% Prob (Shi et al. 2024): mean log-prob of the k fraction of least likely tokens."""
    x = np.sort(np.asarray(token_logp, dtype=float))
    n = max(1, int(len(x) * k))
    return float(x[:n].mean())


def min_k_plus_plus(token_logp: np.ndarray, mu: np.ndarray, sigma: np.ndarray, k: float
                    ) -> float:
    """Min-K%++ (Zhang et al. 2024): min-k of (log p(x_t) - mu_t) / sigma_t, where mu_t and
    sigma_t are the mean and spread of log p over the vocabulary at position t."""
    z = (np.asarray(token_logp) - np.asarray(mu)) / np.maximum(np.asarray(sigma), 1e-8)
    return min_k(z, k)


def zlib_ratio(mean_nll: float, text: str) -> float:
    """The zlib attack's statistic (Carlini et al. 2021): NLL / zlib-compressed length."""
    return float(mean_nll) / len(zlib.compress(text.encode("utf-8")))


def mia_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """ROC AUC of telling members from non-members, higher scores meaning "member"."""
    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    return float(roc_auc_score(y, np.r_[member_scores, nonmember_scores]))


def exact_memorisation(predicted: np.ndarray, target: np.ndarray) -> float:
    """Exact memorisation (Tirumala et al. 2022): share of answer tokens whose teacher-forced
    greedy prediction is the true token. 0 for an empty answer."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    return float((predicted == target).mean()) if len(target) else 0.0


def extraction_strength(predicted: np.ndarray, target: np.ndarray) -> float:
    """Extraction strength (Carlini et al. 2021, as Wang et al. 2025 use it for unlearning):
    1 - k / n for the shortest true prefix of k tokens after which every teacher-forced greedy
    prediction is right; 1 when the whole answer is predicted, 0 when even the last token is
    wrong.

    OpenUnlearning's loop stops at k = n - 1 and so gives 1/n instead of 0 in that last case;
    this follows the definition.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    n = len(target)
    if n == 0:
        return 0.0
    wrong = np.flatnonzero(predicted != target)
    k = 0 if len(wrong) == 0 else int(wrong[-1]) + 1
    return 1.0 - k / n


def privleak(auc_model: float, auc_retain: float) -> float:
    """MUSE's PrivLeak in percent: (AUC_model - AUC_retain) / AUC_retain x 100 with MUSE's AUC
    orientation (forget as the positive class of "lower loss is non-member"), i.e. 1 minus
    the member-higher AUC :func:`mia_auc` gives. 0: as private as the retain-only model;
    large negative: the forget set still leaks (under-unlearning); positive: over-unlearning.
    """
    model, retain = 1.0 - float(auc_model), 1.0 - float(auc_retain)
    return (model - retain) / max(retain, 1e-10) * 100.0


def reference_scores(model_nll: np.ndarray, reference_nll: np.ndarray) -> np.ndarray:
    """The reference-model attack's score (Carlini et al. 2021; MIMIR's and OpenUnlearning's
    ``mia_reference``): reference NLL minus the model's, oriented so that higher = member."""
    return np.asarray(reference_nll, dtype=float) - np.asarray(model_nll, dtype=float)
