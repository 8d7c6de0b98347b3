"""TOFU's measures and sequence-level MIA statistics as plain functions of numbers and strings.

Nothing here runs a model: :mod:`obliviate.llm.evaluate` computes the per-question NLLs and the
generations, and these functions turn them into the reported figures.

References:
    Maini et al., "TOFU", 2024 (code locuslab/tofu); OpenUnlearning, locuslab/open-unlearning
    ``src/evals/metrics`` at d3d7cf9; Shi et al., "MUSE", 2024 (swj0419/muse_bench ``metrics``
    at fcd6651). The table of which function matches which reference file is
    ``docs/lm-fidelity.md``.

Fidelity (pinned to values the reference code computed: ``tests/fixtures/lm_reference*.json``):
    - ROUGE-L is the ``rouge_score`` package's (pinned in ``constraints.txt``): recall with the
      Porter stemmer for TOFU/OpenUnlearning (``eval_text_similarity``), F-measure without it
      for MUSE (``metrics/logger.py``). No hand-written twin is kept.
    - Min-K%++ clamps the variance of log p at 1e-6 before the square root
      (OpenUnlearning's ``MinKPlusPlusAttack``).
    - Extraction strength gives 1/n, not 0, when not even the last token is predicted, as
      OpenUnlearning's loop (which stops at k = n - 1) does.
    - Truth ratio, forget quality, model utility, normalised probability, the MIA statistics and
      PrivLeak's formula follow the references as they were (``docs/lm-fidelity.md``).
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from obliviate.errors import ConfigError

MINKPP_VAR_FLOOR = 1e-6  # OpenUnlearning's clamp of the variance in min-k%++


@lru_cache(maxsize=2)
def _rouge_scorer(stem: bool):
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ConfigError("ROUGE-L is computed with the rouge_score package, as TOFU's and "
                          "MUSE's code do: pip install 'obliviate[llm]'.") from None
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)


def rouge_l(prediction: str, reference: str, *, stem: bool):
    """``rouge_score``'s ROUGE-L of ``prediction`` against ``reference`` (its ``Score``:
    precision, recall, fmeasure). Tokens are lower-cased runs of [a-z0-9] (so "Vasquez's" is two
    tokens); ``stem`` Porter-stems those longer than 3 characters."""
    return _rouge_scorer(bool(stem)).score(reference, prediction)["rougeL"]


def rouge_l_recall(prediction: str, reference: str) -> float:
    """TOFU's and OpenUnlearning's ROUGE: ``rougeL`` recall with ``use_stemmer=True`` (longest
    common subsequence of tokens / tokens in ``reference``)."""
    return float(rouge_l(prediction, reference, stem=True).recall)


def rouge_l_f1(prediction: str, reference: str) -> float:
    """MUSE's ROUGE (VerbMem, KnowMem): ``rougeL`` F-measure, without stemming."""
    return float(rouge_l(prediction, reference, stem=False).fmeasure)


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
    from scipy.stats import ks_2samp  # here, not at the top: scipy.stats is slow to import

    return float(ks_2samp(np.asarray(unlearned_r), np.asarray(retain_r)).pvalue)


def model_utility(values: list[float]) -> float:
    """Harmonic mean of the utility measures (0 when any is 0)."""
    from scipy.stats import hmean

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


def min_k_plus_plus(token_logp: np.ndarray, mu: np.ndarray, var: np.ndarray, k: float
                    ) -> float:
    """Min-K%++ (Zhang et al. 2024): min-k of (log p(x_t) - mu_t) / sigma_t, where mu_t and
    sigma_t^2 = ``var`` are the mean and variance of log p over the vocabulary at position t;
    the variance is clamped at 1e-6 first, as OpenUnlearning does."""
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=float), MINKPP_VAR_FLOOR))
    return min_k((np.asarray(token_logp, dtype=float) - np.asarray(mu, dtype=float)) / sd, k)


def zlib_ratio(mean_nll: float, text: str) -> float:
    """The zlib attack's statistic (Carlini et al. 2021): NLL / zlib-compressed length."""
    return float(mean_nll) / len(zlib.compress(text.encode("utf-8")))


def mia_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """ROC AUC of telling members from non-members, higher scores meaning "member"."""
    from sklearn.metrics import roc_auc_score

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
    prediction is right; 1 when the whole answer is predicted. k stops at n - 1, as in
    OpenUnlearning's loop, so an answer whose last token is wrong scores 1/n; 0 for an empty
    answer.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    n = len(target)
    if n == 0:
        return 0.0
    wrong = np.flatnonzero(predicted != target)
    k = 0 if len(wrong) == 0 else min(int(wrong[-1]) + 1, n - 1)
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
