"""Forgetting quality of the challenge metric on synthetic confidences, with timings.

Each forget example gets a mean and a spread; the retrained models' confidences are Gaussian
around them and the unlearned models' are the same Gaussian (ideal unlearning), shifted by 0.5 or
3 standard deviations, or one constant shared by all models (a deterministic unlearner). Runs at
N = 64, 128 and 512 models per side with 200 examples each, seeded, and writes
``challenge_agreement.json``. ``reference_F`` holds the calibration numbers of the team's summary
(challenge-protocol.md §2.6, from an unverified port with 100 examples) where it gives one.

    python benchmarks/challenge_agreement.py --out benchmarks/results

Numpy only (no torch training); seconds. ``--models 8 --examples 20`` is a smoke run.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from obliviate.bench.provenance import write_results
from obliviate.evaluate import challenge as ch

BENCHMARK = "challenge-agreement/1"

CASES = {"identical": 0.0, "shift_0.5sd": 0.5, "shift_3sd": 3.0, "deterministic": None}
REFERENCE_F = {("identical", 512): 0.19, ("identical", 128): 0.20, ("identical", 64): 0.18,
               ("shift_0.5sd", 512): 0.07, ("shift_0.5sd", 64): 0.12,
               ("deterministic", 512): 0.0, ("deterministic", 128): 0.0,
               ("deterministic", 64): 0.0}


def confidences(case: str, n_models: int, n_examples: int, seed: int):
    """Unlearned and retrained confidences, each (n_models, n_examples)."""
    rng = np.random.default_rng(seed)
    mu, sd = rng.normal(0.0, 3.0, n_examples), rng.uniform(0.5, 1.5, n_examples)
    retrained = rng.normal(mu, sd, (n_models, n_examples))
    shift = CASES[case]
    if shift is None:
        unlearned = np.tile(rng.normal(mu, sd), (n_models, 1))
    else:
        unlearned = rng.normal(mu + shift * sd, sd, (n_models, n_examples))
    return unlearned, retrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--models", type=int, nargs="+", default=[64, 128, 512])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for n_models in args.models:
        for k, case in enumerate(CASES):
            unlearned, retrained = confidences(case, n_models, args.examples,
                                               seed=args.seed + 1000 * n_models + k)
            start = time.perf_counter()
            result = ch.evaluate_forgetting(unlearned, retrained)
            seconds = time.perf_counter() - start
            eps = result.epsilons
            rows.append({
                "case": case, "n_models": n_models, "n_examples": args.examples,
                "F": result.forgetting_quality,
                "reference_F": REFERENCE_F.get((case, n_models)),
                "median_epsilon": float(np.median(eps)), "mean_epsilon": float(eps.mean()),
                "capped_fraction": float(np.mean(eps == ch.EPSILON_CAP)),
                "num_bins": ch.num_bins(n_models), "seconds": seconds,
            })

    payload = {"protocol": ch.PROTOCOL, "seed": args.seed, "numpy": np.__version__,
               "python": platform.python_version(), "results": rows}
    path = write_results(args.out / "challenge_agreement.json", payload,
                         protocols=["challenge"], benchmark=BENCHMARK)

    print(f"{'case':<14}{'N':>5}{'F':>9}{'ref F':>8}{'med eps':>9}{'capped':>8}{'seconds':>9}")
    for r in rows:
        ref = "" if r["reference_F"] is None else f"{r['reference_F']:.2f}"
        print(f"{r['case']:<14}{r['n_models']:>5}{r['F']:>9.4f}{ref:>8}"
              f"{r['median_epsilon']:>9.3f}{r['capped_fraction']:>8.2f}{r['seconds']:>9.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
