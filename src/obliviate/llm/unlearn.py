"""The language-model unlearning API: :class:`LMUnlearnData`, ``LM_METHODS`` and :func:`unlearn_lm`.

A method is ``fn(model, data: LMUnlearnData, cfg) -> model``, registered with
:func:`register_lm_method`, which puts it in the one method registry
(:data:`obliviate.unlearning.METHODS`) with ``tasks=("lm",)``: these methods take token
sequences, not (inputs, labels). ``LM_METHODS`` is the view of that registry for this task.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from obliviate.calibrate import auto_field, calibrate_lm
from obliviate.config import build_config, config_dict
from obliviate.errors import ConfigError, DataError
from obliviate.guard import check_guard, judge_lm, lm_probe, step_name
from obliviate.llm.data import TokenSet, loader
from obliviate.llm.model import merged, with_lora
from obliviate.train import check_finite_weights
from obliviate.unlearning import METHODS, TASK_WORDS, MethodInfo, register_method

LM_METHODS = METHODS.view(
    lambda info: info.works_on("lm"), "language-model method",
    lambda name, info: f"Method '{name}' works on "
                       f"{' and '.join(TASK_WORDS[t] for t in info.tasks)}, not language models.")
# methods trained on alternative (false) answers to the forget questions (AltPO), declared by
# register_lm_method(needs_alternates=True); MethodInfo has needs_refusals but no field for this
NEEDS_ALTERNATES: set[str] = set()


@dataclass
class LMUnlearnData:
    """What a language-model method receives besides the model.

    Attributes:
        forget: the question-answer pairs to forget.
        retain: pairs to keep, or None for methods that do not need them.
        forget_idk: the forget questions answered with refusals, aligned with ``forget``.
        reference: a frozen copy of the model before unlearning (NPO, KL, DPO, RMU use it).
        generator: the run's torch.Generator; methods draw all randomness from it.
        forget_alt: alternative (plausible, false) answers to the forget questions, in ``k``
            blocks of ``len(forget)`` rows: row ``j * len(forget) + i`` answers row ``i``.
    """

    forget: TokenSet
    retain: TokenSet | None
    forget_idk: TokenSet | None
    reference: nn.Module
    generator: torch.Generator
    forget_alt: TokenSet | None = None

    def seed(self) -> int:
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))

    def pairs(self, batch_size: int, sets: tuple[TokenSet, ...] | None = None
              ) -> Callable[[int], Iterator[tuple]]:
        """Per epoch: each forget batch (with its refusals, when known) beside a retain batch.

        The forget set sets the epoch length, as in TOFU; the retain set is cycled. ``sets``
        replaces the aligned forget-side sets (e.g. forget answers beside their alternatives).
        """
        if sets is None:
            sets = (self.forget,) if self.forget_idk is None else (self.forget, self.forget_idk)
        forget = loader(*sets, batch_size=batch_size, seed=self.seed())
        retain = None if self.retain is None else loader(self.retain, batch_size=batch_size,
                                                          seed=self.seed())

        def cycled():
            while True:
                yield from retain

        retain_iter = cycled() if retain is not None else None

        def epoch(_e: int) -> Iterator[tuple]:
            for batch in forget:
                yield batch, (next(retain_iter) if retain_iter is not None else None)

        return epoch


def register_lm_method(name: str, *, family: str = "gradient", needs_retain: bool = True,
                       paper: str = "", needs_refusals: bool = False, default: bool = True,
                       check: Callable[[nn.Module, Any], None] | None = None,
                       needs_alternates: bool = False) -> Callable[[Callable], Callable]:
    """Register ``fn(model, data: LMUnlearnData, cfg: SomeConfig) -> nn.Module`` as ``name``.

    A shorthand for :func:`obliviate.register_method` with ``tasks=("lm",)``; ``default``
    (True) puts it in the methods a language-model bench runs when it names none.
    ``needs_refusals`` / ``needs_alternates``: the method trains on refusals of the forget
    questions (``forget_idk``) / on alternative answers to them (``forget_alt``).
    """
    if needs_alternates:
        NEEDS_ALTERNATES.add(name)
    return register_method(name, family=family, needs_retain=needs_retain, paper=paper,
                           tasks=("lm",), needs_refusals=needs_refusals, default=default,
                           check=check)


def repeat_rows(s: TokenSet, k: int) -> TokenSet:
    """``s`` stacked ``k`` times (to align with ``k`` blocks of alternatives)."""
    return TokenSet(s.ids.repeat(k, 1), s.labels.repeat(k, 1), s.mask.repeat(k, 1))


def adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters (TOFU's and NPO's optimizer)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                             weight_decay=weight_decay)


def unlearn_lm(
    model: nn.Module,
    forget: TokenSet,
    retain: TokenSet | None = None,
    *,
    method: str | MethodInfo = "npo",
    forget_idk: TokenSet | None = None,
    forget_alt: TokenSet | None = None,
    seed: int = 0,
    lora_rank: int = 0,
    config: Any = None,
    guard: str = "warn",
    **overrides: Any,
) -> nn.Module:
    """Return an unlearned copy of the causal LM ``model``; ``model`` itself is not modified.

    Args:
        model: a causal LM (``model(input_ids=..., attention_mask=...).logits``).
        forget / retain / forget_idk: token sets from :func:`obliviate.llm.data.encode_pairs`.
        forget_alt: alternative answers for ``altpo`` (:meth:`TofuScenario.forget_alt_set`).
        method: a name in ``LM_METHODS`` (``ga``, ``grad-diff``, ``kl``, ``npo``, ``npo+gd``,
            ``simnpo``, ``idk``, ``idk-dpo``, ``rmu``, ``undial``, ``wga``, ``satimp``,
            ``altpo``).
        seed: seeds all randomness; the same seed gives the same weights on CPU.
        lora_rank: > 0 trains a LoRA adapter of that rank and folds it into the weights.
        config: a ready config instance; otherwise built from the defaults and ``overrides``.
        guard: ``"warn"`` (default), ``"raise"`` or ``"off"``: check the result on the first
            rows of ``forget`` and ``retain`` (:mod:`obliviate.guard`; retain next-token
            accuracy near a constant guess's is a collapse, an unchanged forget NLL with no
            changed prediction a no-op).
        **overrides: method parameters, e.g. ``lr=1e-3, epochs=5``; ``lr="auto"``
            calibrates the lr first (:func:`obliviate.calibrate.calibrate_lm`) and records the
            sweep on the returned model as ``obliviate_calibration``.

    Raises:
        ConfigError: an unknown method or an invalid parameter (checked before training).
        DataError: a method that needs retain pairs or refusals did not get them.
        UnlearningCheckError: with ``guard="raise"``, the result collapsed or is unchanged.
    """
    check_guard(guard)
    info = method if isinstance(method, MethodInfo) else LM_METHODS.get(method)
    field = auto_field(overrides)
    if field is not None:  # lr="auto": a short sweep on this model (obliviate.calibrate)
        rest = {k: v for k, v in overrides.items() if k != field}
        info.build_config(rest)
        extra = dict(forget_idk=forget_idk, forget_alt=forget_alt, lora_rank=lora_rank)
        cal = calibrate_lm(model, forget, retain, info=info, field=field, overrides=rest,
                           unlearn_lm=unlearn_lm, seed=seed, **extra)
        out = unlearn_lm(model, forget, retain, method=info, seed=seed, guard=guard, **extra,
                         **rest, **{field: cal.value})
        out.obliviate_calibration = cal.as_dict()
        return out
    info.refuse_task("lm", "this model")
    if config is not None and overrides:
        raise ConfigError("Pass either config= or keyword overrides to unlearn_lm, not both.")
    if config is None:
        cfg = info.build_config(overrides)
    elif dataclasses.is_dataclass(config):
        cfg = build_config(type(config), config_dict(config), info.name)
    else:
        cfg = config
    if info.needs_retain and retain is None:
        raise DataError(f"Method '{info.name}' needs retain pairs; pass retain=<TokenSet>.")
    if info.needs_refusals and forget_idk is None:
        raise DataError(f"Method '{info.name}' needs refusals for the forget questions; pass "
                        f"forget_idk=<TokenSet> aligned with forget.")
    if info.name in NEEDS_ALTERNATES:
        if forget_alt is None:
            raise DataError(f"Method '{info.name}' needs alternative answers to the forget "
                            f"questions; pass forget_alt=<TokenSet> (sc.forget_alt_set()).")
        if len(forget_alt) % len(forget):
            raise DataError(f"forget_alt has {len(forget_alt)} rows, not a multiple of the "
                            f"{len(forget)} forget rows; build it with sc.forget_alt_set().")
    info.check_model(model, cfg)  # settings the model cannot take (RMU's layers), before training
    before = lm_probe(model, forget, retain) if guard != "off" else None
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(model)
    if lora_rank:
        student = with_lora(student, lora_rank)
    data = LMUnlearnData(forget, retain, forget_idk, reference,
                         torch.Generator().manual_seed(seed), forget_alt)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = merged(info.fn(student, data, cfg))
    for p in out.parameters():  # a merged LoRA model comes back with its base weights frozen
        p.requires_grad_(True)
    out.eval()
    check_finite_weights(out, info.name)
    if before is not None:
        judge_lm(model, out, before, forget, retain, info.name, guard, step_name(cfg))
    return out
