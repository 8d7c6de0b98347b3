"""Calibrate a method's step size on the user's own model: ``lr="auto"``.

Authors' defaults fit the recipe they were tuned with (CIFAR ResNets trained by SGD at 0.1,
LLMs fine-tuned at 1e-5); on another model they can destroy it or leave it as it was. The
calibration is a short, deterministic sweep:

1. **Data.** Evenly spread rows of the retain set are split in two: :data:`SWEEP_ROWS` that the
   trial runs train on and :data:`HELD_OUT_ROWS` that only judge them; up to
   :data:`SWEEP_ROWS` forget rows are forgotten. The forget set's order and the loaders'
   batch size are kept.
2. **Trials.** The method runs with its default step size (``lr``, or ``alpha`` for fisher and
   influence) times a factor, from the same seed, every other parameter as given: factor 1
   first; while a run keeps utility (below) the factor goes up x10 until one step past the
   first run that raises the forget loss by :data:`MOVE`; while it does not, down /10 until one
   does (:func:`factors_walk`; at most :data:`MAX_TRIALS` runs, factors 1e-4 to 1e4).
3. **Rule.** A trial *keeps utility* when its held-out retain accuracy keeps at least
   :data:`KEEP` of the original's margin over chance (the held-out majority-class share). Among
   those, the one that raised the forget loss most wins (ties: the factor nearest 1). When no
   trial keeps utility, the one with the best held-out accuracy wins, and the choice says so.

Cost: at most :data:`MAX_TRIALS` runs on at most :data:`SWEEP_ROWS` rows plus forward passes on the
held-out rows. The result (:class:`Calibration`) records every trial; ``ob.unlearn(...,
lr="auto")`` attaches it to the returned model as ``model.obliviate_calibration`` and a bench
writes it into ``config.json``. Language-model methods use the same rule with next-token
accuracy on held-out retain pairs and the forget pairs' NLL (:func:`calibrate_lm`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, Subset

from obliviate.errors import ConfigError, TrainingDivergedError
from obliviate.evaluate.collapse import chance_accuracy
from obliviate.guard import Probe, lm_chance, lm_probe, probe, sample_batches, step_name

logger = logging.getLogger("obliviate")
MAX_TRIALS = 5
MAX_UP, MAX_DOWN = 1e4, 1e-4  # the walk's range of factors
MOVE = 0.1  # a trial moves the forget loss when it rises by this share (and 0.01 nats)
KEEP = 0.9  # share of the original's held-out margin over chance a trial must keep
SWEEP_ROWS = 256
HELD_OUT_ROWS = 128
AUTO = "auto"
DIVERGED = Probe(-1.0, math.nan, torch.empty(0))  # a trial whose loss became NaN


@dataclass(frozen=True)
class Calibration:
    """The outcome of a sweep: the chosen value of ``field`` and every trial."""

    method: str
    field: str
    default: float
    value: float
    trials: tuple[dict[str, float], ...]
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "field": self.field, "default": self.default,
                "value": self.value, "note": self.note, "rule": RULE,
                "trials": [dict(t) for t in self.trials]}


RULE = (f"factors of the default from 1, x10 up while held-out retain accuracy keeps {KEEP} of "
        f"the original's margin over chance (one step past the first forget-loss rise of "
        f"{MOVE:.0%}), /10 down while it does not, at most {MAX_TRIALS} runs; then among the "
        f"runs that kept utility the largest forget-loss rise")


def auto_field(overrides: dict[str, Any]) -> str | None:
    """The parameter set to ``"auto"`` in ``overrides`` (None when none is)."""
    found = [k for k, v in overrides.items() if isinstance(v, str) and v == AUTO]
    if len(found) > 1:
        raise ConfigError(f"Only one parameter can be 'auto'; got {', '.join(found)}.")
    return found[0] if found else None


def default_step(info: Any, field: str, recipe: Any = None) -> float:
    """The default of ``field`` in the method's config (the recipe's lr when it defaults to it)."""
    if info.config is None or field not in {f.name for f in dataclasses.fields(info.config)}:
        raise ConfigError(f"{info.name} has no parameter '{field}' to calibrate; 'auto' works on "
                          f"its step size ({step_name(info.build_config())}).")
    value = info.build_config().__getattribute__(field)
    if value is None and recipe is not None:
        value = getattr(recipe, field, None)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{info.name}.{field} has no numeric default to calibrate from; pass "
                          f"a value, or recipe= with the training lr.")
    return float(value)


def keeps(p: Probe, base: Probe, chance: float) -> bool:
    """Held-out retain accuracy keeps :data:`KEEP` of the original's margin over chance."""
    margin = base.retain_acc - chance
    if math.isnan(p.retain_acc) or math.isnan(margin) or margin <= 0.05:
        return True
    return (p.retain_acc - chance) >= KEEP * margin


