"""SISA's deletion cost against a full retrain, and its accuracy, over shards S and slices R.

For each scenario and each (S, R): train a persistent SISA model (safetensors checkpoints, the
ledger), then time --singles single-id deletion requests and one request of 1% of the training
set, each through ``SisaModel.forget`` (checkpoint I/O included). The baseline is one model of
the scenario's recipe trained from scratch on the training set less one example, timed in the
same process. Test accuracy is measured for mean-softmax and majority-vote aggregation.

    cpu timeout 900 env PYTHONPATH=src python benchmarks/sisa_costs.py --scenario digits
    cpu timeout 900 env PYTHONPATH=src python benchmarks/sisa_costs.py --scenario fashion \
        --option train_size=5000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import obliviate as ob
from obliviate.sisa import SisaEnsemble, SisaModel
from obliviate.train import train_model


def accuracy(model, sc) -> float:
    with torch.no_grad():
        return float((model(sc.splits.x_test).argmax(1) == sc.splits.y_test).float().mean())


def retrain_seconds(sc, repeats: int) -> tuple[float, float]:
    """Seconds (median) and test accuracy of one model trained on the train set less one row."""
    keep = np.arange(1, len(sc.splits.y_train))
    train_model(sc.model_name, sc.input_shape, sc.num_classes, sc.splits.x_train[:256],
                sc.splits.y_train[:256], sc.recipe, seed=0)  # warm-up (oneDNN's first calls)
    times, acc = [], 0.0
    for r in range(repeats):
        model, seconds = train_model(sc.model_name, sc.input_shape, sc.num_classes,
                                     sc.splits.x_train[keep], sc.splits.y_train[keep],
                                     sc.recipe, seed=r)
        times.append(seconds)
        acc = accuracy(model, sc)
    return statistics.median(times), acc


def one_config(sc, shards: int, slices: int, singles: int, root: Path) -> dict:
    n = len(sc.splits.y_train)
    start = time.perf_counter()
    model = SisaModel.train(root / f"s{shards}-r{slices}", sc.splits.x_train, sc.splits.y_train,
                            model_name=sc.model_name, shards=shards, slices=slices,
                            recipe=sc.recipe, seed=0, num_classes=sc.num_classes)
    train_s = time.perf_counter() - start
    served = model.ensemble()
    row = {"S": shards, "R": slices, "train_s": train_s, "test_acc_mean": accuracy(served, sc),
           "test_acc_vote": accuracy(SisaEnsemble(list(served.constituents), "vote"), sc)}
    rng = np.random.default_rng(1)
    order = rng.permutation(n)
    single = [model.forget([int(i)]) for i in order[:singles]]
    batch_ids = order[singles: singles + max(1, n // 100)]
    batch = model.forget(batch_ids)
    row.update(
        single_s=[r.seconds for r in single],
        single_s_median=statistics.median(r.seconds for r in single),
        single_slices_retrained=[slices - next(iter(r.shards.values())) for r in single],
        batch_ids=len(batch_ids), batch_s=batch.seconds,
        batch_shards_retrained=len(batch.shards),
        test_acc_after=accuracy(model.ensemble(), sc),
    )
    model.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="digits")
    parser.add_argument("--option", nargs="*", default=[], help="scenario options NAME=VALUE")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--slices", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--singles", type=int, default=5)
    parser.add_argument("--retrain-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    options = dict(o.split("=", 1) for o in args.option)
    sc = ob.load_scenario(args.scenario, **options)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"sisa_{args.scenario}.json"
    started = time.perf_counter()
    retrain_s, retrain_acc = retrain_seconds(sc, args.retrain_repeats)
    print(f"{args.scenario}: full retrain {retrain_s:.2f}s, test acc {retrain_acc:.3f}", flush=True)
    result = {"scenario": args.scenario, "options": sc.options, "model": sc.model_name,
              "recipe": dict(vars(sc.recipe)), "n_train": len(sc.splits.y_train),
              "threads": torch.get_num_threads(), "retrain_s": retrain_s,
              "retrain_test_acc": retrain_acc, "configs": []}
    root = Path(tempfile.mkdtemp(prefix="sisa-bench-"))
    try:
        for s in args.shards:
            for r in args.slices:
                row = one_config(sc, s, r, args.singles, root)
                row["speedup_single"] = retrain_s / row["single_s_median"]
                row["speedup_batch"] = retrain_s / row["batch_s"]
                result["configs"].append(row)
                print(f"  S={s:2d} R={r}: acc {row['test_acc_mean']:.3f} (vote "
                      f"{row['test_acc_vote']:.3f}); single {row['single_s_median']:.2f}s "
                      f"(x{row['speedup_single']:.2f}); 1% batch {row['batch_s']:.2f}s "
                      f"(x{row['speedup_batch']:.2f}, {row['batch_shards_retrained']} shards)",
                      flush=True)
                result["wall_s"] = time.perf_counter() - started
                path.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
