"""Populations of reference models (retrained, shadow) trained at once and cached."""

from __future__ import annotations

import time

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
    import hashlib

    digest = hashlib.sha256(masks.numpy().tobytes() + repr(seeds).encode()).hexdigest()[:12]
    fingerprint = sc.fingerprint(f"{tag}-{len(seeds)}-{digest}", seed)
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


def retain_masks(sc: Scenario, n: int) -> torch.Tensor:
    """(n, train) masks that select the retain set for every model."""
    masks = torch.zeros(n, len(sc.splits.y_train), dtype=torch.bool)
    masks[:, torch.from_numpy(sc.retain_idx)] = True
    return masks


def fallback_note(pop: Population, what: str) -> str | None:
    """The line a bench prints (once) and keeps in config.json when ``pop`` fell back to the
    reference loop, one model at a time."""
    if pop.mode != "loop":
        return None
    return (f"{what} trained one model at a time with the reference loop: "
            f"{pop.note or 'the model cannot be vectorised'}")