def rise(p: Probe, base: Probe) -> float:
    return -math.inf if math.isnan(p.forget_loss) else p.forget_loss - base.forget_loss


def moves(p: Probe, base: Probe) -> bool:
    """The forget loss rose by at least :data:`MOVE` of its value (and 0.01 nats)."""
    return rise(p, base) >= max(MOVE * abs(base.forget_loss), 0.01)


def choose(base: Probe, chance: float, trials: list[tuple[float, Probe]]) -> tuple[int, str]:
    """Index of the winning trial under the rule, and a note ("" when a trial kept utility)."""
    nearest = lambda i: abs(math.log10(trials[i][0]))  # noqa: E731
    kept = [i for i, (_, p) in enumerate(trials) if keeps(p, base, chance)]
    if kept:
        i = max(kept, key=lambda i: (rise(trials[i][1], base), -nearest(i)))
        return i, "" if moves(trials[i][1], base) else \
            "no trial that kept utility moved the forget loss"
    best = max(range(len(trials)), key=lambda i: (trials[i][1].retain_acc, -nearest(i)))
    return best, (f"no trial kept {KEEP:.0%} of the held-out retain margin; the least harmful "
                  f"was chosen")


def factors_walk(base: Probe, chance: float, run: Callable[[float], Probe]
                 ) -> list[tuple[float, Probe]]:
    """Trials from factor 1: up by x10 while the run keeps utility (to :data:`MAX_UP`, or one
    step past the first that moves the forget loss), down by /10 while it does not (to
    :data:`MAX_DOWN`); at most :data:`MAX_TRIALS` runs."""
    trials = [(1.0, run(1.0))]
    step = 10.0 if keeps(trials[0][1], base, chance) else 0.1
    factor = step
    while len(trials) < MAX_TRIALS and MAX_DOWN <= factor <= MAX_UP:
        p = run(factor)
        trials.append((factor, p))
        kept = keeps(p, base, chance)
        if step > 1 and (not kept or moves(trials[-2][1], base)):
            break  # past the edge of utility, or one step past the first move
        if step < 1 and kept:
            break
        factor *= step
    return sorted(trials)


def sweep(method: str, field: str, default: float, base: Probe, chance: float,
          run: Callable[[float], Probe], factors: Sequence[float] | None = None) -> Calibration:
    """Run ``run(value)`` for each factor x ``default`` (default: :func:`factors_walk`) and
    apply the rule. A run that diverges (NaN loss) counts as one that lost all utility."""
    def safe(value: float) -> Probe:
        try:
            return run(value)
        except TrainingDivergedError:
            return DIVERGED

    trials = [(f, safe(default * f)) for f in factors] if factors else \
        factors_walk(base, chance, lambda f: safe(default * f))
    i, note = choose(base, chance, trials)
    rows = tuple({"factor": f, field: default * f, "held_out_retain_acc": p.retain_acc,
                  "forget_loss": p.forget_loss} for f, p in trials)
    cal = Calibration(method, field, default, default * trials[i][0],
                      ({"factor": 0.0, field: 0.0, "held_out_retain_acc": base.retain_acc,
                        "forget_loss": base.forget_loss, "original": 1.0},) + rows, note)
    logger.info("%s: calibrated %s = %g (default %g)%s", method, field, cal.value, default,
                f"; {note}" if note else "")
    return cal


def _rows_loader(loader: DataLoader, rows: list[int], seed: int) -> DataLoader:
    return DataLoader(Subset(loader.dataset, rows), batch_size=loader.batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed),
                      collate_fn=loader.collate_fn,
                      drop_last=len(rows) % (loader.batch_size or 1) == 1)  # no lone row for
    # BatchNorm's training mode


