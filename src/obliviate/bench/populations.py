"""Populations of reference models (retrained, shadow) trained at once and cached, and their
outputs, which a warm bench reads from the cache instead of predicting again."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from obliviate.cache import ModelCache
from obliviate.data.scenario import Scenario
from obliviate.population import Population, train_population


def cached_population(cache: ModelCache, sc: Scenario, tag: str, seed: int, masks: torch.Tensor,
                      seeds: list[int], *, chunk_size: int | None = None,
                      device: str | torch.device = "cpu") -> Population:
    """The population ``tag`` of ``sc`` for ``seed``: loaded when cached, else trained and saved.

    The fingerprint covers the scenario (data, model, recipe, retain set), the tag, the masks and
    the seeds, so any change trains anew. ``pop.mode`` says how it was trained ("wide", "vmap"
    or "loop", the fallback for models vmap cannot trace), also when loaded from the cache.
    """
    fingerprint = population_fingerprint(sc, tag, seed, masks, seeds)
    cached = cache.load_population(fingerprint, sc.new_model(0))
    if cached is not None:
        return cached
    start = time.perf_counter()
    pop = train_population(sc.model_name, sc.input_shape, sc.num_classes, sc.splits.x_train,
                           sc.splits.y_train, masks, seeds, sc.recipe, chunk_size=chunk_size,
                           model_options=sc.model_options, device=device)
    cache.save_population(fingerprint, pop, {"tag": tag, "seeds": seeds, "mode": pop.mode,
                                             "note": pop.note,
                                             "train_seconds": time.perf_counter() - start})
    return pop


def population_fingerprint(sc: Scenario, tag: str, seed: int, masks: torch.Tensor,
                           seeds: list[int]) -> str:
    """Cache key of a population: the scenario, the tag, the masks and the seeds."""
    digest = hashlib.sha256(masks.numpy().tobytes() + repr(seeds).encode()).hexdigest()[:12]
    return sc.fingerprint(f"{tag}-{len(seeds)}-{digest}", seed)


@dataclass
class PopulationOutputs:
    """Float64 logits (M, n_i, classes) of a population on each of several inputs, and how the
    population was trained (``mode``, ``note``: see :class:`obliviate.population.Population`)."""

    logits: list[np.ndarray]
    mode: str
    note: str


def population_outputs(cache: ModelCache, sc: Scenario, tag: str, seed: int,
                       masks: torch.Tensor, seeds: list[int], inputs: Sequence[torch.Tensor], *,
                       chunk_size: int | None = None, device: str | torch.device = "cpu"
                       ) -> PopulationOutputs:
    """The logits of population ``tag`` on each of ``inputs``: read from the cache when they
    were stored for these inputs, else predicted in one pass over all inputs (the population
    loaded or trained by :func:`cached_population`) and stored.

    The logits are the population's float32 outputs, stored as float32 and widened to float64
    as :func:`obliviate.population.predict_population` does: the same numbers either way.
    """
    x = torch.cat([t.cpu() for t in inputs])
    digest = hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest()[:12]
    key = f"{population_fingerprint(sc, tag, seed, masks, seeds)}-logits-{digest}"
    sizes = [len(t) for t in inputs]
    hit = cache.read(key)
    if hit is not None and "logits" in hit[0] and hit[0]["logits"].shape[1] == sum(sizes):
        logits, info = hit[0]["logits"], hit[1]
        mode, note = info.get("mode", "vmap"), info.get("note", "")
    else:
        pop = cached_population(cache, sc, tag, seed, masks, seeds, chunk_size=chunk_size,
                                device=device)
        logits = pop.predict(x).float().cpu()
        mode, note = pop.mode, pop.note
        cache.write(key, {"logits": logits}, {"tag": tag, "mode": mode, "note": note})
    wide = logits.double().numpy()
    bounds = np.cumsum([0, *sizes])
    return PopulationOutputs([wide[:, a:b] for a, b in zip(bounds[:-1], bounds[1:],
                                                             strict=True)], mode, note)


def retain_masks(sc: Scenario, n: int) -> torch.Tensor:
    """(n, train) masks that select the retain set for every model."""
    masks = torch.zeros(n, len(sc.splits.y_train), dtype=torch.bool)
    masks[:, torch.from_numpy(sc.retain_idx)] = True
    return masks


def fallback_note(pop: Population | PopulationOutputs, what: str) -> str | None:
    """The line a bench prints (once) and keeps in config.json when ``pop`` fell back to the
    reference loop, one model at a time."""
    if pop.mode != "loop":
        return None
    return (f"{what} trained one model at a time with the reference loop: "
            f"{pop.note or 'the model cannot be vectorised'}")
