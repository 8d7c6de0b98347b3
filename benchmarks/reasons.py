"""Mislabeled and poisoned training data: does retraining fix the damage, and how close does
each unlearning method get? Quick protocol, one JSON per case in benchmarks/results/.

For mislabeled data the damage is lost test accuracy (TA); for a backdoor it is the attack
success rate (ASR) on triggered test inputs. ``repair`` is the share of the damage a method
undoes: (value - original) / (retrain - original), averaged over seeds; 1 is retrain's repair.

The published files come from:

    python benchmarks/reasons.py --case digits:mislabeled:0.2 --case digits:poisoned:0.05 \
        --seeds 3 --out benchmarks/results
    python benchmarks/reasons.py --case fashion:mislabeled:0.2 --case fashion:poisoned:0.02 \
        --seeds 1 --set scenario.train_size=5000 --out benchmarks/results

A smoke run: ``--case digits:mislabeled:0.2 --seeds 1 --set recipe.epochs=1 --out /tmp/r``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from obliviate.bench.config import BenchConfig
from obliviate.bench.provenance import write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress

BENCHMARK = "reasons/1"

METHODS = ["retrain", "finetune", "neggrad", "neggrad+", "random-label", "scrub", "salun",
           "l1-sparse"]
COLUMNS = ["method", "seeds", "RA", "FA", "TA", "TA_std", "ASR", "ASR_std", "MIA", "avg_gap",
           "time_s", "time_ratio", "status"]


def repair(board, measure: str) -> dict[str, float]:
    """(value - original) / (retrain - original) of ``measure`` for each method."""
    rows = board.set_index("method")[measure]
    before, after = rows["original"], rows["retrain (reference)"]
    if after == before:
        return {}
    # a method that failed on every seed has no value (null in the JSON)
    return {m: None if v != v else float((v - before) / (after - before))
            for m, v in rows.items()}


def run_case(case: str, seeds: int, runs: Path, extra: list[str]) -> dict:
    scenario, forget = case.split(":", 1)
    start = time.perf_counter()
    bench = BenchRun(BenchConfig(scenario=scenario, methods=METHODS, forget=forget, seeds=seeds,
                                 out=runs / case.replace(":", "_"), set=extra, quiet=True))
    board = bench.run(Progress(say=lambda msg: print(f"  {case}: {msg}", flush=True)))
    measure = "ASR" if forget.startswith("poisoned") else "TA"
    return {
        "scenario": scenario,
        "forget": forget,
        "set": extra,
        "seeds": seeds,
        "train_size": len(bench.rb.scenario.splits.y_train),
        "forget_size": len(bench.rb.scenario.forget_idx),
        "damage_measure": measure,
        "wall_s": time.perf_counter() - start,
        "tuned_defaults": bench.tuned_defaults(),
        # retrain's value - the original's: when it is small, repair ratios are noise
        "damage": float(board.set_index("method")[measure]["retrain (reference)"]
                        - board.set_index("method")[measure]["original"]),
        "repair": repair(board, measure),
        "leaderboard": json.loads(board[[c for c in COLUMNS if c in board]]
                                  .to_json(orient="records")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", required=True,
                        help="SCENARIO:FORGET, e.g. digits:mislabeled:0.2 (repeat)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/reasons"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for case in args.case:
        result = {"torch_threads": torch.get_num_threads(), **run_case(case, args.seeds,
                                                                       args.runs, args.set)}
        name = "reasons_" + "_".join(case.split(":")[:2]) + ".json"
        write_results(args.out / name, result, protocols=["quick"], benchmark=BENCHMARK)
        print(json.dumps({k: result[k] for k in ("scenario", "forget", "wall_s", "repair")},
                         indent=1))


if __name__ == "__main__":
    main()
