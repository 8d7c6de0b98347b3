"""LiRA and U-LiRA: per-example likelihood-ratio membership inference on shadow-model confidences.

Plain numpy/scipy, independent of training: the caller trains the shadow and target models and
passes one confidence per (model, example), normally the logit-scaled confidence of
:func:`obliviate.evaluate.challenge.logit_scaled_confidence`, averaged over augmentations if any.

LiRA fits, per example, a Gaussian to the confidences of shadow models that trained on it (IN)
and one to those that did not (OUT), and scores a target by a likelihood ratio. U-LiRA is the same
test with IN = "trained on the example, then unlearned it"; accuracy 0.5 is its ideal.

Estimation, shared by both attacks:

* Location: the per-example mean (the paper's Algorithm 1; the released ``plot.py`` uses the
  median). Scale: the sample standard deviation (ddof=1), floored at ``MIN_STD``.
* ``fix_variance``: one standard deviation per side, pooled within examples, i.e. sqrt(sum of
  squared deviations from each example's own mean / sum(n_j - 1)). (The released code takes the
  std of all values, which adds the spread of the example means, and the IN value for both sides.)
* Sparse groups: an example with one sample on a side uses it as the mean with the side's pooled
  standard deviation; one with none uses the side's grand mean and overall standard deviation (a
  deliberately vague Gaussian). If no example has 2 or more samples on a side the attack needs,
  :class:`~obliviate.errors.DataError` is raised.

References:
    Carlini et al., "Membership Inference Attacks From First Principles", IEEE S&P 2022,
    arXiv 2112.03570; github.com/tensorflow/privacy, research/mi_lira_2021 (plot.py, score.py).
    Hayes et al., "Inexact Unlearning Needs More Careful Evaluations to Avoid a False Sense of
    Privacy", SaTML 2025, arXiv 2403.01218.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from obliviate.errors import ConfigError, DataError

MIN_STD = 1e-6
_FPR_LEVELS = {"tpr_at_1pct_fpr": 0.01, "tpr_at_0.1pct_fpr": 0.001}


@dataclass(frozen=True)
class LiraResult:
    """Scores and metrics of an attack on one or more target models.

    Attributes:
        scores: Score per (target, example), the targets' shape; larger = more likely a member.
        is_member: Ground truth of the same shape.
        auc, accuracy, tpr_at_1pct_fpr, tpr_at_0_1pct_fpr: Metrics of all scores pooled, as
            :func:`attack_metrics` defines them.
        fpr, tpr: The ROC curve, for plotting.
        online: Whether the online (IN and OUT) or offline (OUT only) test was used.
    """

    scores: np.ndarray
    is_member: np.ndarray
    auc: float
    accuracy: float
    tpr_at_1pct_fpr: float
    tpr_at_0_1pct_fpr: float
    fpr: np.ndarray
    tpr: np.ndarray
    online: bool = True


@dataclass(frozen=True)
class UliraResult(LiraResult):
    """U-LiRA result: the fields of :class:`LiraResult` (members are forgotten examples), plus:

    Attributes:
        accuracy_at_zero: Balanced accuracy of the fixed rule "log ratio > 0 means forgotten".
        example_accuracy: Per pool example, the fraction of target models it is classified right
            at threshold 0, shape (n_pool,); None unless the targets are 2-D.
    """

    accuracy_at_zero: float = float("nan")
    example_accuracy: np.ndarray | None = None


def _floats(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise DataError(f"{name} contains NaN or infinite values; drop or recompute those entries.")
    return a


def _flags(x: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(x)
    if a.shape != shape:
        raise DataError(f"{name} has shape {a.shape} but must have shape {shape}; pass one "
                        "membership flag per confidence.")
    if a.dtype != bool and not (np.issubdtype(a.dtype, np.integer) and np.isin(a, (0, 1)).all()):
        raise DataError(f"{name} must hold boolean (or 0/1) membership flags; convert it with "
                        ".astype(bool).")
    return a.astype(bool)


def _fit_side(conf: np.ndarray, mask: np.ndarray, side: str,
              fix_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-example Gaussian (mean, std) of ``conf[mask]`` along the models, with the fallbacks."""
    n = mask.sum(axis=0)
    if not np.any(n >= 2):
        raise DataError(f"no example has 2 or more {side} shadow models, so no variance can be "
                        f"estimated; train more shadow models or balance the {side} assignment.")
    w = mask.astype(np.float64)
    mean = (w * conf).sum(axis=0) / np.maximum(n, 1)
    sq = (w * (conf - mean) ** 2).sum(axis=0)
    pooled = np.sqrt(sq.sum() / np.maximum(n - 1, 0).sum())
    std = pooled if fix_variance else np.where(n >= 2, np.sqrt(sq / np.maximum(n - 1, 1)), pooled)
    values = conf[mask]
    mean = np.where(n == 0, values.mean(), mean)
    std = np.where(n == 0, values.std(ddof=1), std)
    return mean, np.maximum(std, MIN_STD)


