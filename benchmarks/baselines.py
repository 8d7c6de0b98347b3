"""Leaderboards of the baseline methods on digits and fashion (quick protocol).

Writes ``baselines.json`` with each scenario's leaderboard and the bench's wall time.

    python benchmarks/baselines.py --seeds 3 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from obliviate.bench.config import DEFAULT_METHODS, BenchConfig
from obliviate.bench.runner import BenchRun


def run(scenario: str, seeds: int, run_dir: Path, extra: list[str]) -> dict:
    start = time.perf_counter()
    bench = BenchRun(BenchConfig(scenario=scenario, methods=list(DEFAULT_METHODS), seeds=seeds,
                                 out=run_dir, set=extra))
    board = bench.run()
    cols = ["method", "seeds", "RA", "FA", "TA", "MIA", "RA_gap", "FA_gap", "TA_gap", "MIA_gap",
            "avg_gap", "avg_gap_std", "time_s", "time_ratio", "status"]
    return {
        "scenario": scenario,
        "seeds": seeds,
        "wall_s": time.perf_counter() - start,
        "tuned_defaults": bench.tuned_defaults(),
        "leaderboard": json.loads(board[cols].to_json(orient="records")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", nargs="+", default=["digits", "fashion"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks"))
    parser.add_argument("--file", default="baselines.json", help="name of the JSON written")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"torch_threads": torch.get_num_threads(), "scenarios": []}
    for name in args.scenarios:
        results["scenarios"].append(run(name, args.seeds, args.runs / name, []))
        print(json.dumps(results["scenarios"][-1], indent=1))
    (args.out / args.file).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
