"""Quick-protocol leaderboards of the domain scenarios, with each scenario's wall time.

Writes ``domains_<scenario>.json`` per scenario: the leaderboard (the scenario's own utility
columns: accuracy, RMSE or AUROC, beside the forgetting measures), the bench's wall time and
the scale adjustments of method defaults the scenario makes.

MovieLens forgets 5% of the users (every rating of each): the users are drawn exactly as the
``groups:0.05`` forget spec draws them (seed 0) and passed as an ``ids:`` file, so the result
holds whether or not this build's forget specs include ``groups:``.

The published files come from (seeds as recorded in each JSON)::

    python benchmarks/domains.py --scenarios shuttle credit rotten-tomatoes --seeds 3
    python benchmarks/domains.py --scenarios movielens mnist5k --seeds 1

``--set recipe.epochs=1`` (any bench ``--set``) makes a smoke run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.provenance import write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress
from obliviate.evaluate.tasks import gap_metrics
from obliviate.unlearning import METHODS

BENCHMARK = "domains/1"

CLASSIFIER_METHODS = ["retrain", "finetune", "neggrad", "neggrad+", "random-label", "scrub",
                      "salun", "l1-sparse"]
FORGET = {"mnist5k": "random:0.1", "credit": "random:0.1", "rotten-tomatoes": "random:0.1",
          "shuttle": "class:1"}


def users_forget(run_dir: Path, fraction: float = 0.05, seed: int = 0) -> tuple[str, int]:
    """An ids file of every rating of a seeded ``fraction`` of the MovieLens users."""
    groups = ob.load_scenario("movielens", forget="random:0.1").splits.groups.numpy()
    uniq = np.unique(groups)
    chosen = np.random.default_rng(seed).choice(uniq, size=int(round(fraction * len(uniq))),
                                                replace=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "forget_users.txt"
    path.write_text("\n".join(map(str, np.flatnonzero(np.isin(groups, chosen)))) + "\n")
    return f"ids:{path}", len(chosen)


def run(scenario: str, seeds: int, run_dir: Path, extra: list[str]) -> dict:
    note = ""
    if scenario == "movielens":
        forget, n_users = users_forget(run_dir)
        note = f"groups:0.05 of users as an ids file ({n_users} users, every rating)"
    else:
        forget = FORGET[scenario]
    task = ob.load_scenario(scenario, forget=forget).task
    methods = [m for m in CLASSIFIER_METHODS if METHODS.get(m).works_on(task)]
    start = time.perf_counter()
    bench = BenchRun(BenchConfig(scenario=scenario, methods=methods, forget=forget, seeds=seeds,
                                 out=run_dir / "bench", set=extra, quiet=True))
    board = bench.run(Progress(say=lambda msg: print(f"  {scenario}: {msg}", flush=True)))
    wall = time.perf_counter() - start
    metrics = list(gap_metrics(board.columns))
    cols = ["method", "seeds", *metrics, *[f"{m}_std" for m in metrics],
            *[f"{m}_gap" for m in metrics], "avg_gap", "avg_gap_std", "time_s", "time_ratio",
            "status"]
    return {
        "scenario": scenario,
        "task": task,
        "forget": note or forget,
        "seeds": seeds,
        "set": extra,
        "sizes": bench.rb.scenario.describe()["sizes"],
        "wall_s": wall,
        "tuned_defaults": bench.tuned_defaults(),
        "leaderboard": json.loads(board[[c for c in cols if c in board]].to_json(
            orient="records")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+",
                        default=["shuttle", "credit", "rotten-tomatoes", "movielens", "mnist5k"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/domains"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.scenarios:
        result = {"torch_threads": torch.get_num_threads(), **run(name, args.seeds,
                                                                  args.runs / name, args.set)}
        write_results(args.out / f"domains_{name}.json", result, protocols=["quick"],
                      benchmark=BENCHMARK)
        print(json.dumps({k: result[k] for k in ("scenario", "wall_s")}), flush=True)


if __name__ == "__main__":
    main()
