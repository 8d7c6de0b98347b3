"""tofu-mini leaderboard: every LM method at forget 10% beside the original and retain-only
models, over seeds 0-2 (the learning rates were chosen on seed 3: tofu_mini_tune.py).

Runs ``obliviate bench tofu-mini`` in-process (resumable: run it again and the finished jobs
are kept), then writes the per-seed leaderboard, the mean and spread of every metric per
method, and whether each method passes the bar (forget quality >= 0.05 with model utility
>= 90% of the original's) on every seed, as JSON. The published file; a long run can be split
into several commands (``-m npo+gd`` first, then every method)::

    python benchmarks/tofu_mini.py --cache runs/benchmarks/tofu-mini/models --json benchmarks/results/tofu_mini.json

A smoke run (the smallest scenario; numbers mean nothing):
``-m ga --smoke --out /tmp/tofu --json /tmp/tofu.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from obliviate.bench.config import BenchConfig
from obliviate.bench.protocols.tofu import FQ_THRESHOLD, MU_THRESHOLD
from obliviate.bench.provenance import write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress
from obliviate.bench.store import ResultStore
from obliviate.unlearning import default_methods

BENCHMARK = "tofu-mini/3"  # 3: metrics as OpenUnlearning computes them
# the smallest tofu-mini that runs every step (its numbers mean nothing)
SMOKE = {"scenario": {"profiles": 12, "pretrain_profiles": 4, "snippets": 4, "width": 16,
                      "layers": 1, "heads": 2, "retain_eval": 4, "world": 4},
         "recipe": {"pretrain_steps": 2, "finetune_epochs": 1}}


def smoke_sets(methods: list[str]) -> list[str]:
    """``--set`` lines of :data:`SMOKE`, and one epoch of each method."""
    sets = [f"{owner}.{k}={v}" for owner, values in SMOKE.items() for k, v in values.items()]
    return sets + [f"{m}.epochs=1" for m in methods]


METRICS = ["forget_quality", "model_utility", "mu_ratio", "forget_prob", "forget_rouge",
           "forget_truth_ratio", "forget_es", "forget_em", "retain_prob", "retain_rouge",
           "retain_truth_ratio", "world_prob", "world_rouge", "world_truth_ratio", "mia_loss",
           "mia_zlib", "mia_mink", "mia_minkpp", "mia_reference", "privleak", "passes",
           "time_s", "time_ratio"]


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of each metric per method over seeds, and the bar."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and r.get("status", "ok") == "ok"]
        entry: dict = {"method": method, "seeds": len(mine)}
        for key in METRICS:
            vals = [r[key] for r in mine if r.get(key) is not None and np.isfinite(r[key])]
            if vals:
                entry[key] = float(np.mean(vals))
                entry[f"{key}_sd"] = float(np.std(vals))
        entry["passes_every_seed"] = bool(mine) and all(r.get("passes") == 1.0 for r in mine)
        out.append(entry)
    return out


TABLE = [("forget_quality", "fq", 3), ("model_utility", "MU", 3), ("mu_ratio", "MU/orig", 3),
         ("forget_prob", "f.prob", 3), ("forget_rouge", "f.rouge", 3),
         ("forget_truth_ratio", "f.TR", 3), ("forget_es", "f.ES", 3), ("forget_em", "f.EM", 3),
         ("mia_loss", "MIA loss", 3), ("mia_zlib", "zlib", 3), ("mia_mink", "min-k", 3),
         ("mia_minkpp", "min-k++", 3), ("mia_reference", "ref. MIA", 3),
         ("privleak", "PrivLeak %", 1), ("time_s", "s", 1)]


def markdown(summary: list[dict]) -> str:
    """The summary as a markdown table: mean (and spread over seeds) of each metric."""
    head = "| method | " + " | ".join(t for _, t, _ in TABLE) + " | passes (seeds) |"
    lines = [head, "|" + "---|" * (len(TABLE) + 2)]
    for s in summary:
        cells = []
        for key, _, digits in TABLE:
            if key not in s:
                cells.append("")
                continue
            sd = s.get(f"{key}_sd", 0.0)
            cells.append(f"{s[key]:.{digits}f}" + (f" ±{sd:.{digits}f}" if sd else ""))
        passes = round(s.get("passes", 0.0) * s["seeds"])
        lines.append(f"| {s['method']} | " + " | ".join(cells) + f" | {passes}/{s['seeds']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-m", "--method", action="append", help="methods (default: all)")
    ap.add_argument("--forget", default="authors:0.1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/tofu-mini-bench"))
    ap.add_argument("--cache", type=Path, default=None, help="reference-model cache")
    ap.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest scenario and recipe: checks that the script runs")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tofu_mini.json"))
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = args.method or default_methods("lm")
    cfg = BenchConfig.from_mapping({"scenario": "tofu-mini", "forget": args.forget,
                                    "out": args.out, "cache": args.cache, "seeds": args.seeds,
                                    "set": [*(smoke_sets(methods) if args.smoke else []),
                                            *args.set],
                                    "methods": methods})
    run = BenchRun(cfg)
    start = time.perf_counter()
    run.run(Progress(say=lambda msg: print(f"[{time.perf_counter() - start:7.1f}s] {msg}",
                                           flush=True)))
    with ResultStore(args.out / "results.sqlite") as store:
        rows = []
        for job in run.jobs:
            record = store.run(job.key)
            if record is None:
                continue
            status = "ok" if record["status"] == "done" else record["status"]
            rows.append({"method": job.method, "seed": job.seed, "status": status,
                         **store.metrics(job.key)})
    summary = summarise(rows)
    passing = [s["method"] for s in summary if s["passes_every_seed"]
               and s["method"] not in ("original", "retrain (reference)")]
    doc = {"scenario": run.rb.scenario.describe(), "forget": args.forget, "seeds": args.seeds,
           "tuned_defaults": run.tuned_defaults(),
           "thresholds": {"forget_quality": FQ_THRESHOLD, "mu_ratio": MU_THRESHOLD},
           "wall_s_this_invocation": time.perf_counter() - start, "summary": summary,
           "per_seed": rows, "passing_every_seed": passing}
    write_results(args.json, doc, protocols=["tofu"], benchmark=BENCHMARK)
    print(markdown(summary) if args.markdown else json.dumps(summary, indent=1))
    print("passing on every seed (fq >= 0.05 and utility >= 90% of the original's):",
          passing or "none")


if __name__ == "__main__":
    main()
