"""SISA's deletion cost against a full retrain, and its accuracy, over shards S and slices R.

For each scenario and each (S, R): train a persistent SISA model (safetensors checkpoints, the
ledger), then time --singles single-id deletion requests and one request of 1% of the training
set, each through ``SisaModel.forget`` (checkpoint I/O included). The baseline is one model of
the scenario's recipe trained from scratch on the training set less one example, timed in the
same process right before each configuration's deletions, so that each ratio compares times
taken side by side. Every time is taken twice: wall clock and the process's CPU time (with one
torch thread, CPU time counts the work done and barely moves when other processes share the
cores; wall time does). Test accuracy is measured for mean-softmax and majority-vote aggregation.
Writes ``sisa_<scenario>.json``; the published files come from:

    python benchmarks/sisa_costs.py --scenario digits --out benchmarks/results
    python benchmarks/sisa_costs.py --scenario fashion --option train_size=3000 \
        --out benchmarks/results

A smoke run: ``--shards 2 --slices 1 --singles 1 --epochs 1 --out /tmp/sisa``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import obliviate as ob
from obliviate.batches import forward
from obliviate.bench.provenance import write_results
from obliviate.sisa import SisaEnsemble, SisaModel
from obliviate.train import train_model

BENCHMARK = "sisa-costs/1"


def accuracy(model, sc) -> float:
    with torch.no_grad():
        logits = forward(model, sc.splits.x_test)
        return float((logits.argmax(1) == sc.splits.y_test).float().mean())


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def retrain(sc, seed: int = 0) -> tuple[Clock, float]:
    """Time and test accuracy of one model trained on the train set less one row."""
    keep = np.arange(1, len(sc.splits.y_train))
    with Clock() as clock:
        model, _ = train_model(sc.model_name, sc.input_shape, sc.num_classes,
                               sc.splits.x_train[keep], sc.splits.y_train[keep], sc.recipe,
                               seed=seed)
    return clock, accuracy(model, sc)


def one_config(sc, shards: int, slices: int, singles: int, root: Path) -> dict:
    n = len(sc.splits.y_train)
    with Clock() as train:
        model = SisaModel.train(root / f"s{shards}-r{slices}", sc.splits.x_train,
                                sc.splits.y_train, model_name=sc.model_name, shards=shards,
                                slices=slices, recipe=sc.recipe, seed=0,
                                num_classes=sc.num_classes)
    served = model.ensemble()
    row = {"S": shards, "R": slices, "train_s": train.wall, "train_cpu_s": train.cpu,
           "test_acc_mean": accuracy(served, sc),
           "test_acc_vote": accuracy(SisaEnsemble(list(served.constituents), "vote"), sc)}
    full, _ = retrain(sc)  # the baseline, timed next to this configuration's deletions
    rng = np.random.default_rng(1)
    order = rng.permutation(n)
    single, clocks = [], []
    for i in order[:singles]:
        with Clock() as clock:
            single.append(model.forget([int(i)]))
        clocks.append(clock)
    batch_ids = order[singles: singles + max(1, n // 100)]
    with Clock() as batch_clock:
        batch = model.forget(batch_ids)
    single_wall = statistics.median(c.wall for c in clocks)
    single_cpu = statistics.median(c.cpu for c in clocks)
    row.update(
        retrain_s=full.wall, retrain_cpu_s=full.cpu,
        single_s=[c.wall for c in clocks], single_cpu_s=[c.cpu for c in clocks],
        single_s_median=single_wall, single_cpu_s_median=single_cpu,
        single_slices_retrained=[slices - next(iter(r.shards.values())) for r in single],
        batch_ids=len(batch_ids), batch_s=batch_clock.wall, batch_cpu_s=batch_clock.cpu,
        batch_shards_retrained=len(batch.shards),
        speedup_single=full.wall / single_wall, speedup_single_cpu=full.cpu / single_cpu,
        speedup_batch=full.wall / batch_clock.wall,
        speedup_batch_cpu=full.cpu / batch_clock.cpu,
        test_acc_after=accuracy(model.ensemble(), sc),
    )
    model.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="digits")
    parser.add_argument("--option", nargs="*", default=[], help="scenario options NAME=VALUE")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--slices", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--singles", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the recipe's epochs (smoke runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = dict(o.split("=", 1) for o in args.option)
    recipe = {"epochs": args.epochs} if args.epochs is not None else None
    sc = ob.load_scenario(args.scenario, recipe=recipe, **options)
    path = args.out / f"sisa_{args.scenario}.json"
    started = time.perf_counter()
    retrain(sc)  # warm-up: oneDNN's first calls are slow
    full, retrain_acc = retrain(sc)
    print(f"{args.scenario}: full retrain {full.wall:.2f}s ({full.cpu:.2f}s CPU), test acc "
          f"{retrain_acc:.3f}", flush=True)
    result = {"scenario": args.scenario, "options": sc.options, "model": sc.model_name,
              "recipe": dict(vars(sc.recipe)), "n_train": len(sc.splits.y_train),
              "threads": torch.get_num_threads(), "retrain_test_acc": retrain_acc,
              "configs": []}
    root = Path(tempfile.mkdtemp(prefix="sisa-bench-"))
    try:
        for s in args.shards:
            for r in args.slices:
                row = one_config(sc, s, r, args.singles, root)
                result["configs"].append(row)
                print(f"  S={s:2d} R={r}: acc {row['test_acc_mean']:.3f} (vote "
                      f"{row['test_acc_vote']:.3f}); retrain {row['retrain_cpu_s']:.2f}s CPU; "
                      f"single {row['single_cpu_s_median']:.2f}s CPU "
                      f"(x{row['speedup_single_cpu']:.2f}, wall x{row['speedup_single']:.2f}); "
                      f"1% batch {row['batch_cpu_s']:.2f}s CPU (x{row['speedup_batch_cpu']:.2f}, "
                      f"wall x{row['speedup_batch']:.2f}, {row['batch_shards_retrained']} shards)",
                      flush=True)
                result["wall_s"] = time.perf_counter() - started
                write_results(path, result, benchmark=BENCHMARK)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
