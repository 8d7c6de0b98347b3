"""DP-SGD originals under the challenge and quick protocols, against retrain and SCRUB.

Each epsilon is one bench run (its own run directory, all sharing one reference cache, so the
retrained populations are trained once): the challenge protocol at --models N on digits with
``dp-original`` at that epsilon, plus, in the first run, SCRUB (the best approximate method of
the digits challenge leaderboard in benchmarks/results/protocols.json); then the quick protocol
for the same entries. A DP original needs no unlearning step, so its time is ~0; what it costs
is its training, measured here once against the ordinary original's.

Results are merged into dp_originals.json (each entry with its own provenance), so the
epsilons can be run in separate commands; the published file comes from:

    python benchmarks/dp_originals.py --epsilons 8 --with-scrub --out benchmarks/results
    python benchmarks/dp_originals.py --epsilons 4 1 --training-cost --out benchmarks/results

A smoke run: ``--epsilons 8 --models 3 --seeds 1 --set recipe.epochs=1 --out /tmp/dp``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.provenance import provenance, write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress
from obliviate.dp import DPRecipe, train_private

BENCHMARK = "dp-originals/1"

KEEP = ["method", "F", "F_ceiling", "F_ratio", "score", "RA", "TA", "FA", "RA_ratio", "TA_ratio",
        "MIA", "MIA_gap", "avg_gap", "time_s", "time_ratio", "status"]


def bench(name: str, runs: Path, cache: Path, methods: list[str], sets: list[str],
          **kw) -> dict:
    start = time.perf_counter()
    run = BenchRun(BenchConfig(scenario="digits", methods=methods, out=runs / name, cache=cache,
                               quiet=True, set=sets, **kw))
    board = run.run(Progress(say=lambda msg: print(f"  {name}: {msg}", flush=True)))
    cols = [c for c in KEEP if c in board]
    return {"name": name, "wall_s": round(time.perf_counter() - start, 2),
            "failures": run.failures,
            "leaderboard": json.loads(board[cols].to_json(orient="records"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilons", type=float, nargs="*", default=[8.0, 4.0, 1.0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the quick protocol")
    parser.add_argument("--with-scrub", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--training-cost", action="store_true",
                        help="also time one DP training against one ordinary training")
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/dp"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = args.out / "dp_originals.json"
    results = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    if results.get("models", args.models) != args.models:
        raise SystemExit(f"{path} holds N={results['models']} runs; write N={args.models} "
                         f"elsewhere (--out) so that its entries stay comparable.")
    results["models"] = args.models
    results.pop("provenance", None)
    cache = args.runs / "cache"

    def save() -> None:
        write_results(path, results, protocols=["challenge", "quick"], benchmark=BENCHMARK)

    for eps in args.epsilons:
        methods = ["dp-original"] + (["scrub"] if args.with_scrub else [])
        sets = [f"dp-original.epsilon={eps}", *args.set]
        tag = f"eps{eps:g}"
        results["runs"][tag] = {
            "epsilon": eps,
            "challenge": bench(f"challenge-{tag}", args.runs, cache, methods, sets,
                               protocol="challenge", models=args.models),
            "quick": bench(f"quick-{tag}", args.runs, cache, methods, sets, seeds=args.seeds),
            "provenance": provenance(["challenge", "quick"], BENCHMARK),
        }
        save()
    if args.training_cost:  # CPU seconds with one torch thread: robust to a shared machine
        torch.set_num_threads(1)
        sc = ob.load_scenario("digits")
        sc.train_original_timed(0)  # warm-up
        start = time.process_time()
        sc.train_original_timed(0)
        plain = time.process_time() - start
        start = time.process_time()
        private = train_private(sc, DPRecipe(epsilon=8.0), seed=0)
        dp_cpu = time.process_time() - start
        results["training_cost"] = {"ordinary_cpu_s": plain, "dp_cpu_s": dp_cpu,
                                    "ratio": dp_cpu / plain,
                                    "noise_multiplier_eps8": private.noise_multiplier,
                                    "epsilon_spent": private.epsilon,
                                    "provenance": provenance((), BENCHMARK)}
        save()


if __name__ == "__main__":
    main()
