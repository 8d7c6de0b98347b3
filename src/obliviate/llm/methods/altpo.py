"""AltPO: prefer plausible alternative answers to the true ones on the forget questions
(Mekala et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from obliviate.config import param
from obliviate.llm.losses import dpo, nll
from obliviate.llm.unlearn import LMUnlearnData, adamw, register_lm_method, repeat_rows


@dataclass(frozen=True)
class AltPOConfig:
    """Defaults: the authors' README command (``forget_loss=subdpo beta=0.1 retain_wt=1
    lr=5e-05 num_epochs=2 augment_k=5``) and ``config/unlearn_llama2.yaml`` (weight decay 0.01,
    batch 5 x 7 accumulation = 35)."""

    beta: float = param(0.1, gt=0, help="DPO inverse temperature")
    retain_coeff: float = param(1.0, ge=0, help="weight of the retain NLL")
    lr: float = param(5e-5, gt=0, help="AdamW learning rate")
    epochs: int = param(2, ge=1, help="epochs over the (forget, alternative) pairs")
    batch_size: int = param(35, ge=1, help="(forget, alternative) pairs per step")
    weight_decay: float = param(0.01, ge=0, help="AdamW weight decay")


@register_lm_method("altpo", family="gradient", needs_retain=True, needs_alternates=True,
                    reference="sequence",
                    reference_on=("forget", "forget_alt"),
                    paper="Mekala et al. 2025, Alternate Preference Optimization (AltPO)")
def altpo(model: nn.Module, data: LMUnlearnData, cfg: AltPOConfig) -> nn.Module:
    """Minimise -(2/beta) log sigmoid(beta (log-ratio(alternative) - log-ratio(true answer)))
    + retain NLL, log-ratios against the frozen original.

    Negative feedback alone (GA, NPO) leaves the model with no answer to give, so it drifts
    into gibberish that also spreads to retained questions; the positive feedback on a
    plausible alternative keeps its answers fluent. Both answers share the words before the
    changed fact, whose log-ratios cancel, so the preference acts on the fact itself.

    References:
        Mekala, Dorna, Dubey, Lalwani, Koleczek, Rungta, Hasan, Lobo, "Alternate Preference
        Optimization for Unlearning Factual Knowledge in Large Language Models", COLING 2025
        (arXiv 2409.13474); code: molereddy/Alternate-Preference-Optimization ``dataloader.py``
        (``DPO`` with the alternative as the preferred answer).

    Fidelity:
        - Follows: the loss (DPO scaled by 2/beta, alternative preferred, plus the retain
          NLL), ``augment_k`` = 5 alternatives per forget answer, each a separate pair, the
          defaults.
        - Departs: the alternatives come from the scenario (``forget_alt_set``), not always
          from the model. The authors sample them from the original with an instruction
          prompt; the tiny GPT-2 follows no instruction, so tofu-mini fills the answer's own
          template with other values of the same attribute, never one of the evaluation's
          perturbed answers. Scenarios on real files read AltPO's alternates file when given
          and otherwise sample answers from the original at temperature 1.
    """
    k = len(data.forget_alt) // len(data.forget)
    pairs = data.pairs(cfg.batch_size, sets=(repeat_rows(data.forget, k), data.forget_alt))

    def loss(m: nn.Module, pair) -> object:
        forget, retain = pair
        out = (2.0 / cfg.beta) * dpo(m, data.reference, forget[3:6], forget[:3], cfg.beta)
        if cfg.retain_coeff:
            out = out + cfg.retain_coeff * nll(m, retain)
        return out

    return data.loop(model, pairs, loss, adamw(model, cfg.lr, cfg.weight_decay), cfg.epochs,
                     owner="altpo")
