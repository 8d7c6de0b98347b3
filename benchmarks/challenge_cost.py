"""What the challenge protocol costs on digits, split by phase, against the number of models N.

For each N in ``--models``, the whole protocol for one method (``--method``, default finetune)
runs twice in one process: from an empty reference cache, then from the cache the first run
filled (a new run directory, so the N unlearning runs are redone). Each run's wall time is split
into its phases by timing the functions the challenge driver calls:

* ``references_s``: the original (``Kit.reference``; trained by the reference loop, or loaded);
* ``cutoff_reference_s``: the retrain times the cut-off reads (``time_retrain``: the retrain
  method through the runs' call, one warm-up and 3 timed calls): the seed's (``cutoff_seconds``,
  read from the cache when warm) and, since challenge/5, the method's own, timed before and
  after its runs (never cached, so a warm bench pays it too);
* ``population_train_s`` / ``population_load_s``: populations A and B of N retrained models each,
  trained at once (``train_population``) or read from the cache (not read at all when their
  outputs are cached);
* ``population_predict_s``: their outputs on forget, retain and test, predicted in one pass per
  population, or read from the cache (``population_outputs``, less the two phases above);
* ``unlearning_runs_s``: the N unlearning runs one by one with their evaluation
  (``repeated_runs``; ``protocol.population_runs=false``, or a method without the population
  capability); under challenge/4 a method that has it (finetune) instead spends
  ``unlearning_population_s``, the N runs trained as populations of ``protocol.chunk_size``
  with their evaluation (``population_runs``), and ``unlearning_timing_s``, the one single run
  timed for the cut-off (``single_run_seconds``: a warm-up and 3 timed calls).
  ``unlearning_only_s`` is the runs' own unlearning: the sum of their timed calls one by one, or
  the populations' training seconds (inside ``unlearning_runs`` / ``unlearning_population``);
* ``metric_s``: F, the ceiling and the score (per-example epsilons); ``bootstrap_s``: the
  intervals' replicates (``protocol.n_boot``); ``other_s``: the rest (store, leaderboard,
  and with ``--executor ray`` starting Ray: about 17 s on a loaded 2-core machine);
* ``share``: each phase's fraction of ``total_s`` (``unlearning_only`` is inside the runs'
  phases); ``grouped``: the same in five groups, train populations (with the
  references and the cut-off's retraining), predict (and load), bootstrap, runs, other (the
  metric included).

Progress goes to stderr as it happens (the bench's own messages, every 10th run), one JSON line
per finished bench to stdout.

Then the population speed-up: N retrained models trained one by one with the reference loop
(``train_model``, timed on ``--loop-models`` of them and scaled to N when fewer; the JSON says
which) against population A's training time in the empty-cache run, same recipe, masks and seeds.
Wall and CPU seconds are both recorded: on a machine shared with other work the CPU seconds
(this process's own) move less with the load than the wall time.

    python benchmarks/challenge_cost.py --models 16 32 64 128 512 --threads 2 \
        --out benchmarks/results

Writes ``challenge_cost.json`` to ``--out``. The targets (issue 23, 2 idle cores): N=128 warm
in at most 30 s; N=512 warm in at most 90 s and from an empty cache in at most 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

import obliviate.bench.populations as populations
import obliviate.bench.protocols.challenge as challenge_run
from obliviate.bench.config import BenchConfig, resolve
from obliviate.bench.kit import Kit
from obliviate.bench.provenance import write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.spec import Progress
from obliviate.bench.store import ResultStore
from obliviate.evaluate.challenge import PROTOCOL
from obliviate.train import train_model

# 2: population outputs cached, so a warm run predicts nothing; 3: the cut-off's retraining
# timed as its own phase, the five-group shares, the torch threads recorded; 4: challenge/4's
# runs as populations (unlearning_population_s) and their single timed run (unlearning_timing_s)
# 5: challenge/5's retrain timed before and after each method's runs, in cutoff_reference_s
BENCHMARK = "challenge_cost/5"

TIMED = {  # phase -> (module, function name) whose calls are timed
    "references_s": (Kit, "reference"),
    "population_outputs_s": (challenge_run, "population_outputs"),
    "population_total_s": (populations, "cached_population"),
    "population_train_s": (populations, "train_population"),
    "cutoff_reference_s": (challenge_run, "time_retrain"),  # the seed's and each method's
    "unlearning_runs_s": (challenge_run, "repeated_runs"),
    "unlearning_population_s": (challenge_run, "population_runs"),
    "unlearning_timing_s": (challenge_run.ChallengeDriver, "single_run_seconds"),
    "metric_s": (challenge_run, "scores"),
    "bootstrap_s": (challenge_run, "bootstrap_arrays"),
}


class PhaseTimer:
    """Wraps the functions of TIMED so that each call adds its wall time to its phase."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.saved = []

    def __enter__(self):
        for phase, (owner, name) in TIMED.items():
            fn = getattr(owner, name)
            self.saved.append((owner, name, fn))
            setattr(owner, name, self._timed(phase, fn))
        return self

    def _timed(self, phase, fn):
        def wrapper(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start
                self.cpu[phase] += time.process_time() - cpu
        return wrapper

    def __exit__(self, *exc):
        for owner, name, fn in reversed(self.saved):
            setattr(owner, name, fn)


GROUPS = {  # the five groups of the table -> the phases in each
    "train_populations": ("references_s", "cutoff_reference_s", "population_train_s"),
    "predict": ("population_predict_s", "population_load_s"),
    "bootstrap": ("bootstrap_s",),
    "runs": ("unlearning_runs_s", "unlearning_population_s", "unlearning_timing_s"),
    "other": ("metric_s", "other_s"),
}


def progress_printer(label: str, start: float) -> Progress:
    """Prints the bench's messages to stderr with the seconds since ``start`` (runs: every 10th)."""
    def say(message: str) -> None:
        if " run " in message:  # "running ... run i/N" and "... run i/N done"
            done = message.rsplit(" run ", 1)[1].split("/")[0]
            if not message.endswith("done") or not done.isdigit() or int(done) % 10:
                return
        print(f"[{label} {time.perf_counter() - start:7.1f}s] {message}", file=sys.stderr,
              flush=True)
    return Progress(say=say)


def protocol_run(n: int, method: str, out: Path, cache: Path, sets: list[str],
                 label: str = "", executor: str = "local") -> dict:
    """One challenge bench; its wall time by phase."""
    run = BenchRun(BenchConfig("digits", methods=[method], protocol="challenge", models=n,
                               out=out, cache=cache, quiet=True, set=sets,
                               executor=executor))
    with PhaseTimer() as timer:
        start, cpu = time.perf_counter(), time.process_time()
        board = run.run(progress_printer(label or f"N={n}", start))
        total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    phases = {k: round(v, 2) for k, v in timer.seconds.items()}
    cpu_phases = {k: round(v, 2) for k, v in timer.cpu.items()}
    phases["population_load_s"] = round(phases.get("population_total_s", 0.0)
                                        - phases.get("population_train_s", 0.0), 2)
    phases["population_predict_s"] = round(phases.pop("population_outputs_s", 0.0)
                                           - phases.pop("population_total_s", 0.0), 2)
    with ResultStore(out / "results.sqlite") as store:
        job = next(j for j in run.jobs if j.kind == "method")
        runs = [store.run(f"{job.key}-run{i}")["wall_s"] for i in range(n)]
    phases["unlearning_only_s"] = round(float(sum(runs)), 2)
    counted = sum(v for k, v in phases.items() if k != "unlearning_only_s")
    row = board.set_index("method").loc[method]
    phases["other_s"] = round(total - counted, 2)
    share = {k.removesuffix("_s"): round(v / total, 3) for k, v in phases.items() if total}
    grouped = {g: round(sum(phases.get(p, 0.0) for p in members) / total, 3) if total else None
               for g, members in GROUPS.items()}
    return {"total_s": round(total, 2), **phases, "share": share, "grouped": grouped,
            "cpu_s": {"total": round(total_cpu, 2), **cpu_phases},
            "F": float(row["F"]), "F_lo": float(row.get("F_lo", float("nan"))),
            "F_hi": float(row.get("F_hi", float("nan"))), "status": str(row["status"]),
            # what the cut-off reads (one run timed alone) and a run's share of its population
            "run_time_s": float(row["time_s"]),
            "population_s_per_run": float(row.get("time_population_s", float("nan"))),
            "failures": run.failures}


def loop_seconds(n: int, count: int, sets: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds to train ``count`` of the N retrained models one by one."""
    sc = resolve(BenchConfig("digits", methods=["finetune"], protocol="challenge", models=n,
                             set=sets)).scenario
    seeds = [1_000_000 + i for i in range(count)]  # population A's seeds for bench seed 0
    start, cpu = time.perf_counter(), time.process_time()
    for seed in seeds:
        train_model(sc.model_name, sc.input_shape, sc.num_classes, sc.x_retain, sc.y_retain,
                    sc.recipe, seed, owner="retrain", model_options=sc.model_options)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--method", default="finetune")
    parser.add_argument("--loop-models", type=int, default=16,
                        help="retrained models timed one by one; scaled to N when fewer")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; 1 on a shared machine)")
    parser.add_argument("--executor", default="local", choices=("local", "ray"),
                        help="where the N runs go: local (one after another) or ray (as many "
                        "at once as the cores allow, each on --threads threads)")
    parser.add_argument("--set", action="append", default=[],
                        help="extra --set KEY=VALUE for every bench, e.g. protocol.n_boot=0")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for run directories and caches (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="challenge-cost-"))
    doc = {
        "protocol": PROTOCOL, "method": args.method, "scenario": "digits", "set": args.set,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "executor": args.executor,
        "target": "2 idle cores: N=128 warm <= 30 s; N=512 warm <= 90 s, empty cache <= 480 s",
        "runs": [],
    }
    for n in args.models:
        cache = work / f"cache-{n}"
        shutil.rmtree(cache, ignore_errors=True)
        empty = protocol_run(n, args.method, work / f"empty-{n}", cache, args.set,
                             f"N={n} empty", args.executor)
        print(json.dumps({"N": n, "empty": empty}), flush=True)
        warm = protocol_run(n, args.method, work / f"warm-{n}", cache, args.set, f"N={n} warm",
                            args.executor)
        print(json.dumps({"N": n, "warm": warm}), flush=True)
        count = min(n, args.loop_models)
        print(f"[N={n}] timing {count} retrained models one by one", file=sys.stderr, flush=True)
        loop_wall, loop_cpu = (t * n / count for t in loop_seconds(n, count, args.set))
        # population A is half of the empty run's population training (A and B, N each)
        pop_wall = empty.get("population_train_s", float("nan")) / 2
        pop_cpu = empty["cpu_s"].get("population_train_s", float("nan")) / 2
        doc["runs"].append({
            "N": n, "empty_cache": empty, "warm_cache": warm,
            "population_vs_loop": {
                "population_s": round(pop_wall, 2), "loop_s": round(loop_wall, 2),
                "speedup_wall": round(loop_wall / pop_wall, 2) if pop_wall else None,
                "population_cpu_s": round(pop_cpu, 2), "loop_cpu_s": round(loop_cpu, 2),
                "speedup_cpu": round(loop_cpu / pop_cpu, 2) if pop_cpu else None,
                "loop_models_timed": count},
        })
        shutil.rmtree(work / f"empty-{n}", ignore_errors=True)
        shutil.rmtree(work / f"warm-{n}", ignore_errors=True)
        # written after every N: a run stopped during a long N keeps the finished ones
        doc["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        doc["complete"] = n == args.models[-1]
        path = write_results(args.out / "challenge_cost.json", doc, protocols=["challenge"],
                             benchmark=BENCHMARK)
        print(f"wrote {path} (N={n})", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
