"""The same bench with the local and the Ray executor: wall time, peak memory, equal tables.

Each case runs ``obliviate bench`` in a subprocess from an empty model cache, once per
executor, and samples the resident memory of the whole process tree (the driver plus, for Ray,
the raylet, GCS, object store and workers) every 0.2 s. The local executor runs in one process
with one torch thread (``local-1t``, the numbers Ray must reproduce) and with two
(``local-2t``, the default on a 2-core machine); Ray runs one task per core with one thread
each. Results are merged into ``executors.json`` in --out (each case with its own provenance).
This process only starts and watches the benches, so it has no ``--threads``: the thread count
of each bench is what a run measures. The published file comes from:

    python benchmarks/executors.py --case quick --case challenge --out benchmarks/results

A smoke run: ``--case quick --runs local-1t --out /tmp/executors`` (recipe.epochs=1 makes
neggrad diverge, which fails the bench).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

from obliviate.bench.provenance import provenance, write_results

BENCHMARK = "executors/1"

CASES = {
    # 2 reference models, then 5 independent unlearning runs (one per method)
    "quick": ["digits", "--seeds", "1"],
    # 3 seeds: 6 reference models in parallel, then 15 unlearning runs
    "quick-3seeds": ["digits", "--seeds", "3"],
    # 2 x 32 retrained models (vmap, in the driver) then 2 methods x 32 unlearning runs
    "challenge": ["digits", "--protocol", "challenge", "--models", "32", "-m", "finetune", "-m",
                  "random-label"],
}
RUNS = {"local-1t": ("local", "1"), "local-2t": ("local", "2"), "ray": ("ray", "1")}


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_once(args: list[str], executor: str, threads: str, out: Path) -> dict:
    """Wall time and peak resident memory of one ``obliviate bench`` process tree."""
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "obliviate", "bench", *args, "--executor", executor,
           "--out", str(out), "--quiet", "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{executor} failed: {stderr.decode()[-2000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(peak / 2**20, 1)}


def protocols_of(args: list[str]) -> list[str]:
    return [args[args.index("--protocol") + 1] if "--protocol" in args else "quick"]


def board(out: Path) -> pd.DataFrame:
    b = pd.read_csv(out / "leaderboard.csv")
    timing = ("time_s", "time_ratio", "time_retrain_s")  # wall times: the machine's load
    return b.drop(columns=[c for c in b if c.startswith(timing)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=list(CASES), action="append", required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS),
                    help="which executors to measure (others keep their stored numbers)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="interleaved repeats; the fastest wall time is kept (others' load)")
    ap.add_argument("--set", action="append", default=[],
                    help="OWNER.PARAM=VALUE passed to every bench (e.g. for a smoke run)")
    opts = ap.parse_args()
    path = opts.out / "executors.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("provenance", None)
    results["machine"] = {"cpus": os.cpu_count(),
                          "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)}
    for case in opts.case:
        tmp = Path(tempfile.mkdtemp(prefix=f"exec-{case}-"))
        args = [*CASES[case], *(a for s in opts.set for a in ("--set", s))]
        row: dict = {**results.get(case, {}), "args": args}
        for rep in range(opts.repeats):
            for name in opts.runs:
                executor, threads = RUNS[name]
                print(f"{case}: {name} ({rep + 1}/{opts.repeats})", flush=True)
                shutil.rmtree(tmp / name, ignore_errors=True)
                got = run_once(args, executor, threads, tmp / name)
                walls = [*(row[name].get("walls_s", []) if rep else []), got["wall_s"]]
                row[name] = {"wall_s": min(walls), "walls_s": walls,
                             "peak_rss_mib": max(got["peak_rss_mib"],
                                                 row[name]["peak_rss_mib"] if rep else 0)}
        for base in ("local-1t", "local-2t"):
            if "ray" in row and base in row:
                key = base.replace("-", "_")
                row[f"ray_vs_{key}_wall_ratio"] = round(row["ray"]["wall_s"]
                                                        / row[base]["wall_s"], 3)
                row[f"ray_vs_{key}_memory_ratio"] = round(row["ray"]["peak_rss_mib"]
                                                          / row[base]["peak_rss_mib"], 3)
        if {"ray", "local-1t"} <= set(opts.runs):
            row["ray_table_equals_local_1t"] = board(tmp / "ray").equals(board(tmp / "local-1t"))
        if {"local-2t", "local-1t"} <= set(opts.runs):
            row["local_2t_table_equals_local_1t"] = board(tmp / "local-2t").equals(
                board(tmp / "local-1t"))
        row["load_average_after"] = os.getloadavg()[0]
        row["provenance"] = provenance(protocols_of(args), BENCHMARK)
        results[case] = row
        print(json.dumps(row, indent=2), flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
        write_results(path, dict(sorted(results.items())), protocols=sorted(
            {p for c in CASES if c in results for p in protocols_of(results[c]["args"])}),
            benchmark=BENCHMARK)


if __name__ == "__main__":
    main()
