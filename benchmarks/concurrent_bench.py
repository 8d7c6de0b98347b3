"""Two benches on one run directory at once, repeated: nothing lost, nothing mixed (issue 12).

Cases, each repeated ``--reps`` times in a fresh directory:

* ``same``: two identical benches start together. One holds the directory; the other refuses
  with exit 2 naming it, or, if it starts after the first finished, resumes and re-runs nothing.
* ``other``: a bench and a bench of another experiment (another forget set) start together.
  The one that gets the directory first owns it; the other is refused (lock or experiment).

After each repetition the directory must pass SQLite's integrity check, record one experiment
whose fingerprint matches ``config.json``, hold exactly the jobs of the winning configuration
(no duplicates, no rows of the other), and ``obliviate report`` must read it.

    python benchmarks/concurrent_bench.py --reps 10 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model", "mlp", "--set", "recipe.epochs=2", "-m", "finetune", "-m", "neggrad",
        "--set", "finetune.epochs=1", "--set", "neggrad.lr=0.01", "--quiet"]


def _bench(out: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "obliviate", "bench", "digits", *TINY,
                             "--out", str(out), "--cache", str(cache), *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _check(out: Path, forget: str) -> dict:
    """The directory's state: one experiment, the expected jobs, readable by report."""
    problems = []
    with sqlite3.connect(out / "results.sqlite") as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("integrity")
        experiment = json.loads(conn.execute(
            "SELECT value FROM meta WHERE key='experiment'").fetchone()[0])
        fingerprint = conn.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()[0]
        runs = conn.execute("SELECT key, method, status FROM runs").fetchall()
        jobs = conn.execute("SELECT key FROM jobs").fetchall()
    config = json.loads((out / "config.json").read_text())
    if config.get("experiment") != fingerprint:
        problems.append("config.json and store disagree")
    if experiment["scenario"]["forget"] != forget:
        problems.append(f"store records forget {experiment['scenario']['forget']}")
    if len({k for k, _, _ in runs}) != len(runs) or len(runs) != len(jobs) or \
            {k for k, _, _ in runs} != {k for (k,) in jobs}:
        problems.append(f"{len(runs)} runs for {len(jobs)} jobs")
    if any(status != "done" for _, _, status in runs):
        problems.append("a run failed")
    report = subprocess.run([sys.executable, "-m", "obliviate", "report", str(out)],
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    if report.returncode != 0:
        problems.append(f"report: {report.stderr.strip()[:200]}")
    return {"ok": not problems, "problems": problems, "runs": len(runs)}


def repetition(case: str, root: Path, cache: Path) -> dict:
    out = root / "run"
    start = time.perf_counter()
    second_args = ("--forget", "class:3") if case == "other" else ()
    a = _bench(out, cache)
    b = _bench(out, cache, *second_args)
    err_a, err_b = a.communicate()[1], b.communicate()[1]
    codes = (a.returncode, b.returncode)
    winner = "a" if a.returncode == 0 else "b"
    refused = err_b if winner == "a" else err_a
    one_line = len(refused.strip().splitlines()) == 1 if refused.strip() else True
    expected_forget = "random:0.1" if winner == "a" or case == "same" else "class:3"
    state = _check(out, expected_forget)
    outcome = {"case": case, "exit_codes": codes, "winner": winner,
               "refusal": refused.strip()[:160], "refusal_one_line": one_line,
               "seconds": round(time.perf_counter() - start, 1), **state}
    valid_codes = {(0, 2), (2, 0)} | ({(0, 0)} if case == "same" else set())
    outcome["ok"] = state["ok"] and codes in valid_codes and one_line
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        for case in ("same", "other"):
            for rep in range(args.reps):
                root = Path(tmp) / f"{case}-{rep}"
                root.mkdir()
                rows.append(repetition(case, root, cache))
                print(json.dumps(rows[-1]), flush=True)
                shutil.rmtree(root)
    summary = {case: f"{sum(r['ok'] for r in rows if r['case'] == case)}/"
                     f"{sum(r['case'] == case for r in rows)} ok" for case in ("same", "other")}
    sys.path.insert(0, str(REPO / "src"))
    from obliviate.bench.provenance import write_results

    write_results(args.out / "concurrent_bench.json", {"summary": summary, "repetitions": rows},
                  protocols=("quick",))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