def lira_scores(target_conf: np.ndarray, shadow_conf: np.ndarray, shadow_in: np.ndarray, *,
                online: bool = True, fix_variance: bool = False) -> np.ndarray:
    """Per-example LiRA scores of target confidences; larger means more likely a member.

    Online: ``log N(x; mu_in, s_in) - log N(x; mu_out, s_out)``, both Gaussians fit per example.
    Offline: ``-log(1 - Phi((x - mu_out) / s_out))``, minus the log one-sided p-value, which ignores
    IN shadows. It is a strictly increasing function of the paper's offline score ``Phi(...)``, so
    the ROC is the same, but it does not saturate at 1.0 where float64 ``Phi`` would tie the most
    confident examples. Estimation and the sparse-group fallback: see the module docstring.

    Args:
        target_conf: Confidences of the model(s) under attack, shape (n_examples,) or
            (n_targets, n_examples).
        shadow_conf: Shadow-model confidences, shape (n_shadows, n_examples).
        shadow_in: Bool, shape (n_shadows, n_examples): whether each shadow trained on each example.
        online: Use both IN and OUT Gaussians (True) or the one-sided OUT test (False).
        fix_variance: One pooled standard deviation per side instead of one per example.

    Returns:
        float64 scores, the shape of ``target_conf``.

    Raises:
        DataError: On mismatched shapes, NaN or infinite confidences, or a side (IN when online,
            OUT always) with fewer than 2 shadows for every example.

    References:
        Carlini et al., IEEE S&P 2022, arXiv 2112.03570, Algorithm 1 and Section VI.
    """
    shadow = _floats(shadow_conf, "shadow_conf")
    if shadow.ndim != 2:
        raise DataError(f"shadow_conf has shape {shadow.shape} but must be 2-D (shadows, "
                        "examples); stack one row per shadow model.")
    member = _flags(shadow_in, "shadow_in", shadow.shape)
    target = _floats(target_conf, "target_conf")
    if target.ndim not in (1, 2) or target.shape[-1] != shadow.shape[1]:
        raise DataError(f"target_conf has shape {target.shape} but must be ({shadow.shape[1]},) or "
                        f"(targets, {shadow.shape[1]}) to match shadow_conf's examples.")
    from scipy.stats import norm  # here, not at the top: scipy.stats costs a second at CLI start

    mu_out, s_out = _fit_side(shadow, ~member, "OUT", fix_variance)
    if not online:
        return -norm.logsf(target, mu_out, s_out)
    mu_in, s_in = _fit_side(shadow, member, "IN", fix_variance)
    return norm.logpdf(target, mu_in, s_in) - norm.logpdf(target, mu_out, s_out)


def attack_metrics(scores: np.ndarray, is_member: np.ndarray) -> dict[str, Any]:
    """AUC, best balanced accuracy, TPR at low FPR and the ROC of scores (larger = member).

    ``accuracy`` = max over thresholds of (TPR + TNR) / 2, the balanced accuracy of the best single
    threshold (as LiRA's ``plot.py``): plain accuracy when the classes are equally many, >= 0.5,
    and a little above 0.5 for a chance-level attack since the threshold is fit to the data.
    ``tpr_at_1pct_fpr`` / ``tpr_at_0.1pct_fpr``: the largest TPR on the full ROC with FPR <= 1% /
    0.1%; below 100 / 1000 non-members that is the TPR at FPR 0.

    Args:
        scores: Attack scores, any shape; all entries are pooled.
        is_member: Bool ground truth of the same shape.

    Returns:
        Dict with ``auc``, ``accuracy``, ``tpr_at_1pct_fpr``, ``tpr_at_0.1pct_fpr`` (floats),
        ``roc`` (fpr, tpr arrays), ``n_members`` and ``n_nonmembers`` (ints).

    Raises:
        DataError: On NaN or infinite scores, a shape mismatch, or only one class present.

    References:
        Carlini et al., IEEE S&P 2022, arXiv 2112.03570, Section III (TPR at low FPR).
    """
    s = _floats(scores, "scores")
    y = _flags(is_member, "is_member", s.shape).ravel()
    s = s.ravel()
    if y.all() or not y.any():
        raise DataError(f"is_member has {int(y.sum())} members among {y.size} entries; the attack "
                        "metrics need both members and non-members.")
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    out: dict[str, Any] = {"auc": float(roc_auc_score(y, s)),
                           "accuracy": float(np.max((tpr + 1.0 - fpr) / 2.0))}
    for key, level in _FPR_LEVELS.items():
        out[key] = float(tpr[fpr <= level].max())
    out.update(roc=(fpr, tpr), n_members=int(y.sum()), n_nonmembers=int((~y).sum()))
    return out


def _fields(scores: np.ndarray, member: np.ndarray) -> dict[str, Any]:
    m = attack_metrics(scores, member)
    return dict(scores=scores, is_member=member, auc=m["auc"], accuracy=m["accuracy"],
                tpr_at_1pct_fpr=m["tpr_at_1pct_fpr"], tpr_at_0_1pct_fpr=m["tpr_at_0.1pct_fpr"],
                fpr=m["roc"][0], tpr=m["roc"][1])