def _spread(n: int, k: int) -> list[int]:
    return sorted({int(i) for i in torch.linspace(0, n - 1, min(k, n))}) if n else []


def calibrate(model: nn.Module, forget: DataLoader, retain: DataLoader | None, *, info: Any,
              field: str, overrides: dict[str, Any], unlearn: Callable[..., nn.Module],
              seed: int = 0, recipe: Any = None, num_classes: int | None = None,
              factors: Sequence[float] | None = None) -> Calibration:
    """The classifier sweep (module docstring); ``unlearn`` is :func:`obliviate.unlearn`."""
    for name, loader in (("forget", forget), ("retain", retain)):
        if loader is not None and (not isinstance(loader, DataLoader) or isinstance(
                loader.dataset, IterableDataset) or not hasattr(loader.dataset, "__len__")):
            raise ConfigError(f"lr='auto' needs DataLoaders over map-style datasets; the {name} "
                              f"set is not one. Pass a number for {field}.")
    if retain is None:
        raise ConfigError(f"{field}='auto' judges trials on held-out retain rows; pass retain=.")
    default = default_step(info, field, recipe)
    n = len(retain.dataset)
    spread = _spread(n, SWEEP_ROWS + HELD_OUT_ROWS)
    held = spread[1::2][:HELD_OUT_ROWS] if len(spread) > 8 else []
    sweep_rows = [i for i in spread if i not in set(held)]
    held_batches = [retain.collate_fn([retain.dataset[i] for i in held[k:k + 64]])
                    for k in range(0, len(held), 64)]
    forget_rows = _spread(len(forget.dataset), SWEEP_ROWS)
    sweep_forget = _rows_loader(forget, forget_rows, seed)
    sweep_retain = _rows_loader(retain, sweep_rows, seed + 1)
    forget_batches = sample_batches(forget, SWEEP_ROWS)
    labels = [b[1] if isinstance(b, tuple | list) else b["labels"] for b in held_batches]
    chance = chance_accuracy(torch.cat(labels).numpy()) if labels else math.nan

    def run(value: float) -> Probe:
        out = unlearn(model, sweep_forget, sweep_retain, method=info, num_classes=num_classes,
                      seed=seed, recipe=recipe, guard="off", **{**overrides, field: value})
        return probe(out, forget_batches, held_batches)

    return sweep(info.name, field, default, probe(model, forget_batches, held_batches), chance,
                 run, factors)


def calibrate_lm(model: nn.Module, forget, retain, *, info: Any, field: str,
                 overrides: dict[str, Any], unlearn_lm: Callable[..., nn.Module],
                 seed: int = 0, factors: Sequence[float] | None = None, **kwargs: Any
                 ) -> Calibration:
    """The language-model sweep: trials on the even retain rows and the forget pairs (up to
    :data:`SWEEP_ROWS`), judged by next-token accuracy on the odd retain rows (held out) and
    the forget NLL."""
    if retain is None or len(retain) < 4:
        raise ConfigError(f"{field}='auto' judges trials on held-out retain pairs; pass at least "
                          f"4 retain pairs.")
    default = default_step(info, field)
    take = lambda s, idx: type(s)(s.ids[idx], s.labels[idx], s.mask[idx])  # noqa: E731
    held = take(retain, torch.arange(1, len(retain), 2)[:HELD_OUT_ROWS])
    trial_retain = take(retain, torch.arange(0, len(retain), 2)[:SWEEP_ROWS])
    trial_forget = forget  # whole: refusals and alternates stay aligned with it

    def run(value: float) -> Probe:
        out = unlearn_lm(model, trial_forget, trial_retain, method=info, seed=seed, guard="off",
                         **kwargs, **{**overrides, field: value})
        return lm_probe(out, trial_forget, held, rows=HELD_OUT_ROWS)

    return sweep(info.name, field, default, lm_probe(model, trial_forget, held,
                                                     rows=HELD_OUT_ROWS),
                 lm_chance(held, rows=HELD_OUT_ROWS), run, factors)
