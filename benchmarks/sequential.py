"""Deletions over time: the sequential protocol on digits and on tofu-mini.

Each case is one bench (``--protocol sequential``), resumable from its run directory:

- ``digits``: 5 requests of a random 2% of the training set, and 5 requests of one whole class
  each; retrain, finetune, neggrad+, scrub, redraw, sisa, and the policy row retrain-every-2
  (retrained every 2 requests, patched with finetune in between).
- ``tofu``: tofu-mini, 4 requests of 2 authors each; kl, npo+gd, grad-diff, altpo.

For every method the JSON gives the per-request curves (utility, forgetting of the current and
of every earlier request, loss MIA, gap to the step's retrained model, seconds and their ratio
to the step's retrain), the first request at which utility and at which forgetting fell
outside the retrained reference's interval, the leaderboard by the final and by the worst
step, and the report's plot of each metric against the request number.

    python benchmarks/sequential.py --track digits --out benchmarks/results
    python benchmarks/sequential.py --track tofu --out benchmarks/results

Writes ``sequential_digits.json`` / ``sequential_tofu.json`` and ``sequential_<case>.png``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from obliviate.bench.config import BenchConfig
from obliviate.bench.protocols.sequential import interval
from obliviate.bench.provenance import write_results
from obliviate.bench.runner import BenchRun
from obliviate.bench.store import ResultStore

BENCHMARK = "sequential/1"
CASES = {
    "digits": {
        "random": dict(scenario="digits", methods=["retrain", "finetune", "neggrad+", "scrub",
                                                   "redraw", "sisa"],
                       set=["protocol.requests=5", "protocol.request=random:0.02",
                            "protocol.retrain_every=2", "protocol.patch=finetune"]),
        "class": dict(scenario="digits", methods=["retrain", "finetune", "neggrad+", "scrub",
                                                  "redraw", "sisa"],
                      set=["protocol.requests=5", "protocol.request=class",
                           "protocol.retrain_every=2", "protocol.patch=finetune"]),
    },
    "tofu": {
        "authors": dict(scenario="tofu-mini", methods=["kl", "npo+gd", "grad-diff", "altpo"],
                        forget="authors:0.1",
                        set=["protocol.requests=4", "protocol.request=authors:2"]),
    },
}
UTILITY = {"digits": "TA", "tofu": "model_utility"}
FORGETTING = {"digits": "FA_all", "tofu": "fq_all"}


def steps_of(out: Path, seeds: int) -> dict[str, list[list[dict]]]:
    """Per row, per seed: the metrics stored after each request."""
    rows: dict[str, list[list[dict]]] = {}
    with ResultStore(out / "results.sqlite", readonly=True) as store:
        for job in store.jobs():
            if job["seed"] >= seeds or store.status(job["key"]) != "done":
                continue
            k, per = 0, []
            while store.is_done(f"{job['key']}-req{k}"):
                per.append(store.metrics(f"{job['key']}-req{k}"))
                k += 1
            rows.setdefault(job["method"], []).append(per)
    return rows


def first_outside(steps: list[dict], refs: list[dict], metric: str, sizes: list[int]) -> int:
    """The first request (1-based) whose ``metric`` left the reference's interval; 0: never."""
    for k, (m, r) in enumerate(zip(steps, refs, strict=True)):
        lo, hi = interval(metric, r[metric], sizes[k])
        if not lo <= m[metric] <= hi:
            return k + 1
    return 0


def summarise(track: str, out: Path, board, seeds: int, sizes: dict[str, list[int]]) -> dict:
    rows = steps_of(out, seeds)
    refs = rows["retrain (reference)"]
    util, forget = UTILITY[track], FORGETTING[track]
    methods = {}
    for method, per_seed in rows.items():
        curves = {name: np.mean([[s[name] for s in steps] for steps in per_seed], axis=0).tolist()
                  for name in per_seed[0][0] if name != "request"}
        outside = {
            "utility": [first_outside(s, r, util, sizes.get(util, [0] * len(s)))
                        for s, r in zip(per_seed, refs, strict=True)],
            "forgetting": [first_outside(s, r, forget, sizes.get(forget, [0] * len(s)))
                           for s, r in zip(per_seed, refs, strict=True)],
        }
        ratios = [[s.get("time_s", np.nan) / r["time_s"] for s, r in zip(steps, ref_steps,
                                                                        strict=True)]
                  for steps, ref_steps in zip(per_seed, refs, strict=True)]
        methods[method] = {"curves": curves, "first_request_outside": outside,
                           "step_time_over_retrain": np.mean(ratios, axis=0).tolist()}
    table = board.set_index("method")
    ranked = table.drop(index=["original", "retrain (reference)"], errors="ignore")
    keep = [c for c in table.columns if not c.endswith(("_lo", "_hi", "_std"))]
    return {"methods": methods,
            "ranking_final": ranked["avg_gap"].sort_values().index.tolist(),
            "ranking_worst": ranked["worst_gap"].sort_values().index.tolist(),
            "leaderboard": table[keep[1:]].reset_index().to_dict(orient="records")}


def run_case(track: str, case: str, args) -> dict:
    cfg = CASES[track][case]
    out = args.runs / f"sequential-{track}-{case}"
    sets = [*cfg["set"], *args.set]
    start = time.perf_counter()
    run = BenchRun(BenchConfig(**{**cfg, "set": sets}, protocol="sequential", out=out,
                               cache=args.runs / f"sequential-{track}-models", seeds=args.seeds,
                               quiet=True))
    sc = run.rb.scenario
    from obliviate.bench.protocols.sequential import draw_requests

    reqs = draw_requests(run.rb.protocol_options, sc, 0)
    board = run.run()
    sizes = {}
    if track == "digits":
        sizes = {"TA": [len(sc.splits.y_test)] * len(reqs),
                 "FA_all": [int(sum(len(r) for r in reqs[:k + 1])) for k in range(len(reqs))]}
    from obliviate.report import write_report

    report = write_report(out)
    plot = out / "plots" / "requests.png"
    if plot.exists():
        shutil.copy(plot, args.out / f"sequential_{track}_{case}.png")
    return {"settings": {"scenario": cfg["scenario"], "methods": cfg["methods"], "set": sets,
                         "seeds": args.seeds},
            "requests_seed0": [r.tolist() for r in reqs],
            "wall_s": time.perf_counter() - start, "failures": run.failures,
            "report": str(report), **summarise(track, out, board, args.seeds, sizes)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--track", choices=sorted(CASES), required=True)
    p.add_argument("--cases", nargs="*", help="cases of the track (default: all)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="extra OWNER.PARAM=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {case: run_case(args.track, case, args)
               for case in (args.cases or CASES[args.track])}
    path = write_results(args.out / f"sequential_{args.track}.json",
                         {"track": args.track, "cases": results,
                          "machine_loaded": "see provenance.load_average"},
                         protocols=("sequential",), benchmark=BENCHMARK)
    print(path)


if __name__ == "__main__":
    main()
