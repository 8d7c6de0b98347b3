"""The language-model track: TOFU-style fictitious authors, unlearning methods for causal LMs,
and TOFU's evaluation (forget quality, model utility) with sequence-level MIAs.

Example:
    >>> from obliviate.llm import load_tofu, unlearn_lm, evaluate_lm
    >>> sc = load_tofu("authors:0.1", profiles=20)
    >>> original = sc.train_original()
    >>> model = unlearn_lm(original, sc.forget_set(), sc.retain_set(), method="npo")

transformers is imported only when a model is built.
"""

from obliviate.llm import methods  # noqa: F401  (registers the built-in LM methods)
from obliviate.llm.evaluate import evaluate_lm, reference_metrics
from obliviate.llm.muse import MuseScenario, load_muse
from obliviate.llm.scenario import SIZES, TofuOptions, TofuRecipe, TofuScenario, load_tofu
from obliviate.llm.unlearn import LM_METHODS, LMUnlearnData, register_lm_method, unlearn_lm

__all__ = ["LM_METHODS", "SIZES", "LMUnlearnData", "MuseScenario", "TofuOptions", "TofuRecipe",
           "TofuScenario", "evaluate_lm", "load_muse", "load_tofu", "reference_metrics",
           "register_lm_method", "unlearn_lm"]
