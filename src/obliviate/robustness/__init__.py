"""Robustness of forgetting: attacks that try to bring forgotten knowledge back.

Each attack works on any unlearned model (a classifier with its forget / retain loaders, or a
causal LM on a :class:`~obliviate.llm.scenario.TofuScenario`), runs the same attack on the
retrained model when one is given, and returns ``{"metrics": {...}, "curves": {...}}`` of
plain floats and lists:

- :func:`relearn_classifier`, :func:`relearn_lm`: a few fine-tuning steps on a small share of
  the forget set (or on retained data); recovery on the held-out rest, step by step.
- :func:`quantize_classifier`, :func:`quantize_lm`: weights rounded to 8 and 4 bits.
- :func:`paraphrase_probe` (language models): the forget questions in other words, or after
  an in-context example.

Example:
    >>> import obliviate as ob
    >>> from obliviate.robustness import relearn_classifier
    >>> sc = ob.load_scenario("digits", forget="random:0.1")
    >>> out = relearn_classifier(model, sc.forget_loader(), retrained=retrained)  # doctest: +SKIP
"""

from obliviate.robustness.paraphrase import paraphrase_probe, probe_questions
from obliviate.robustness.quantize import (
    quantization_attack,
    quantize_classifier,
    quantize_lm,
    quantize_weights,
    round_to_grid,
)
from obliviate.robustness.relearn import relearn_classifier, relearn_lm, split_share

__all__ = ["paraphrase_probe", "probe_questions", "quantization_attack", "quantize_classifier",
           "quantize_lm", "quantize_weights", "relearn_classifier", "relearn_lm",
           "round_to_grid", "split_share"]
