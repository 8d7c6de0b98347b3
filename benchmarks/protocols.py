"""Leaderboards and costs of the evaluation protocols on digits.

Runs, each in its own run directory under --runs and sharing one reference-model cache:

* quick: every registered classifier method on digits with the given forget specs (random:0.1, class:K);
* challenge cost: the whole challenge protocol for ``finetune`` at N=64 and N=128 from an empty
  cache (wall time, split into population training and unlearning runs);
* challenge: every registered method at --models N, with the ceiling;
* ulira: every registered method at --ulira-models N.

Writes --file (``protocols.json``) to --out, after each part. The published files come from::

    python benchmarks/protocols.py --parts quick cost --exclude dp-original \
        --file protocols_quick_cost.json --out benchmarks/results
    python benchmarks/protocols.py --parts challenge ulira --exclude dp-original \
        --out benchmarks/results

(``dp-original`` trains a DP model per run; benchmarks/dp_originals.py measures it.) A smoke
run: ``--methods finetune --forgets random:0.1 --seeds 1 --cost-models 3 --models 3
--ulira-models 6 --ulira-targets 2 --set recipe.epochs=1 --out /tmp/protocols``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from obliviate.bench.config import BenchConfig
from obliviate.bench.provenance import provenance, write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress
from obliviate.unlearning import METHODS

BENCHMARK = "protocols/1"

COLUMNS = {
    "quick": ["method", "RA", "FA", "TA", "MIA", "avg_gap", "time_s", "time_ratio", "status"],
    "challenge": ["method", "F", "F_ceiling", "F_ratio", "score", "RA_ratio", "TA_ratio", "FA",
                  "time_s", "time_ratio", "status"],
    "ulira": ["method", "attack_acc", "attack_acc_at_0", "auc", "tpr_1pct", "tpr_01pct", "TA",
              "time_s", "status"],
}


PROTOCOL_OF = {"quick": "quick", "challenge_cost": "challenge", "challenge": "challenge",
               "ulira": "ulira"}  # each part of the JSON and the protocol it runs


def bench(name: str, runs: Path, cache: Path, sets: list[str], **kw) -> dict:
    start = time.perf_counter()
    run = BenchRun(BenchConfig(scenario="digits", out=runs / name, cache=cache, quiet=True,
                               set=sets, **kw))
    board = run.run(Progress(say=lambda msg: print(f"  {name}: {msg}", flush=True)))
    protocol = kw.get("protocol", "quick")
    cols = [c for c in COLUMNS[protocol] if c in board]
    return {"name": name, "protocol": protocol, "set": sets,
            "wall_s": round(time.perf_counter() - start, 2),
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
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/benchmarks/protocols"))
    parser.add_argument("--forgets", nargs="+", default=["random:0.1", "class:3"])
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--ulira-models", type=int, default=32)
    parser.add_argument("--ulira-targets", type=int, default=None,
                        help="U-LiRA's attacked targets (default: the protocol's)")
    parser.add_argument("--parts", nargs="+", default=["quick", "cost", "challenge", "ulira"])
    parser.add_argument("--methods", nargs="+", default=None,
                        help="methods to bench (default: every registered classifier method)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the quick part")
    parser.add_argument("--cost-models", type=int, nargs="+", default=[64, 128],
                        help="N of the challenge-cost part")
    parser.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--file", default="protocols.json", help="name of the JSON written")
    parser.add_argument("--exclude", nargs="+", default=[],
                        help="registered methods to leave out, e.g. dp-original (a DP training "
                             "per run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifiers = [m for m in METHODS.names() if METHODS.get(m).works_on("classification")]
    methods = [m for m in (args.methods or classifiers) if m not in args.exclude]
    cache = args.runs / "cache"
    results: dict = {"methods": methods}
    path = args.out / args.file

    def save(part: str) -> None:
        results.setdefault("parts", {})[part] = provenance([PROTOCOL_OF[part]], BENCHMARK)
        write_results(path, results, protocols=sorted({PROTOCOL_OF[p] for p in results["parts"]}),
                      benchmark=BENCHMARK)

    if "quick" in args.parts:
        results["quick"] = [bench(f"quick-{f.replace(':', '')}", args.runs, cache, args.set,
                                  methods=methods, forget=f, seeds=args.seeds)
                            for f in args.forgets]
        save("quick")
    if "cost" in args.parts:
        results["challenge_cost"] = []
        for n in args.cost_models:
            fresh = args.runs / f"cost-cache-{n}"
            shutil.rmtree(fresh, ignore_errors=True)
            shutil.rmtree(args.runs / f"cost-{n}", ignore_errors=True)  # timed from nothing
            res = bench(f"cost-{n}", args.runs, fresh, args.set, methods=["finetune"],
                        protocol="challenge", models=n)
            results["challenge_cost"].append(
                {"models": n, **res, "training_seconds": training_seconds(fresh)})
            save("challenge_cost")
    if "challenge" in args.parts:
        results["challenge"] = {**bench("challenge", args.runs, cache, args.set, methods=methods,
                                        protocol="challenge", models=args.models),
                                "models": args.models}
        save("challenge")
    if "ulira" in args.parts:
        targets = [] if args.ulira_targets is None else [f"protocol.targets={args.ulira_targets}"]
        results["ulira"] = {**bench("ulira", args.runs, cache, [*args.set, *targets],
                                    methods=methods, protocol="ulira", models=args.ulira_models),
                            "models": args.ulira_models}
        save("ulira")


if __name__ == "__main__":
    main()
