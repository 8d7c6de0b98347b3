"""Robustness of forgetting: relearning, quantization and (LM) paraphrase attacks, each beside
the retrained model under the same attack.

Two tracks, each resumable (one JSON line per finished model in ``--rows``):

- ``lm``: tofu-mini at forget 10%, every LM method at the tofu-mini defaults, seeds 0-2 (the
  original and retain-only models come from the bench cache, ``--cache``; each method is run
  again, deterministically, as the bench runs it).
- ``digits``: the digits scenario at ``class:3`` (the retrained model has never seen the
  class, so recovery is visible) with a few classifier methods.

    python benchmarks/robustness.py --track lm --cache runs/benchmarks/tofu-mini/models
    python benchmarks/robustness.py --track digits

Writes ``benchmarks/results/robustness_<track>.json`` (summary rows per method and seed, and
the curves) with the package version, git commit, protocol and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from obliviate import __version__

PROTOCOL = "robustness-v1"
LM_METHODS_DEFAULT = ("ga", "grad-diff", "kl", "npo", "npo+gd", "simnpo", "idk", "idk-dpo",
                      "rmu", "undial", "wga", "satimp", "altpo")
DIGITS_METHODS = ("finetune", "neggrad+", "scrub", "salun", "random-label")


def _header(track: str, args: argparse.Namespace) -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"track": track, "version": __version__, "commit": commit.stdout.strip(),
            "protocol": PROTOCOL, "machine": {"platform": platform.platform(),
                                              "cpus": os.cpu_count(),
                                              "torch_threads": torch.get_num_threads()},
            "settings": {k: v for k, v in vars(args).items() if k not in ("rows", "json")}}


def _rows(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["key"]: r for r in rows}


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(row, default=float) + "\n")


def lm_track(args: argparse.Namespace) -> list[dict]:
    from obliviate.llm import load_tofu, unlearn_lm
    from obliviate.llm.unlearn import LM_METHODS, NEEDS_ALTERNATES
    from obliviate.robustness import paraphrase_probe, quantize_lm, relearn_lm

    done = _rows(args.rows)
    sc = load_tofu(args.forget, seed=0, **({"size": args.size} if args.size else {}))
    out = []
    for seed in range(args.seeds):
        original = sc.train_original(seed, cache=args.cache)
        retain = sc.train_retrained(seed, cache=args.cache)
        memo: dict = {}  # the retain-only model is attacked once per seed
        for name in ["original", *args.method]:
            key = f"lm/{name}/{seed}"
            if key in done:
                out.append(done[key])
                continue
            start = time.perf_counter()
            if name == "original":
                model = original
            else:
                model = unlearn_lm(
                    original, sc.forget_set(), sc.retain_set(),
                    forget_idk=sc.forget_idk_set() if LM_METHODS.get(name).needs_refusals
                    else None,
                    forget_alt=sc.forget_alt_set(original) if name in NEEDS_ALTERNATES else None,
                    method=name, seed=seed, **sc.method_defaults.get(name, {}))
            relearn = relearn_lm(model, sc, retrained=retain, steps=args.steps, lr=args.lr,
                                 share=args.share, seed=seed, cache=memo)
            quant = quantize_lm(model, sc, retrained=retain, cache=memo)
            probe = paraphrase_probe(model, sc, retrained=retain, cache=memo)
            row = {"key": key, "method": name, "seed": seed, "relearn": relearn,
                   "quantize": quant, "paraphrase": probe,
                   "wall_s": time.perf_counter() - start}
            _append(args.rows, row)
            out.append(row)
            print(key, f"{row['wall_s']:.0f}s", flush=True)
    return out


def digits_track(args: argparse.Namespace) -> list[dict]:
    import obliviate as ob
    from obliviate.robustness import quantize_classifier, relearn_classifier

    done = _rows(args.rows)
    sc = ob.load_scenario("digits", forget=args.digits_forget, seed=0)
    out = []
    for seed in range(args.seeds):
        original = sc.train_original(seed=seed)
        retrained = sc.train_retrained(seed=seed)
        for name in ["original", *DIGITS_METHODS]:
            key = f"digits/{name}/{seed}"
            if key in done:
                out.append(done[key])
                continue
            start = time.perf_counter()
            try:
                model = original if name == "original" else ob.unlearn(
                    original, forget=sc.forget_loader(), retain=sc.retain_loader(),
                    method=name, seed=seed, **sc.method_defaults.get(name, {}))
            except ob.TrainingDivergedError as exc:  # recorded, as the bench records it
                row = {"key": key, "method": name, "seed": seed, "status": "failed",
                       "error": str(exc)}
                _append(args.rows, row)
                out.append(row)
                continue
            relearn = relearn_classifier(model, sc.forget_loader(), retrained=retrained,
                                         retain=sc.retain_loader(), share=0.1,
                                         steps=(0, 1, 2, 4, 8, 16, 32), lr=1e-3, seed=seed)
            quant = quantize_classifier(model, sc.forget_loader(), retain=sc.retain_loader(),
                                        test=sc.test_loader(), retrained=retrained)
            row = {"key": key, "method": name, "seed": seed, "relearn": relearn,
                   "quantize": quant, "wall_s": time.perf_counter() - start}
            _append(args.rows, row)
            out.append(row)
            print(key, f"{row['wall_s']:.1f}s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--track", choices=("lm", "digits"), default="lm")
    ap.add_argument("-m", "--method", action="append", help="LM methods (default: all)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--forget", default="authors:0.1")
    ap.add_argument("--size", default="", help="tofu-mini size preset (default: mini)")
    ap.add_argument("--digits-forget", default="class:3")
    ap.add_argument("--cache", type=Path, default=Path("runs/benchmarks/tofu-mini/models"))
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 5, 10, 20])
    ap.add_argument("--lr", type=float, default=3e-4, help="LM relearning learning rate")
    ap.add_argument("--share", type=float, default=0.3, help="share of forget questions relearned")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.method = args.method or list(LM_METHODS_DEFAULT)
    args.rows = args.rows or Path(f"benchmarks/results/robustness_{args.track}.jsonl")
    args.json = args.json or Path(f"benchmarks/results/robustness_{args.track}.json")
    rows = lm_track(args) if args.track == "lm" else digits_track(args)
    doc = {**_header(args.track, args), "rows": rows}
    args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
