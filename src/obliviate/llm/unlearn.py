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

from obliviate.calibrate import calibrate_lm, requested
from obliviate.config import build_config, config_dict
from obliviate.errors import ConfigError, DataError
from obliviate.guard import check_guard, judge_lm, lm_probe, step_name
from obliviate.llm.data import TokenSet, loader
from obliviate.llm.loop import lm_loop
from obliviate.llm.model import merged, refuse_float16_training, with_lora
from obliviate.llm.reference import KINDS, PrecomputedReference
from obliviate.train import check_finite_weights
from obliviate.unlearning import METHODS, TASK_WORDS, MethodInfo, register_method

LM_METHODS = METHODS.view(
    lambda info: info.works_on("lm"), "language-model method",
    lambda name, info: f"Method '{name}' works on "
                       f"{' and '.join(TASK_WORDS[t] for t in info.tasks)}, not language models.")
# methods trained on alternative (false) answers to the forget questions (AltPO), declared by
# register_lm_method(needs_alternates=True); MethodInfo has needs_refusals but no field for this
NEEDS_ALTERNATES: set[str] = set()
# what each method reads from the frozen original, and on which of its sets, declared by
# register_lm_method(reference=..., reference_on=...) (obliviate.llm.reference)
REFERENCE_USE: dict[str, tuple[str, tuple[str, ...]]] = {}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LMUnlearnData:
    """What a language-model method receives besides the model.

    Attributes:
        forget: the question-answer pairs to forget.
        retain: pairs to keep, or None for methods that do not need them.
        forget_idk: the forget questions answered with refusals, aligned with ``forget``.
        reference: the frozen model before unlearning (NPO, KL, DPO, RMU use it), its values
            computed once (:class:`~obliviate.llm.reference.PrecomputedReference`), or None
            for methods registered with ``reference="none"``.
        generator: the run's torch.Generator; methods draw all randomness from it.
        forget_alt: alternative (plausible, false) answers to the forget questions, in ``k``
            blocks of ``len(forget)`` rows: row ``j * len(forget) + i`` answers row ``i``.
        micro_batch: rows per forward pass (None: the whole batch); batches accumulate.
        accelerator: an ``accelerate.Accelerator`` to train under (DDP/FSDP), or None.
    """

    forget: TokenSet
    retain: TokenSet | None
    forget_idk: TokenSet | None
    reference: Any
    generator: torch.Generator
    forget_alt: TokenSet | None = None
    micro_batch: int | None = None
    accelerator: Any = None

    def loop(self, model: nn.Module, batches: Callable[[int], Iterator[Any]], loss: Callable,
             optimizer: torch.optim.Optimizer, epochs: int, *, owner: str) -> nn.Module:
        """The training loop every LM method runs (:func:`obliviate.llm.loop.lm_loop`): one
        step per batch, accumulated over micro-batches and processes."""
        return lm_loop(model, batches, loss, optimizer, epochs, owner=owner,
                       micro_batch=self.micro_batch, accelerator=self.accelerator)

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
                       needs_alternates: bool = False, reference: str = "model",
                       reference_on: tuple[str, ...] = ("forget",)
                       ) -> Callable[[Callable], Callable]:
    """Register ``fn(model, data: LMUnlearnData, cfg: SomeConfig) -> nn.Module`` as ``name``.

    A shorthand for :func:`obliviate.register_method` with ``tasks=("lm",)``; ``default``
    (True) puts it in the methods a language-model bench runs when it names none.
    ``needs_refusals`` / ``needs_alternates``: the method trains on refusals of the forget
    questions (``forget_idk``) / on alternative answers to them (``forget_alt``).
    ``reference``: what the method reads from the frozen original (``none``, ``sequence``,
    ``distribution``, ``hidden``, or ``model``: anything); ``reference_on``: the sets it reads
    it on (``forget``, ``retain``, ``forget_idk``, ``forget_alt``). ``sequence`` and
    ``distribution`` can be computed once before training (``unlearn_lm(reference="logprobs")``).
    """
    if reference not in KINDS:
        raise ConfigError(f"reference='{reference}' for method '{name}'; use one of "
                          f"{', '.join(KINDS)}.")
    if needs_alternates:
        NEEDS_ALTERNATES.add(name)
    REFERENCE_USE[name] = (reference, tuple(reference_on))
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
    dtype: str | None = None,
    gradient_checkpointing: bool = False,
    micro_batch: int | None = None,
    reference: str = "model",
    inplace: bool = False,
    accelerator: Any = None,
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
        dtype: ``float32`` or ``bfloat16``: the weights are trained and returned in it (as
            OpenUnlearning loads models in bfloat16); None keeps the model's. ``float16``
            weights are refused (AdamW's epsilon rounds to 0 in float16).
        gradient_checkpointing: recompute activations in the backward pass (HF models).
        micro_batch: rows per forward pass; the method's ``batch_size`` stays the effective
            batch of one optimizer step, accumulated over micro-batches.
        reference: ``model`` keeps the frozen original for methods that compare against it;
            ``logprobs`` computes what they read from it once, before training, so no second
            model is held (methods registered with ``sequence``/``distribution`` use).
        inplace: train ``model`` itself instead of a copy (with ``reference="logprobs"``, one
            model in memory); ``model`` is then changed and returned.
        accelerator: an ``accelerate.Accelerator``: train under its processes (DDP/FSDP);
            every process calls this with the same arguments and gets the same weights.
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
    field, overrides, config = requested(overrides, config)  # lr="auto" or --set M.lr=auto
    if field is not None:  # lr="auto": a short sweep on this model (obliviate.calibrate)
        rest = {k: v for k, v in overrides.items() if k != field}
        info.build_config(rest)
        extra = dict(forget_idk=forget_idk, forget_alt=forget_alt, lora_rank=lora_rank,
                     dtype=dtype, gradient_checkpointing=gradient_checkpointing,
                     micro_batch=micro_batch, reference=reference)
        full = lambda value: unlearn_lm(  # noqa: E731  the real run, checked by the calibration
            model, forget, retain, method=info, seed=seed, guard="off", **extra,
            accelerator=accelerator, **rest, **{field: value})
        out, cal = calibrate_lm(model, forget, retain, info=info, field=field, overrides=rest,
                                unlearn_lm=unlearn_lm, seed=seed,
                                full=None if inplace else full, **extra)
        if out is None:  # inplace: one run, at the calibrated value, judged by the guard
            out = unlearn_lm(model, forget, retain, method=info, seed=seed, guard=guard,
                             **extra, inplace=True, accelerator=accelerator, **rest,
                             **{field: cal.value})
        elif guard != "off":
            judge_lm(model, out, lm_probe(model, forget, retain), forget, retain, info.name,
                     guard, field)
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
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"dtype='{dtype}' is not one of {', '.join(DTYPES)}.")
    if micro_batch is not None and micro_batch < 1:
        raise ConfigError(f"micro_batch must be at least 1; got {micro_batch}.")
    sets = {"forget": forget, "retain": retain, "forget_idk": forget_idk,
            "forget_alt": forget_alt}
    was_training = model.training
    before = lm_probe(model, forget, retain) if guard != "off" else None
    frozen = frozen_reference(model, info.name, reference, inplace, sets)
    student = model if inplace else copy.deepcopy(model)
    if dtype is not None:
        student = student.to(DTYPES[dtype])
    refuse_float16_training(student, f"Unlearning with '{info.name}'")
    if gradient_checkpointing:
        checkpointing(student, True)
    if lora_rank:
        student = with_lora(student, lora_rank)
    data = LMUnlearnData(forget, retain, forget_idk, frozen,
                         torch.Generator().manual_seed(seed), forget_alt, micro_batch,
                         accelerator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = merged(info.fn(student, data, cfg))
    if gradient_checkpointing:
        checkpointing(out, False)
    if not inplace:
        model.train(was_training)  # the caller's model served as the frozen original
    for p in out.parameters():  # a merged LoRA model comes back with its base weights frozen
        p.requires_grad_(True)
    out.eval()
    check_finite_weights(out, info.name)
    if before is not None:
        judge_lm(model, out, before, forget, retain, info.name, guard, step_name(cfg))
    return out


def checkpointing(model: nn.Module, on: bool) -> None:
    """Turn a Hugging Face model's gradient checkpointing on (non-reentrant) or off.

    Raises:
        ConfigError: a model without gradient checkpointing.
    """
    if not hasattr(model, "gradient_checkpointing_enable"):
        raise ConfigError("gradient_checkpointing needs a Hugging Face model (one with "
                          "gradient_checkpointing_enable); pass gradient_checkpointing=False.")
    if on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()


def frozen_reference(model: nn.Module, method: str, mode: str, inplace: bool,
                     sets: dict[str, TokenSet | None]) -> Any:
    """What ``method`` reads from the original, as declared at registration: nothing (None),
    the values it reads computed once (``mode="logprobs"``), or the frozen model in eval mode
    (the caller's own, which is not trained, or a copy when ``inplace``).

    Raises:
        ConfigError: an unknown mode, or ``logprobs`` for a method that needs the model itself.
    """
    if mode not in ("model", "logprobs"):
        raise ConfigError(f"reference='{mode}' is not valid; use model (keep the frozen "
                          f"original) or logprobs (compute its log-probabilities once).")
    use, on = REFERENCE_USE.get(method, ("model", ("forget",)))
    if use == "none":
        return None
    if mode == "logprobs":
        if use not in ("sequence", "distribution"):
            what = "hidden states" if use == "hidden" else "outputs of any kind"
            raise ConfigError(f"Method '{method}' reads the frozen original's {what}, which "
                              f"are not computed once; pass reference=model.")
        return PrecomputedReference(model, [sets[n] for n in on if sets.get(n) is not None],
                                    use)
    if inplace:
        model = copy.deepcopy(model)
        for p in model.parameters():
            p.requires_grad_(False)
    return model.eval()
