"""Pick tofu-mini's learning rates: each LM method at a few learning rates on seed 0.

The authors' learning rates (1e-5 for 7B models) leave the tiny GPT-2 unchanged; this sweep
picks, per method, the setting that reaches forget quality >= 0.05 with the most model utility
(or, when none does, the highest forget quality). The original and retain-only models come from
--cache (benchmarks/tofu_mini.py's, trained there if missing). The published files come from:

    python benchmarks/tofu_mini_tune.py --json benchmarks/results/tofu_mini_tune.json
    python benchmarks/tofu_mini_tune.py -m kl -m grad-diff -m npo+gd --lrs 1e-4,5e-5 \
        --json benchmarks/results/tofu_mini_tune_low.json

(``tofu_mini_tune_rmu.jsonl``, a hand sweep of RMU's alpha and lr, has no script.) A smoke run:
``-m ga --lrs 1e-3 --smoke --cache /tmp/tofu-tune --json /tmp/tofu_tune.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from obliviate.bench.protocols.tofu import verdict
from obliviate.bench.provenance import write_results
from obliviate.llm import LM_METHODS, evaluate_lm, load_tofu, unlearn_lm

BENCHMARK = "tofu-mini-tune/1"
# the smallest tofu-mini that runs every step (as benchmarks/tofu_mini.py --smoke)
SMOKE_SCENARIO = {"profiles": 12, "pretrain_profiles": 4, "snippets": 4, "width": 16,
                  "layers": 1, "heads": 2, "retain_eval": 4, "world": 4}
SMOKE_RECIPE = {"pretrain_steps": 2, "finetune_epochs": 1}

GRID = {  # neighbours of the tofu-mini defaults (scenario.TOFU_MINI_DEFAULTS)
    "ga": [{"lr": lr} for lr in (5e-5, 5e-4)],
    "grad-diff": [{"lr": lr} for lr in (2e-4, 1.5e-3)],
    "kl": [{"lr": lr} for lr in (2e-4, 1.5e-3)],
    "npo": [{"lr": lr} for lr in (3e-5, 3e-4)],
    "npo+gd": [{"lr": lr} for lr in (1e-4, 1e-3)],
    "simnpo": [{"lr": lr} for lr in (3e-4, 3e-3)],
    "idk": [{"lr": lr} for lr in (2e-4, 1.5e-3)],
    "idk-dpo": [{"lr": lr} for lr in (1e-4, 1e-3)],
    "rmu": [{"lr": lr} for lr in (3e-4, 3e-3)],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="runs/tofu-mini-bench/models")
    ap.add_argument("-m", "--method", action="append")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest scenario, recipe and one epoch: checks that it runs")
    ap.add_argument("--lrs", help="comma-separated learning rates instead of the grid's")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tofu_mini_tune.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sc = load_tofu("authors:0.1", recipe=SMOKE_RECIPE, **SMOKE_SCENARIO) if args.smoke \
        else load_tofu("authors:0.1")
    original = sc.train_original(0, cache=args.cache)
    retain = sc.train_retrained(0, cache=args.cache)
    _, ref = evaluate_lm(retain, sc)
    m_orig, _ = evaluate_lm(original, sc, ref["forget_truth_ratio"])
    rows = []
    for name in args.method or list(GRID):
        grid = GRID[name] if not args.lrs else [{"lr": float(v)} for v in args.lrs.split(",")]
        for over in grid:
            start = time.perf_counter()
            params = {**sc.method_defaults.get(name, {}), **over,
                      **({"epochs": 1} if args.smoke else {})}
            model = unlearn_lm(original, sc.forget_set(), sc.retain_set(),
                               forget_idk=sc.forget_idk_set(), method=name, seed=0, **params)
            wall = time.perf_counter() - start
            m, _ = evaluate_lm(model, sc, ref["forget_truth_ratio"])
            row = {"method": name, **{k: list(v) if isinstance(v, tuple) else v
                                       for k, v in over.items()},
                   "forget_quality": m["forget_quality"],
                   "mu_ratio": verdict(m, m_orig["model_utility"])["mu_ratio"],
                   "forget_prob": m["forget_prob"], "mia_loss": m["mia_loss"], "time_s": wall}
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_results(args.json, {"original": m_orig, "methods": sorted(LM_METHODS.names()),
                              "rows": rows}, benchmark=BENCHMARK)


if __name__ == "__main__":
    main()
