"""How the tuner's cut-off reads the time of a retraining, before and after challenge/5's timing.

:func:`obliviate.tune.tune` scores a setting 0 when its runs take over ``cutoff`` x one
retraining, in CPU seconds of its own process. Until December 2026 the reference was one
retraining by the training loop, once per seed, cold whenever it was the process's first
training (the original found in the cache); the runs' mean included each setting's first run.
The challenge protocol had already moved to timing both warm (challenge/5: retrain-as-a-method
reads 1.0). This measures, per scenario in one process on one thread, in CPU seconds:

* ``cold_reference_s``: the old reference (``train_retrained_timed`` once, the first training of
  a fresh process, as it was whenever the cache held the original: each scenario and seed runs
  in a process of its own);
* ``warm_reference_s``: the new one (the ``retrain`` method through the runs' call, one warm-up,
  then the mean of 3: :func:`obliviate.timer.timed_mean`);
* for ``retrain`` (the recipe's own epochs) and ``redraw`` (the scenario's tuned defaults),
  ``--runs`` runs through the runs' call: their mean after the first, as the tuner now reads a
  setting, against each reference.

Retrain-as-a-method should read 1.0 against a fair reference. Run it on an idle machine:

    python benchmarks/tune_timing.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from obliviate.bench.provenance import write_results
from obliviate.data import load_scenario
from obliviate.timer import timed_mean
from obliviate.train import tensor_loader
from obliviate.tune import REFERENCE_SEED, _run
from obliviate.unlearning import resolve_method

BENCHMARK = "tune_timing/1"


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def measure(scenario: str, seed: int, runs: int) -> dict:
    sc = load_scenario(scenario, seed=seed)
    cold = cpu_seconds(lambda: sc.train_retrained_timed(seed))  # the tuner's old reference
    original, _ = sc.train_original_timed(seed)  # (the tuner loaded it from its cache)
    s = sc.splits
    val = tensor_loader(s.x_val[: len(s.y_val) // 2], s.y_val[: len(s.y_val) // 2], 512)

    def run(method: str, run_seed: int):  # the tuner's own call, for the runs and the reference
        info = resolve_method(method)
        cfg = info.build_config(sc.method_defaults.get(method, {}))
        return lambda: _run(sc, original, val, info, cfg, run_seed)

    _, warm = timed_mean(run("retrain", REFERENCE_SEED), clock=time.process_time)
    row = {"scenario": scenario, "seed": seed, "cold_reference_s": round(cold, 4),
           "warm_reference_s": round(warm, 4), "cold_over_warm": round(cold / warm, 3)}
    for method in ("retrain", "redraw"):
        times = [cpu_seconds(run(method, 500_000 + i)) for i in range(runs)]
        mean_warm_runs, mean_all = statistics.fmean(times[1:]), statistics.fmean(times)
        row[method] = {"run_s": [round(t, 4) for t in times],
                       "old_ratio": round(mean_all / cold, 3),  # all runs / cold reference
                       "new_ratio": round(mean_warm_runs / warm, 3)}
        print(scenario, method, row[method], flush=True)
    print(scenario, {k: v for k, v in row.items() if not isinstance(v, dict)}, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenarios", nargs="+", default=["digits", "fashion-mem"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # scenario:seed, in this process
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.one:
        name, seed = args.one.split(":")
        print("ROW " + json.dumps(measure(name, int(seed), args.runs)), flush=True)
        return
    rows = []
    for name in args.scenarios:
        for seed in args.seeds:
            proc = subprocess.run([sys.executable, __file__, "--one", f"{name}:{seed}",
                                   "--runs", str(args.runs)], capture_output=True, text=True,
                                  check=True)
            print(proc.stdout, end="", flush=True)
            rows.append(json.loads(proc.stdout.split("ROW ", 1)[1]))
    path = write_results(args.out / "tune_timing.json", {"rows": rows, "threads": 1},
                         benchmark=BENCHMARK)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
