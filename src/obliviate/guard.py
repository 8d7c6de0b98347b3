"""The result check every unlearning run ends with: did it collapse, or did it do nothing?

On a user's own model, a method at its authors' defaults can return a model at chance (a
CIFAR learning rate on a pretrained transformer) or the model unchanged (a step too small to
move anything), and the returned object looks like any other. :func:`obliviate.unlearn` and
:func:`obliviate.llm.unlearn_lm` therefore probe a small slice of the data before and after the
run (:data:`SLICE` rows of each set, evenly spread over the dataset, read without touching the
loaders' samplers or the global RNG) and judge the result:

- **collapse**: the retain slice's accuracy kept under a fifth of the original's margin over
  chance (:func:`obliviate.evaluate.collapse.collapse_flag`, chance the slice's majority-class
  share); the validation loader's rows are used instead when one is given (held out of training).
- **no-op**: the trainable weights are bit-identical to the input's, or the forget loss moved by
  under :data:`NOOP_RTOL` of its value, or by under :data:`QUIET_RTOL` while no prediction on
  either slice changed.

``guard="warn"`` (default) emits :class:`~obliviate.errors.CollapseWarning` /
:class:`~obliviate.errors.NoOpWarning` naming the method, the figures and a fix; ``"raise"``
raises :class:`~obliviate.errors.UnlearningCheckError`; ``"off"`` skips the probe (the bench
judges its rows itself, on its full metrics). Cost: two forward passes over at most
2 x :data:`SLICE` rows, and one comparison of the weights.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from obliviate.batches import forward, inputs_to, split_batch
from obliviate.errors import CollapseWarning, ConfigError, NoOpWarning, UnlearningCheckError
from obliviate.evaluate.collapse import NEAR_CHANCE, chance_accuracy, collapse_flag

GUARDS = ("warn", "raise", "off")
SLICE = 64  # rows of each set the probe reads
NOOP_RTOL = 1e-2  # forget loss moved by less than this share of its value: a no-op
QUIET_RTOL = 0.1  # ... or by less than this share while no prediction on the slices changed


def check_guard(guard: str) -> str:
    if guard not in GUARDS:
        raise ConfigError(f"The 'guard' parameter must be one of {', '.join(GUARDS)}. "
                          f"Got {guard!r} instead.")
    return guard


def sample_batches(loader: Iterable | None, n: int = SLICE) -> list:
    """Up to ``n`` rows of ``loader`` as a list of batches, evenly spread over its dataset.

    A map-style DataLoader gives rows by index through its ``collate_fn`` (its sampler is not
    advanced); a list of batches gives its first rows; anything else gives nothing (reading an
    iterator would consume it).
    """
    if loader is None:
        return []
    with torch.random.fork_rng(devices=[]):
        if isinstance(loader, DataLoader):
            data = loader.dataset
            if isinstance(data, IterableDataset) or not hasattr(data, "__len__") or not len(data):
                return []
            size = len(data)
            picks = sorted({int(i) for i in torch.linspace(0, size - 1, min(n, size))})
            step = loader.batch_size or 64
            return [loader.collate_fn([data[i] for i in picks[k:k + step]])
                    for k in range(0, len(picks), step)]
        if isinstance(loader, Sequence):
            out, seen = [], 0
            for batch in loader:
                if seen >= n:
                    break
                out.append(batch)
                seen += len(split_batch(batch)[1])
            return out
    return []


@dataclass(frozen=True)
class Probe:
    """A model's figures on the slices: retain accuracy and predictions, forget loss."""

    retain_acc: float
    forget_loss: float
    predictions: torch.Tensor


def probe(model: nn.Module, forget: list, retain: list) -> Probe:
    """Accuracy on ``retain``, mean cross-entropy on ``forget``, and every argmax, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    preds, hits, rows, losses, count = [], 0, 0, 0.0, 0
    try:
        with torch.no_grad():
            for batches, is_forget in ((retain, False), (forget, True)):
                for batch in batches:
                    x, y = split_batch(batch)
                    logits = forward(model, inputs_to(x, device)).float()
                    y = y.to(logits.device)
                    preds.append(logits.argmax(dim=1).cpu())
                    if is_forget:
                        losses += float(F.cross_entropy(logits, y, reduction="sum"))
                        count += len(y)
                    else:
                        hits += int((logits.argmax(dim=1) == y).sum())
                        rows += len(y)
    finally:
        model.train(was_training)
    return Probe(hits / rows if rows else math.nan, losses / count if count else math.nan,
                 torch.cat(preds) if preds else torch.empty(0))


def same_weights(before: nn.Module, after: nn.Module) -> bool:
    """Whether every parameter of ``after`` equals ``before``'s (same names, same values)."""
    a, b = dict(before.named_parameters()), dict(after.named_parameters())
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k].detach().cpu(), b[k].detach().cpu())
        for k in a)


