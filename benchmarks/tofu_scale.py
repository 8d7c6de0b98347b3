"""tofu-mini at scale: a larger GPT-2 trained here and more authors, for a GPU.

``--size large`` is 200 authors (TOFU's count) and a 25.5M-parameter GPT-2 (width 512, 8 blocks,
``scenario.SIZES``). The script runs the same bench as ``obliviate bench tofu-mini`` (resumable
store under ``--out``, models cached under ``--cache``) and writes the leaderboard, the wall
time of every stage and the device to JSON. Nothing in it needs a GPU: ``--device cpu --size
toy`` runs the same code in a minute (tests/test_llm_track.py does).

    python benchmarks/tofu_scale.py --device cuda            # the GPU run
    python benchmarks/tofu_scale.py --device cpu --size toy -m grad-diff
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from obliviate import __version__
from obliviate.bench.config import BenchConfig
from obliviate.bench.protocols.tofu import VERSION
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress
from obliviate.bench.store import ResultStore
from obliviate.unlearning import default_methods


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="large", choices=("toy", "mini", "large"))
    ap.add_argument("-m", "--method", action="append", help="methods (default: all)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--forget", default="authors:0.1")
    ap.add_argument("--set", action="append", default=[], help="OWNER.PARAM=VALUE")
    ap.add_argument("--out", type=Path, default=Path("runs/tofu-scale"))
    ap.add_argument("--cache", type=Path, default=None, help="default: OUT/models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tofu_scale.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = [f"scenario.size={args.size}", f"scenario.device={args.device}", *args.set]
    cfg = BenchConfig.from_mapping({"scenario": "tofu-mini", "forget": args.forget,
                                    "out": args.out, "cache": args.cache or args.out / "models",
                                    "seeds": args.seeds, "set": sets,
                                    "methods": args.method or default_methods("lm")})
    run = BenchRun(cfg)
    sc = run.rb.scenario
    n_params = sum(p.numel() for p in sc.new_model(0).parameters())
    start = time.perf_counter()
    board = run.run(Progress(say=lambda msg: print(f"[{time.perf_counter() - start:8.1f}s] "
                                                   f"{msg}", flush=True)))
    wall = time.perf_counter() - start
    with ResultStore(args.out / "results.sqlite") as store:
        jobs = [{"method": j.method, "seed": j.seed, "wall_s": store.run(j.key)["wall_s"],
                 "status": store.run(j.key)["status"]} for j in run.jobs]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    doc = {"version": __version__, "commit": commit.stdout.strip(), "protocol": VERSION,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "torch_threads": torch.get_num_threads(), "device": args.device,
                       "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                       else None},
           "scenario": sc.describe(), "parameters": n_params, "seeds": args.seeds,
           "tuned_defaults": run.tuned_defaults(), "wall_s_this_invocation": wall,
           "job_wall_s": jobs,
           "leaderboard": json.loads(board.replace({np.nan: None}).to_json(orient="records"))}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(board.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return doc


if __name__ == "__main__":
    main()
