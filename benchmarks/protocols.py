"""Leaderboards and costs of the evaluation protocols on digits.

Runs, each in its own run directory under --runs and sharing one reference-model cache:

* quick: every registered method on digits with the given forget specs (random:0.1, class:K);
* challenge cost: the whole challenge protocol for ``finetune`` at N=64 and N=128 from an empty
  cache (wall time, split into population training and unlearning runs);
* challenge: every registered method at --models N, with the ceiling;
* ulira: every registered method at --ulira-models N.

Writes ``protocols.json`` to --out.

    python benchmarks/protocols.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import obliviate as ob
from obliviate.bench.config import BenchConfig
from obliviate.bench.runner import BenchRun

COLUMNS = {
    "quick": ["method", "RA", "FA", "TA", "MIA", "avg_gap", "time_s", "time_ratio", "status"],
    "challenge": ["method", "F", "F_ceiling", "F_ratio", "score", "RA_ratio", "TA_ratio", "FA",
                  "time_s", "time_ratio", "status"],
    "ulira": ["method", "attack_acc", "attack_acc_at_0", "auc", "tpr_1pct", "tpr_01pct", "TA",
              "time_s", "status"],
}


def bench(name: str, runs: Path, cache: Path, **kw) -> dict:
    start = time.perf_counter()
    run = BenchRun(BenchConfig(scenario="digits", out=runs / name, cache=cache, quiet=True, **kw))
    board = run.run(progress=lambda msg: print(f"  {name}: {msg}", flush=True))
    cols = [c for c in COLUMNS[kw.get("protocol", "quick")] if c in board]
    return {"name": name, "wall_s": round(time.perf_counter() - start, 2),
            "failures": run.failures, "tuned_defaults": run.tuned_defaults(),
            "leaderboard": json.loads(board[cols].to_json(orient="records"))}


def training_seconds(cache: Path) -> dict[str, float]:
    """Training seconds recorded in each cached reference file's metadata."""
    from safetensors import safe_open

    out = {}
    for f in sorted(cache.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            info = json.loads((fh.metadata() or {}).get("info", "{}"))
        out[f.stem] = round(float(info.get("train_seconds", float("nan"))), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/protocols"))
    parser.add_argument("--forgets", nargs="+", default=["random:0.1", "class:3"])
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--ulira-models", type=int, default=32)
    parser.add_argument("--parts", nargs="+", default=["quick", "cost", "challenge", "ulira"])
    parser.add_argument("--methods", nargs="+", default=None,
                        help="methods to bench (default: every registered classifier method)")
    parser.add_argument("--exclude", nargs="+", default=[],
                        help="registered methods to leave out, e.g. dp-original (a DP training "
                             "per run)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    methods = [m for m in (args.methods or ob.METHODS.names()) if m not in args.exclude]
    cache = args.runs / "cache"
    results: dict = {"methods": methods}
    path = args.out / "protocols.json"

    def save() -> None:
        path.write_text(json.dumps(results, indent=2) + "\n")

    if "quick" in args.parts:
        results["quick"] = [bench(f"quick-{f.replace(':', '')}", args.runs, cache, methods=methods,
                                  forget=f, seeds=3) for f in args.forgets]
        save()
    if "cost" in args.parts:
        results["challenge_cost"] = []
        for n in (64, 128):
            fresh = args.runs / f"cost-cache-{n}"
            shutil.rmtree(fresh, ignore_errors=True)
            res = bench(f"cost-{n}", args.runs, fresh, methods=["finetune"],
                        protocol="challenge", models=n)
            results["challenge_cost"].append(
                {"models": n, **res, "training_seconds": training_seconds(fresh)})
            save()
    if "challenge" in args.parts:
        results["challenge"] = bench("challenge", args.runs, cache, methods=methods,
                                     protocol="challenge", models=args.models)
        save()
    if "ulira" in args.parts:
        results["ulira"] = bench("ulira", args.runs, cache, methods=methods, protocol="ulira",
                                 models=args.ulira_models)
        save()


if __name__ == "__main__":
    main()