def verdict(method: str, before: Probe | None, after: Probe | None, unchanged: bool, *,
            chance: float, rows: tuple[int, int], noun: str = "accuracy",
            step: str = "lr") -> tuple[str, str] | None:
    """(kind, message) of a run that collapsed or did nothing, None when it looks fine."""
    fix_up = (f"raise its {step} or epochs (e.g. {step}= x10), or pass lr='auto' to calibrate "
              f"it on this model")
    if unchanged:
        return "no-op", (f"{method} returned the model's weights unchanged: nothing was "
                         f"unlearned. Check that the forget set is not empty, then {fix_up}.")
    if before is None or after is None:
        return None
    if not math.isnan(before.retain_acc):
        flag = collapse_flag({"RA": [after.retain_acc]}, {"RA": [before.retain_acc]},
                             {"RA": chance}, near_chance=NEAR_CHANCE)
        if flag.level == "collapsed":
            return "collapse", (
                f"{method} collapsed: retain {noun} fell from {before.retain_acc:.3f} to "
                f"{after.retain_acc:.3f} on {rows[1]} retain rows (chance {chance:.3f}). Lower "
                f"its {step} (e.g. {step}= /10) or epochs, or pass lr='auto' to calibrate it on "
                f"this model.")
    moved = abs(after.forget_loss - before.forget_loss)
    scale = max(abs(before.forget_loss), 1e-6)
    same = torch.equal(before.predictions, after.predictions)
    if not math.isnan(moved) and (moved <= NOOP_RTOL * scale
                                  or (same and moved <= QUIET_RTOL * scale)):
        return "no-op", (
            f"{method} changed almost nothing: forget loss {before.forget_loss:.4f} -> "
            f"{after.forget_loss:.4f} ({moved / scale:.1%})"
            f"{' and no prediction changed' if same else ''} on {rows[0]} forget / {rows[1]} "
            f"retain rows. To unlearn, {fix_up}.")
    return None


def report(found: tuple[str, str] | None, guard: str) -> None:
    """Warn or raise for a verdict (nothing when ``found`` is None)."""
    if found is None or guard == "off":
        return
    kind, message = found
    if guard == "raise":
        raise UnlearningCheckError(message + " (guard='off' skips this check)", kind)
    warnings.warn(message, CollapseWarning if kind == "collapse" else NoOpWarning, stacklevel=4)


class Guard:
    """The probe of one classifier run: built before the method runs, judged after."""

    def __init__(self, model: nn.Module, forget: Iterable, retain: Iterable | None,
                 *, task: str = "classification"):
        self.model = model
        self.forget = sample_batches(forget) if task == "classification" else []
        self.retain = sample_batches(retain) if task == "classification" else []
        self.before = probe(model, self.forget, self.retain) if self.forget else None
        labels = [split_batch(b)[1].reshape(-1).cpu() for b in self.retain]
        self.chance = chance_accuracy(torch.cat(labels).numpy()) if labels else math.nan

    def judge(self, out: nn.Module, method: str, guard: str, step: str = "lr") -> None:
        after = probe(out, self.forget, self.retain) if self.before is not None else None
        rows = (sum(len(split_batch(b)[1]) for b in self.forget),
                sum(len(split_batch(b)[1]) for b in self.retain))
        report(verdict(method, self.before, after, same_weights(self.model, out),
                       chance=self.chance, rows=rows, step=step), guard)


def step_name(cfg: object) -> str:
    """The config field that sets a method's step size, as a fix names it."""
    for name in ("lr", "alpha", "forget_lr"):
        if hasattr(cfg, name):
            return name
    return "lr"


def lm_probe(model: nn.Module, forget, retain, rows: int = SLICE) -> Probe:
    """The :class:`Probe` of a causal LM on the first ``rows`` of two token sets: next-token
    accuracy on ``retain``'s labelled tokens, mean NLL of ``forget``'s, and every argmax."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stats = {}
    preds = []
    try:
        with torch.no_grad():
            for name, tokens in (("retain", retain), ("forget", forget)):
                if tokens is None or not len(tokens):
                    continue
                ids, labels, mask = (t[:rows].to(device) for t in
                                     (tokens.ids, tokens.labels, tokens.mask))
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
                target = labels[:, 1:]
                valid = target != -100
                logp = torch.log_softmax(logits, dim=-1)
                guess = logits.argmax(dim=-1)[valid]
                preds.append(guess.cpu())
                nll = -logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)[valid]
                stats[name] = (float((guess == target[valid]).float().mean()),
                               float(nll.mean()))
    finally:
        model.train(was_training)
    return Probe(stats.get("retain", (math.nan,))[0], stats.get("forget", (0, math.nan))[1],
                 torch.cat(preds) if preds else torch.empty(0))


def lm_chance(retain, rows: int = SLICE) -> float:
    """Share of the most frequent answer token in ``retain``'s first rows (a constant guess)."""
    if retain is None or not len(retain):
        return math.nan
    target = retain.labels[:rows, 1:]
    return chance_accuracy(target[target != -100].numpy())


def judge_lm(model: nn.Module, out: nn.Module, before: Probe, forget, retain, method: str,
             guard: str, step: str = "lr") -> None:
    """Warn or raise when an LM run collapsed (retain token accuracy near a constant guess's)
    or did nothing."""
    rows = (min(len(forget), SLICE), min(len(retain), SLICE) if retain is not None else 0)
    unchanged = out is not model and same_weights(model, out)  # inplace: judged on the probe
    report(verdict(method, before, lm_probe(out, forget, retain), unchanged,
                   chance=lm_chance(retain), rows=rows, noun="token accuracy", step=step),
           guard)
