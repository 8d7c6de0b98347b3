"""tofu-mini leaderboard: every LM method at forget 10% beside the original and retain-only models.

Runs ``obliviate bench tofu-mini`` in-process (resumable: run it again with more methods and the
finished jobs are kept), then writes the leaderboard as JSON. Split a long run into several
locked commands, e.g.::

    cpu timeout 900 env PYTHONPATH=src python benchmarks/tofu_mini.py -m ga
    cpu timeout 900 env PYTHONPATH=src python benchmarks/tofu_mini.py   # every method
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from obliviate.llm.bench import (
    DEFAULT_METHODS,
    FQ_THRESHOLD,
    MU_THRESHOLD,
    LMBenchRun,
    lm_bench_config,
)

COLS = ["method", "status", "forget_quality", "model_utility", "mu_ratio", "forget_prob",
        "forget_rouge", "forget_truth_ratio", "retain_prob", "retain_rouge", "world_prob",
        "world_rouge", "mia_loss", "mia_zlib", "mia_mink", "mia_minkpp", "passes", "time_s",
        "time_ratio"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-m", "--method", action="append", help="methods (default: all)")
    ap.add_argument("--forget", default="authors:0.1")
    ap.add_argument("--out", type=Path, default=Path("runs/tofu-mini-bench"))
    ap.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tofu_mini.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = lm_bench_config({"scenario": "tofu-mini", "forget": args.forget, "out": args.out,
                           "set": args.set,
                           "methods": args.method or list(DEFAULT_METHODS)})
    run = LMBenchRun(cfg)
    start = time.perf_counter()
    board = run.run(progress=lambda msg: print(f"[{time.perf_counter() - start:7.1f}s] {msg}",
                                               flush=True))
    cols = [c for c in COLS if c in board]
    rows = board[cols].to_dict(orient="records")
    passing = [r["method"] for r in rows if r.get("passes") == 1.0
               and r["method"] not in ("original", "retrain (reference)")]
    doc = {"scenario": run.rb.scenario.describe(), "forget": args.forget,
           "tuned_defaults": run.tuned_defaults(), "threads": args.threads,
           "thresholds": {"forget_quality": FQ_THRESHOLD, "mu_ratio": MU_THRESHOLD},
           "wall_s_this_invocation": time.perf_counter() - start, "leaderboard": rows,
           "passing_methods": passing}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(board[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("passing (fq >= 0.05 and utility >= 90% of the original's):", passing or "none")


if __name__ == "__main__":
    main()
