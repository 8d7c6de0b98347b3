"""Calibrate a method's step size on the user's own model: ``lr="auto"``.

Authors' defaults fit the recipe they were tuned with (CIFAR ResNets trained by SGD at 0.1,
LLMs fine-tuned at 1e-5); on another model they can destroy it or leave it as it was. The
calibration is a short, deterministic sweep whose choice is then checked on the full run:

1. **Data.** A held-out slice of the retain set, :data:`HELD_OUT_SHARE` of its rows (at least
   :data:`HELD_OUT_MIN`, at most :data:`HELD_OUT_MAX`, evenly spread), only judges; the trial
   runs train on the other retain rows and the whole forget set. Each trial epoch draws as many
   retain rows as the full run's (the held-out rows' places are filled by rows drawn again), so
   a trial takes the same number of optimizer steps as the real run, at the loaders' batch size.
2. **Trials.** The method runs with its default step size (``lr``, or ``alpha`` for fisher and
   influence) times a factor, from the same seed, every other parameter as given: factor 1
   first; while a run keeps utility (below) the factor goes up x10 until one step past the
   first run that raises the forget loss by :data:`MOVE`; while it does not, down /10 until one
   does; then one trial half a decade (x :data:`GRID` = sqrt(10)) between the last factor that
   kept utility and the one above it that did not (:func:`factors_walk`; at most
   :data:`MAX_TRIALS` runs, factors 1e-4 to 1e4). The grid is the half decade.
3. **Rule.** A trial *keeps utility* when its held-out retain accuracy keeps at least
   :data:`KEEP` of the original's margin over chance (the held-out majority-class share). Among
   those, the one that raised the forget loss most wins (ties: the factor nearest 1). **Margin:**
   when the next grid step above the winner lost utility (the winner is at the edge), the
   calibration backs off one grid step, provided that step kept utility and still moved the
   forget loss. When no trial keeps utility, the one with the best held-out accuracy wins, and
   the choice says so.
4. **Final check.** The full run at the chosen value is probed on the same held-out rows; when
   it does not keep utility, the run is repeated one grid step lower, at most
   :data:`MAX_FALLBACKS` times (:func:`settle`), and the calibration records every full run.

Cost: at most :data:`MAX_TRIALS` trial runs of the real run's length plus 1 to
1 + :data:`MAX_FALLBACKS` full runs, and forward passes on the held-out rows. The result
(:class:`Calibration`) records every trial and every full run; ``ob.unlearn(...,
lr="auto")`` attaches it to the returned model as ``model.obliviate_calibration``, logs the
choice at INFO, and a bench writes it into ``config.json``. Language-model methods use the same
rule with next-token accuracy on held-out retain pairs and the forget pairs' NLL
(:func:`calibrate_lm`).
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
from torch.utils.data import DataLoader, IterableDataset, RandomSampler, Subset

from obliviate.errors import ConfigError, TrainingDivergedError
from obliviate.evaluate.collapse import chance_accuracy
from obliviate.guard import Probe, lm_chance, lm_probe, probe, sample_batches, step_name

logger = logging.getLogger("obliviate")
MAX_TRIALS = 6
MAX_FALLBACKS = 2  # full runs one grid step lower when the chosen value fails the final check
GRID = 10 ** 0.5  # the walk's step: half a decade
MAX_UP, MAX_DOWN = 1e4, 1e-4  # the walk's range of factors
MOVE = 0.1  # a trial moves the forget loss when it rises by this share (and 0.01 nats)
KEEP = 0.9  # share of the original's held-out margin over chance a trial must keep
SWEEP_ROWS = 256  # forget rows whose loss judges a trial
HELD_OUT_SHARE, HELD_OUT_MIN, HELD_OUT_MAX = 0.2, 64, 1024  # held-out retain rows
HELD_OUT_ROWS = 256  # language models: held-out retain pairs judged, at most
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
        f"{MOVE:.0%}), /10 down while it does not, then half a decade between the last that kept "
        f"utility and the next that did not; at most {MAX_TRIALS} trials of the full run's "
        f"length; among the trials that kept utility the largest forget-loss rise, one "
        f"grid step lower when the next step up lost utility; the full run rechecked on the "
        f"held-out rows, one grid step lower (at most {MAX_FALLBACKS} times) while it loses "
        f"utility")


def auto_field(overrides: dict[str, Any]) -> str | None:
    """The parameter set to ``"auto"`` in ``overrides`` (None when none is)."""
    found = [k for k, v in overrides.items() if isinstance(v, str) and v == AUTO]
    if len(found) > 1:
        raise ConfigError(f"Only one parameter can be 'auto'; got {', '.join(found)}.")
    return found[0] if found else None


def with_value(cfg: Any, field: str, value: Any) -> Any:
    """A copy of the frozen method config ``cfg`` whose ``field`` reads ``value``."""
    out = dataclasses.replace(cfg)
    object.__setattr__(out, field, value)
    return out


def marked(cfg: Any, field: str) -> Any:
    """A copy of the frozen method config ``cfg`` whose ``field`` reads ``"auto"`` (a bench's
    ``--set METHOD.lr=auto``): :func:`obliviate.unlearn` given it calibrates that field."""
    return with_value(cfg, field, AUTO)


def auto_in_config(config: Any) -> tuple[str, dict[str, Any]] | None:
    """(the field marked ``"auto"``, every field's value) of a config :func:`marked`, else
    None."""
    if config is None or not dataclasses.is_dataclass(config):
        return None
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    field = auto_field(values)
    return (field, values) if field is not None else None


def requested(overrides: dict[str, Any], config: Any) -> tuple[str | None, dict[str, Any], Any]:
    """(the field to calibrate, overrides, config) of an unlearning call: the keyword set to
    ``"auto"``, else the field of a config :func:`marked` by a bench (whose values then become
    the overrides, and the config is dropped); None when nothing is ``"auto"``."""
    field = auto_field(overrides)
    if field is None and (found := auto_in_config(config)) is not None:
        (field, overrides), config = found, None
    return field, overrides, config


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


def sig6(x: float) -> float:
    """``x`` rounded to 6 significant digits (10, not 10.000000002): every value the walk and
    the fall-backs try."""
    return float(f"{x:.6g}")


def grid(k: int) -> float:
    """The walk's factor ``GRID ** k``, rounded (:func:`sig6`)."""
    return sig6(GRID ** k)


def _at(trials: list[tuple[float, Probe]], factor: float) -> int | None:
    return next((j for j, (f, _) in enumerate(trials) if math.isclose(f, factor, rel_tol=1e-3)),
                None)


def choose(base: Probe, chance: float, trials: list[tuple[float, Probe]]) -> tuple[int, str]:
    """Index of the winning trial under the rule (with its margin), and a note ("" when a trial
    kept utility and moved the forget loss)."""
    nearest = lambda i: abs(math.log10(trials[i][0]))  # noqa: E731
    kept = [i for i, (_, p) in enumerate(trials) if keeps(p, base, chance)]
    if kept:
        i = max(kept, key=lambda i: (rise(trials[i][1], base), -nearest(i)))
        up, down = _at(trials, trials[i][0] * GRID), _at(trials, trials[i][0] / GRID)
        if up is not None and not keeps(trials[up][1], base, chance) and down is not None and \
                keeps(trials[down][1], base, chance) and moves(trials[down][1], base):
            return down, "backed off one grid step from the edge of retain utility"
        return i, "" if moves(trials[i][1], base) else \
            "no trial that kept utility moved the forget loss"
    best = max(range(len(trials)), key=lambda i: (trials[i][1].retain_acc, -nearest(i)))
    return best, (f"no trial kept {KEEP:.0%} of the held-out retain margin; the least harmful "
                  f"was chosen")


def factors_walk(base: Probe, chance: float, run: Callable[[float], Probe]
                 ) -> list[tuple[float, Probe]]:
    """Trials from factor 1, a decade at a time: up while the run keeps utility (to
    :data:`MAX_UP`, or one step past the first that moves the forget loss), down while it does
    not (to :data:`MAX_DOWN`); then one trial half a decade between the last factor that kept
    utility and its neighbour that did not, where both were run. At most :data:`MAX_TRIALS`."""
    trials = {0: run(1.0)}
    direction = 2 if keeps(trials[0], base, chance) else -2  # half-decade exponents
    k = direction
    while len(trials) < MAX_TRIALS - 1 and MAX_DOWN <= grid(k) <= MAX_UP:
        trials[k] = run(grid(k))
        kept = keeps(trials[k], base, chance)
        if direction > 0 and (not kept or moves(trials[k - direction], base)):
            break  # past the edge of utility, or one step past the first move
        if direction < 0 and kept:
            break
        k += direction
    edge = [j for j in trials if keeps(trials[j], base, chance) and j + 2 in trials
            and not keeps(trials[j + 2], base, chance)]
    if edge:
        trials[edge[0] + 1] = run(grid(edge[0] + 1))
    return sorted((grid(j), p) for j, p in trials.items())


def _safe(run: Callable[[float], Probe]) -> Callable[[float], Probe]:
    def safe(value: float) -> Probe:
        try:
            return run(value)
        except TrainingDivergedError:
            return DIVERGED
    return safe


def _row(factor: float, field: str, value: float, p: Probe, **extra: float) -> dict[str, float]:
    return {"factor": factor, field: value, "held_out_retain_acc": p.retain_acc,
            "forget_loss": p.forget_loss, **extra}


def sweep(method: str, field: str, default: float, base: Probe, chance: float,
          run: Callable[[float], Probe], factors: Sequence[float] | None = None) -> Calibration:
    """Run ``run(value)`` for each factor x ``default`` (default: :func:`factors_walk`) and
    apply the rule. A run that diverges (NaN loss) counts as one that lost all utility."""
    safe = _safe(run)
    trials = [(f, safe(default * f)) for f in factors] if factors else \
        factors_walk(base, chance, lambda f: safe(sig6(default * f)))
    i, note = choose(base, chance, trials)
    rows = tuple(_row(f, field, sig6(default * f), p) for f, p in trials)
    return Calibration(method, field, default, sig6(default * trials[i][0]),
                       (_row(0.0, field, 0.0, base, original=1.0),) + rows, note)


def settle(cal: Calibration, base: Probe, chance: float, full: Callable[[float], nn.Module],
           judge: Callable[[nn.Module], Probe]) -> tuple[nn.Module, Calibration]:
    """The final check: run ``full(value)`` (the real run) at the chosen value and ``judge`` it
    (its held-out probe); while it does not keep utility, one grid step lower, at most :data:`MAX_FALLBACKS`
    times. Returns the first run that keeps utility (else the one with the best held-out
    accuracy) and the calibration with every full run recorded (``"full_run": 1``)."""
    value, rows, best, note = cal.value, [], None, cal.note
    for attempt in range(MAX_FALLBACKS + 1):
        try:
            out = full(value)
            p = judge(out)
        except TrainingDivergedError:
            if attempt == MAX_FALLBACKS and best is None:
                raise
            out, p = None, DIVERGED
        rows.append(_row(value / cal.default, cal.field, value, p, full_run=1.0))
        if out is not None and (best is None or p.retain_acc > best[2].retain_acc):
            best = (out, value, p)
        if out is not None and keeps(p, base, chance):
            best = (out, value, p)
            break
        if attempt < MAX_FALLBACKS:
            note = (f"the full run at {cal.field}={value:g} lost retain utility on the held-out "
                    f"rows; fell back one grid step")
            value = sig6(value / GRID)
    else:
        note = (f"no full run kept {KEEP:.0%} of the held-out retain margin; the least harmful "
                f"was kept")
    out, value, _ = best
    cal = dataclasses.replace(cal, value=value, trials=cal.trials + tuple(rows), note=note)
    logger.info("%s: calibrated %s = %g (default %g)%s", cal.method, cal.field, cal.value,
                cal.default, f"; {note}" if note else "")
    return out, cal


def _rows_loader(loader: DataLoader, rows: list[int], draws: int, seed: int) -> DataLoader:
    """``rows`` of ``loader``'s dataset, ``draws`` per epoch (rows drawn again to fill the
    places of the held-out ones, so an epoch has as many batches as the full run's)."""
    subset = Subset(loader.dataset, rows)
    size = loader.batch_size or 1
    sampler = RandomSampler(subset, num_samples=draws,
                            generator=torch.Generator().manual_seed(seed))
    return DataLoader(subset, batch_size=size, sampler=sampler, collate_fn=loader.collate_fn,
                      drop_last=loader.drop_last or draws % size == 1)  # no lone row for
    # BatchNorm's training mode


def _spread(n: int, k: int) -> list[int]:
    return sorted({int(i) for i in torch.linspace(0, n - 1, min(k, n))}) if n else []


def held_out_rows(n: int) -> list[int]:
    """The held-out retain rows of a set of ``n``: :data:`HELD_OUT_SHARE` of them, at least
    :data:`HELD_OUT_MIN` (never more than half), at most :data:`HELD_OUT_MAX`, evenly spread;
    none under 10 rows."""
    if n < 10:
        return []
    k = min(max(round(HELD_OUT_SHARE * n), min(HELD_OUT_MIN, n // 2)), HELD_OUT_MAX)
    return _spread(n, k)


def calibrate(model: nn.Module, forget: DataLoader, retain: DataLoader | None, *, info: Any,
              field: str, overrides: dict[str, Any], unlearn: Callable[..., nn.Module],
              full: Callable[[float], nn.Module], seed: int = 0, recipe: Any = None,
              num_classes: int | None = None, factors: Sequence[float] | None = None
              ) -> tuple[nn.Module, Calibration]:
    """The classifier sweep and its final check (module docstring). ``unlearn`` is
    :func:`obliviate.unlearn` (the trials); ``full(value)`` is the real run at ``value``.
    Returns the real run's model and the calibration."""
    for name, loader in (("forget", forget), ("retain", retain)):
        if loader is not None and (not isinstance(loader, DataLoader) or isinstance(
                loader.dataset, IterableDataset) or not hasattr(loader.dataset, "__len__")):
            raise ConfigError(f"lr='auto' needs DataLoaders over map-style datasets; the {name} "
                              f"set is not one. Pass a number for {field}.")
    task = getattr(model, "task", "classification")
    if task != "classification":
        raise ConfigError(f"{field}='auto' judges trials by accuracy, which {task} models "
                          f"have not; pass a number for {field}.")
    if retain is None:
        raise ConfigError(f"{field}='auto' judges trials on held-out retain rows; pass retain=.")
    default = default_step(info, field, recipe)
    n = len(retain.dataset)
    held = held_out_rows(n)
    gone = set(held)
    train_rows = [i for i in range(n) if i not in gone]
    held_batches = [retain.collate_fn([retain.dataset[i] for i in held[k:k + 64]])
                    for k in range(0, len(held), 64)]
    trial_retain = _rows_loader(retain, train_rows, n, seed + 1)
    forget_batches = sample_batches(forget, SWEEP_ROWS)
    labels = [b[1] if isinstance(b, tuple | list) else b["labels"] for b in held_batches]
    chance = chance_accuracy(torch.cat(labels).numpy()) if labels else math.nan
    judge = lambda m: probe(m, forget_batches, held_batches)  # noqa: E731

    def run(value: float) -> Probe:
        return judge(unlearn(model, forget, trial_retain, method=info, num_classes=num_classes,
                             seed=seed, recipe=recipe, guard="off",
                             **{**overrides, field: value}))

    base = judge(model)
    cal = sweep(info.name, field, default, base, chance, run, factors)
    return settle(cal, base, chance, full, judge)


def calibrate_lm(model: nn.Module, forget, retain, *, info: Any, field: str,
                 overrides: dict[str, Any], unlearn_lm: Callable[..., nn.Module],
                 full: Callable[[float], nn.Module] | None = None, seed: int = 0,
                 factors: Sequence[float] | None = None, **kwargs: Any
                 ) -> tuple[nn.Module | None, Calibration]:
    """The language-model sweep: trials on the even retain pairs (drawn again up to the retain
    set's size, so a trial takes the real run's steps) and the whole forget set, judged by
    next-token accuracy on the odd retain pairs (held out, up to :data:`HELD_OUT_ROWS`) and the
    forget NLL; then ``full(value)``, the real run, is checked as :func:`settle` does (none:
    the calibration alone, model None)."""
    if retain is None or len(retain) < 4:
        raise ConfigError(f"{field}='auto' judges trials on held-out retain pairs; pass at least "
                          f"4 retain pairs.")
    default = default_step(info, field)
    take = lambda s, idx: type(s)(s.ids[idx], s.labels[idx], s.mask[idx])  # noqa: E731
    held = take(retain, torch.arange(1, len(retain), 2)[:HELD_OUT_ROWS])
    even = torch.arange(0, len(retain), 2)
    trial_retain = take(retain, even[torch.arange(len(retain)) % len(even)])
    judge = lambda m: lm_probe(m, forget, held, rows=HELD_OUT_ROWS)  # noqa: E731

    def run(value: float) -> Probe:
        return judge(unlearn_lm(model, forget, trial_retain, method=info, seed=seed,
                                guard="off", **kwargs, **{**overrides, field: value}))

    base, chance = judge(model), lm_chance(held, rows=HELD_OUT_ROWS)
    cal = sweep(info.name, field, default, base, chance, run, factors)
    if full is None:
        return None, cal
    return settle(cal, base, chance, full, judge)
