"""Pick tofu-mini's method settings on a tuning seed that no reported run uses.

The authors' learning rates (1e-5 for 7B models) leave the tiny GPT-2 unchanged, so each method
is run over a small grid on seed 3 (forget authors and model seeds both 3; the leaderboard
reports seeds 0-2 with the forget authors of seed 0). The pick per method: see :func:`pick`.
Rows are appended to a JSON-lines file as they finish, so a killed sweep resumes; the summary
goes to benchmarks/results/tofu_mini_tune.json.

    python benchmarks/tofu_mini_tune.py --cache runs/benchmarks/tofu-mini/models --json benchmarks/results/tofu_mini_tune.json
    python benchmarks/tofu_mini_tune.py -m altpo --grid '{"altpo": [{"lr": 1e-3}]}'

``--smoke`` runs the smallest scenario (the same as ``tofu_mini.py --smoke``; numbers mean
nothing) into ``--rows``/``--json`` of your choice.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from obliviate.bench.provenance import write_results
from obliviate.llm import LM_METHODS, evaluate_lm, load_tofu, unlearn_lm
from obliviate.llm.unlearn import NEEDS_ALTERNATES

TUNE_SEED = 3
BENCHMARK = "tofu-mini-tune/2"
SMOKE_OPTIONS = {"profiles": 12, "pretrain_profiles": 4, "snippets": 4, "width": 16, "layers": 1,
                 "heads": 2, "retain_eval": 4, "world": 4}
SMOKE_RECIPE = {"pretrain_steps": 2, "finetune_epochs": 1}


def lrs(*values: float, **extra) -> list[dict]:
    return [{"lr": v, **extra} for v in values]


GRID = {  # around the tofu-mini defaults (scenario.TOFU_MINI_DEFAULTS)
    "ga": lrs(3e-5, 5e-5, 1e-4, 2e-4),
    "grad-diff": lrs(1e-4, 1.5e-4, 2e-4, 3e-4),
    "kl": lrs(1e-4, 1.5e-4, 2e-4, 3e-4),
    "npo": lrs(5e-5, 1e-4, 2e-4),
    "npo+gd": lrs(1e-4, 3e-4, 1e-3),
    "simnpo": lrs(1e-3, 3e-3, 1e-2),
    "idk": lrs(5e-4, 1.5e-3, 3e-3),
    "idk-dpo": lrs(3e-4, 1e-3, 3e-3),
    "rmu": lrs(1e-3, 3e-3, 1e-2),
    "undial": lrs(3e-4, 1e-3, 3e-3),
    "wga": lrs(1e-4, 3e-4, 1e-3, 3e-3),
    "satimp": lrs(1e-3, 3e-3, 1e-2),
    "altpo": lrs(3e-4, 1e-3, 3e-3),
}


MARGIN = 0.92  # utility ratio a pick must keep on the tuning seed: a margin over the 0.9 bar


def pick(rows: list[dict]) -> dict:
    """The most forget quality among settings at fq >= 0.05 with utility >= MARGIN x the
    original's; else the most utility at fq >= 0.05; else the best fq x utility."""
    safe = [r for r in rows if r["forget_quality"] >= 0.05 and r["mu_ratio"] >= MARGIN]
    if safe:
        return max(safe, key=lambda r: r["forget_quality"])
    ok = [r for r in rows if r["forget_quality"] >= 0.05]
    if ok:
        return max(ok, key=lambda r: r["mu_ratio"])
    return max(rows, key=lambda r: r["forget_quality"] * r["mu_ratio"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache", default="runs/benchmarks/tofu-mini/models")
    ap.add_argument("-m", "--method", action="append", help="methods (default: the grid's)")
    ap.add_argument("--grid", help="JSON {method: [settings, ...]} replacing the built-in grid")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--smoke", action="store_true", help="the smallest scenario, one epoch")
    ap.add_argument("--rows", type=Path, default=Path("benchmarks/results/tofu_mini_tune.jsonl"))
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tofu_mini_tune.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    grid = {**GRID, **(json.loads(args.grid) if args.grid else {})}
    sc = load_tofu("authors:0.1", seed=TUNE_SEED, recipe=SMOKE_RECIPE, **SMOKE_OPTIONS) \
        if args.smoke else load_tofu("authors:0.1", seed=TUNE_SEED)
    original = sc.train_original(TUNE_SEED, cache=args.cache)
    retain = sc.train_retrained(TUNE_SEED, cache=args.cache)
    _, ref = evaluate_lm(retain, sc)
    m_orig, _ = evaluate_lm(original, sc, ref)
    done = [json.loads(line) for line in args.rows.read_text().splitlines()] \
        if args.rows.exists() else []
    seen = {json.dumps([r["method"], r["setting"]], sort_keys=True) for r in done}
    for name in args.method or list(grid):
        for over in grid[name]:
            key = json.dumps([name, over], sort_keys=True)
            if key in seen:
                continue
            params = {**sc.method_defaults.get(name, {}), **over,
                      **({"epochs": 1} if args.smoke else {})}
            lora = int(params.pop("lora_rank", 0))  # a scenario option, swept like a setting
            start = time.perf_counter()
            model = unlearn_lm(original, sc.forget_set(), sc.retain_set(),
                               forget_idk=sc.forget_idk_set(),
                               forget_alt=sc.forget_alt_set() if name in NEEDS_ALTERNATES
                               else None, method=name, seed=TUNE_SEED, lora_rank=lora,
                               **params)
            wall = time.perf_counter() - start
            m, _ = evaluate_lm(model, sc, ref)
            row = {"method": name, "setting": over, "time_s": wall,
                   "mu_ratio": m["model_utility"] / m_orig["model_utility"], **m}
            with args.rows.open("a") as fh:
                fh.write(json.dumps(row, default=float) + "\n")
            done.append(row)
            print(json.dumps({k: row[k] for k in ("method", "setting", "forget_quality",
                                                  "mu_ratio", "forget_prob")}), flush=True)
    by_method: dict[str, list[dict]] = {}
    for r in done:
        by_method.setdefault(r["method"], []).append(r)
    doc = {"tune_seed": TUNE_SEED, "scenario": sc.describe(), "original": m_orig,
           "methods": sorted(LM_METHODS.names()),
           "picks": {n: pick(rs) for n, rs in sorted(by_method.items())}, "rows": done}
    write_results(args.json, json.loads(json.dumps(doc, default=float)), protocols=["tofu"],
                  benchmark=BENCHMARK)


if __name__ == "__main__":
    main()
