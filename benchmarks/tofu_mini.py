"""tofu-mini leaderboard: every LM method at forget 10% beside the original and retain-only models.

Runs ``obliviate bench tofu-mini --protocol tofu`` in-process (resumable: run it again with
more methods and the finished jobs are kept), then writes the leaderboard as JSON. The
published file comes from (one thread; a long run can be split, ``-m ga`` first, then all)::

    python benchmarks/tofu_mini.py --json benchmarks/results/tofu_mini.json

``tofu_mini_initial_defaults.json`` is the same run with the first, untuned method defaults
(kept for the record; the defaults now in ``tofu-mini``'s ``method_defaults`` replaced them).
A smoke run: ``-m ga --smoke --out /tmp/tofu --json /tmp/tofu.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from obliviate.bench.config import BenchConfig
from obliviate.bench.protocols.tofu import FQ_THRESHOLD, MU_THRESHOLD
from obliviate.bench.provenance import write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress

BENCHMARK = "tofu-mini/1"
# the track's methods when the results were first published, in that order
METHODS = ["ga", "grad-diff", "kl", "npo", "npo+gd", "simnpo", "idk", "idk-dpo", "rmu"]
# the smallest tofu-mini that runs every step (its numbers mean nothing)
SMOKE = {"scenario": {"profiles": 12, "pretrain_profiles": 4, "snippets": 4, "width": 16,
                      "layers": 1, "heads": 2, "retain_eval": 4, "world": 4},
         "recipe": {"pretrain_steps": 2, "finetune_epochs": 1}}


def smoke_sets(methods: list[str]) -> list[str]:
    """``--set`` lines of :data:`SMOKE`, and one epoch of each method."""
    sets = [f"{owner}.{k}={v}" for owner, values in SMOKE.items() for k, v in values.items()]
    return sets + [f"{m}.epochs=1" for m in methods]

COLS = ["method", "status", "forget_quality", "model_utility", "mu_ratio", "forget_prob",
        "forget_rouge", "forget_truth_ratio", "retain_prob", "retain_rouge", "world_prob",
        "world_rouge", "mia_loss", "mia_zlib", "mia_mink", "mia_minkpp", "passes", "time_s",
        "time_ratio"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--method", action="append", help="methods (default: all)")
    ap.add_argument("--forget", default="authors:0.1")
    ap.add_argument("--out", type=Path, default=Path("runs/tofu-mini-bench"))
    ap.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    ap.add_argument("--cache", type=Path, default=None,
                    help="reference-model cache (default: OUT/models)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest scenario and recipe: checks that the script runs")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tofu_mini.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = args.method or list(METHODS)
    sets = [*(smoke_sets(methods) if args.smoke else []), *args.set]
    cfg = BenchConfig(scenario="tofu-mini", protocol="tofu", forget=args.forget, out=args.out,
                      set=sets, methods=methods, cache=args.cache, quiet=True)
    run = BenchRun(cfg)
    start = time.perf_counter()
    board = run.run(Progress(say=lambda msg: print(f"[{time.perf_counter() - start:7.1f}s] {msg}",
                                                   flush=True)))
    cols = [c for c in COLS if c in board]
    rows = board[cols].to_dict(orient="records")
    passing = [r["method"] for r in rows if r.get("passes") == 1.0
               and r["method"] not in ("original", "retrain (reference)")]
    doc = {"scenario": run.rb.scenario.describe(), "forget": args.forget, "set": sets,
           "tuned_defaults": run.tuned_defaults(), "threads": args.threads,
           "thresholds": {"forget_quality": FQ_THRESHOLD, "mu_ratio": MU_THRESHOLD},
           "wall_s_this_invocation": time.perf_counter() - start, "leaderboard": rows,
           "passing_methods": passing}
    write_results(args.json, json.loads(json.dumps(doc, default=float)), protocols=["tofu"],
                  benchmark=BENCHMARK)
    print(board[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("passing (fq >= 0.05 and utility >= 90% of the original's):", passing or "none")


if __name__ == "__main__":
    main()
