"""Paraphrase probing: ask an unlearned language model the forgotten questions in other words,
or after a worked example in the prompt, and see whether the answers come back, beside the
retain-only model asked the same way.

Unlearning fitted to the forget questions' exact wording can leave the knowledge reachable
through another wording; the retain-only model never had it under any wording.

References:
    Maini et al., "TOFU", 2024 (``paraphrased_question`` in its forget splits); Shi et al.,
    "MUSE", 2024 (in-context examples before knowledge questions); Lynch et al., "Eight
    Methods to Evaluate Robust Unlearning in LLMs", 2024 (rephrased and in-context probes).

Fidelity:
    - Follows: TOFU's paraphrased questions where the data has them (its files; tofu-mini
      writes one per attribute, never trained on), MUSE's "Question/Answer" few-shot prefix
      in this track's "Q:/A:" prompt format.
    - Departs: one in-context example from a retained author (MUSE uses its ``_icl`` sets),
      so that the tiny GPT-2's 256-token context holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from obliviate.errors import DataError
from obliviate.llm.profiles import QA

if TYPE_CHECKING:
    from obliviate.llm.scenario import TofuScenario

PROBES = ("asked", "paraphrased", "in_context")


def probe_questions(sc: TofuScenario, probe: str) -> list[QA]:
    """The forget questions as ``probe`` asks them (answers unchanged)."""
    qas = sc.forget_qa
    if probe == "asked":
        return list(qas)
    if probe == "paraphrased":
        paras = sc.forget_question_paraphrases
        if len(paras) != len(qas) or not all(paras):
            raise DataError("This scenario has no paraphrased forget questions; TOFU's files "
                            "carry them in forgetXX_perturbed.json (paraphrased_question).")
        return [QA(p, q.answer, q.paraphrase, q.perturbed, q.owner)
                for p, q in zip(paras, qas, strict=True)]
    if probe == "in_context":
        shot = sc.retain_eval_qa[0]
        # prompt_text wraps the question in "Q: ...\nA:", so this reads Q/A, Q/A
        return [QA(f"{shot.question}\nA: {shot.answer}\nQ: {q.question}", q.answer,
                   q.paraphrase, q.perturbed, q.owner) for q in qas]
    raise DataError(f"Unknown probe '{probe}'; use one of {', '.join(PROBES)}.")


def paraphrase_probe(model: nn.Module, sc: TofuScenario, *, retrained: nn.Module | None = None,
                     probes: tuple[str, ...] = PROBES, cache: dict | None = None
                     ) -> dict[str, Any]:
    """Forget prob, ROUGE-L and truth-ratio score under each probe, for ``model`` and, when
    given, the retain-only model; forget quality under each probe against the retain-only
    model asked the same way.

    Returns:
        ``{"metrics": {"<probe>_forget_prob": v, "retrained_<probe>_forget_prob": v,
        "<probe>_forget_quality": v, "<probe>_forget_prob_gap": v, ...}, "curves": {}}``;
        a gap is the model's value minus the retain-only model's (0: no more recall).
        ``cache``: a dict kept across calls with the same retain-only model (probed once).
    """
    from obliviate.llm import metrics as M
    from obliviate.llm.evaluate import question_stats, scenario_max_new_tokens

    metrics: dict[str, float] = {}
    for probe in probes:
        qas = probe_questions(sc, probe)
        ratios = {}
        for who, m in (("", model), ("retrained_", retrained)):
            if m is None:
                continue
            if who and cache is not None and ("probe", probe) in cache:
                s = cache[("probe", probe)]
            else:
                s = question_stats(m, sc.tokenizer, qas,
                                   max_new_tokens=scenario_max_new_tokens(sc))
                if who and cache is not None:
                    cache[("probe", probe)] = s
            ratios[who] = s["truth_ratio"]
            metrics[f"{who}{probe}_forget_prob"] = float(np.exp(-s["nll"]).mean())
            metrics[f"{who}{probe}_forget_rouge"] = float(s["rouge"].mean())
            metrics[f"{who}{probe}_forget_truth_ratio"] = M.truth_ratio_score(s["truth_ratio"],
                                                                              forget=True)
        if retrained is not None:
            metrics[f"{probe}_forget_quality"] = M.forget_quality(ratios[""],
                                                                  ratios["retrained_"])
            for key in ("forget_prob", "forget_rouge"):
                metrics[f"{probe}_{key}_gap"] = (metrics[f"{probe}_{key}"]
                                                 - metrics[f"retrained_{probe}_{key}"])
    return {"metrics": metrics, "curves": {}}