def lira(target_conf: np.ndarray, target_in: np.ndarray, shadow_conf: np.ndarray,
         shadow_in: np.ndarray, *, online: bool = True, fix_variance: bool = False) -> LiraResult:
    """Run LiRA against one or more target models and score it against their true membership.

    Args:
        target_conf: Target confidences, (n_examples,) or (n_targets, n_examples).
        target_in: Bool, same shape: whether the target trained on each example.
        shadow_conf, shadow_in, online, fix_variance: As :func:`lira_scores`; the shadows must
            be other models than the targets.

    Returns:
        LiraResult with the scores and the metrics of :func:`attack_metrics`, pooled over targets.

    Raises:
        DataError: As :func:`lira_scores` and :func:`attack_metrics`.

    References:
        Carlini et al., IEEE S&P 2022, arXiv 2112.03570.
    """
    scores = lira_scores(target_conf, shadow_conf, shadow_in, online=online,
                         fix_variance=fix_variance)
    return LiraResult(**_fields(scores, _flags(target_in, "target_in", scores.shape)),
                      online=online)


def ulira(shadow_unlearned_conf: np.ndarray, shadow_forgot: np.ndarray,
          target_unlearned_conf: np.ndarray, target_forgot: np.ndarray) -> UliraResult:
    """U-LiRA: can an attacker tell a target's unlearned pool examples from never-trained ones?

    Each shadow model trained on the base data plus a random half of the pool and then unlearned
    that half (``shadow_forgot`` True); on the other half it never trained (False), so both
    Gaussians come from unlearned models, as do the targets. The score is the online per-example
    log likelihood ratio of :func:`lira_scores`; members are the targets' forgotten examples.

    ``accuracy`` is the best-threshold accuracy of :func:`attack_metrics`, as LiRA's released
    evaluation computes it (the design of :func:`ulira_split` is balanced, so balanced and plain
    accuracy agree); ideal 0.5. Its threshold is fit to the scores, so it reads slightly above 0.5
    at chance; ``accuracy_at_zero``, the fixed equal-prior rule "log ratio > 0 means forgotten",
    has no such bias. Compare methods on the same field.

    Args:
        shadow_unlearned_conf: Unlearned shadow confidences on the pool, (n_shadows, n_pool).
        shadow_forgot: Bool, same shape: which pool examples each shadow trained on and unlearned.
        target_unlearned_conf: Held-out unlearned targets, (n_pool,) or (n_targets, n_pool).
        target_forgot: Bool, same shape as ``target_unlearned_conf``.

    Returns:
        UliraResult.

    Raises:
        DataError: As :func:`lira_scores` and :func:`attack_metrics`.

    References:
        Hayes et al., SaTML 2025, arXiv 2403.01218 (U-LiRA); Carlini et al., arXiv 2112.03570.
    """
    scores = lira_scores(target_unlearned_conf, shadow_unlearned_conf, shadow_forgot)
    forgot = _flags(target_forgot, "target_forgot", scores.shape)
    fields = _fields(scores, forgot)
    guess = scores > 0
    acc0 = 0.5 * (guess[forgot].mean() + (~guess[~forgot]).mean())
    per_example = (guess == forgot).mean(axis=0) if scores.ndim == 2 else None
    return UliraResult(**fields, accuracy_at_zero=float(acc0), example_accuracy=per_example)


def ulira_split(n_models: int, n_pool: int,
                rng_or_seed: np.random.Generator | int | None) -> np.ndarray:
    """Random U-LiRA forget halves: row i marks the pool examples model i trains on and unlearns.

    Complementary pairs: model 2k takes a random ``n_pool // 2`` examples, model 2k+1 the rest
    (less one random example if ``n_pool`` is odd); an odd last model takes a fresh random half.
    Every row holds exactly ``n_pool // 2``; with even sizes every example is in exactly half.

    Args:
        n_models: Number of models (shadows and targets alike), >= 1.
        n_pool: Size of the target pool, >= 2.
        rng_or_seed: A numpy Generator, or a seed for ``np.random.default_rng``.

    Returns:
        Bool array of shape (n_models, n_pool).

    Raises:
        ConfigError: If ``n_models`` < 1 or ``n_pool`` < 2.

    References:
        Hayes et al., arXiv 2403.01218; Carlini et al., arXiv 2112.03570, Section IV.
    """
    n_models, n_pool = operator.index(n_models), operator.index(n_pool)
    if n_models < 1 or n_pool < 2:
        raise ConfigError(f"ulira_split needs n_models >= 1 and n_pool >= 2, got {n_models} and "
                          f"{n_pool}; pass larger sizes.")
    rng = np.random.default_rng(rng_or_seed)
    half = n_pool // 2
    split = np.zeros((n_models, n_pool), dtype=bool)
    for k in range(0, n_models, 2):
        perm = rng.permutation(n_pool)
        split[k, perm[:half]] = True
        if k + 1 < n_models:
            split[k + 1, perm[half:2 * half]] = True
    return split
