"""Population training (torch.func) against the reference loop, on digits.

For each MODEL:M in ``--runs``, model i trains on the retain set of forget spec random:0.1 drawn
with seed i, from seed i, with the scenario's full recipe: once all together with
:func:`train_population`, once one by one with :func:`train_model`. Writes
``population_speed.json`` with the wall and CPU seconds of both, the speed-up and the test
accuracy of both. The published file comes from (two threads, on an idle 2-core machine):

    python benchmarks/population_speed.py --runs mlp:64 cnn:16 --repeats 2 --threads 2 \
        --out benchmarks/results

A smoke run: ``--runs mlp:2 --epochs 1 --out /tmp/population``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

import obliviate as ob
from obliviate.bench.provenance import write_results
from obliviate.evaluate.utility import accuracy
from obliviate.population import predict_population, train_population
from obliviate.train import train_model

BENCHMARK = "population-speed/1"


def retain_masks(model: str, count: int) -> torch.Tensor:
    """Row i: the retain set of random:0.1 with forget seed i."""
    rows = []
    for i in range(count):
        sc = ob.load_scenario("digits", forget="random:0.1", seed=i, model=model)
        row = torch.zeros(len(sc.splits.y_train), dtype=torch.bool)
        row[sc.retain_idx] = True
        rows.append(row)
    return torch.stack(rows)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def compare(model: str, count: int, epochs: int | None, chunk_size: int | None,
            repeats: int = 1) -> dict:
    sc = ob.load_scenario("digits", model=model)
    s, masks, seeds = sc.splits, retain_masks(model, count), list(range(count))
    recipe = sc.recipe if epochs is None else dataclasses.replace(sc.recipe, epochs=epochs)
    args = (sc.model_name, sc.input_shape, sc.num_classes)

    def population():
        return train_population(*args, s.x_train, s.y_train, masks, seeds, recipe,
                                chunk_size=chunk_size)

    def loop():
        return [train_model(*args, s.x_train[m], s.y_train[m], recipe, seed)[0]
                for m, seed in zip(masks, seeds, strict=True)]

    # Warm both paths up (lazy kernel set-up) on two models and one epoch, untimed.
    warm = dataclasses.replace(recipe, epochs=1)
    train_population(*args, s.x_train, s.y_train, masks[:2], seeds[:2], warm)
    train_model(*args, s.x_train, s.y_train, warm, 0)

    # Alternate the two and keep each one's fastest run: on a shared machine, load that comes
    # and goes then slows both alike instead of whichever happened to run during it.
    pop_wall = loop_wall = pop_cpu = loop_cpu = float("inf")
    for _ in range(repeats):
        pop, wall, cpu = timed(population)
        pop_wall, pop_cpu = min(pop_wall, wall), min(pop_cpu, cpu)
        models, wall, cpu = timed(loop)
        loop_wall, loop_cpu = min(loop_wall, wall), min(loop_cpu, cpu)
    y = s.y_test.numpy()
    pop_acc = np.array([accuracy(z, y) for z in predict_population(pop, s.x_test)])
    loop_acc = np.array([accuracy(z, y) for z in predict_population(models, s.x_test)])
    result = {
        "model": model, "models": count, "epochs": recipe.epochs, "chunk_size": chunk_size,
        "repeats": repeats, "population_wall_s": round(pop_wall, 2), "loop_wall_s": round(loop_wall, 2),
        "speedup_wall": round(loop_wall / pop_wall, 2),
        "population_cpu_s": round(pop_cpu, 2), "loop_cpu_s": round(loop_cpu, 2),
        "speedup_cpu": round(loop_cpu / pop_cpu, 2),
        "population_test_acc_mean": round(float(pop_acc.mean()), 4),
        "population_test_acc_std": round(float(pop_acc.std()), 4),
        "loop_test_acc_mean": round(float(loop_acc.mean()), 4),
        "loop_test_acc_std": round(float(loop_acc.std()), 4),
        "max_abs_acc_diff_per_model": round(float(np.abs(pop_acc - loop_acc).max()), 4),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["mlp:64", "cnn:16", "cnn:64"],
                        help="MODEL:M pairs to compare")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a machine shared with other work, 1 gives the "
                             "steadiest timings")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1,
                        help="time both paths this many times, alternating; keep the fastest")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {
        "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()], "runs": [],
    }
    for spec in args.runs:
        model, count = spec.split(":")
        results["runs"].append(compare(model, int(count), args.epochs, args.chunk_size,
                                       args.repeats))
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_results(args.out / "population_speed.json", results, benchmark=BENCHMARK)


if __name__ == "__main__":
    main()
