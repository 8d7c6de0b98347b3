"""Two ``obliviate sisa forget`` processes on one model folder, many times: is anything lost?

Three cases, each repeated ``--reps`` times on a fresh copy of one small trained model (digits,
400 examples, MLP, S=4 shards of R=2 slices, 2 epochs):

* ``paused_race``: the audit's interleaving. A deletes three ids (shards 0, 1, 3) and is paused
  right after planning (test-only hook ``OBLIVIATE_SISA_PAUSE_AFTER_PLAN``); B deletes one id of
  shard 3, which A retrains too, and must wait for A; then A is released.
* ``free_race``: A and B started at the same moment with no hook: either may go first.
* ``no_wait_in_flight``: while A is in flight (paused after its first checkpoint), B runs with
  ``--no-wait`` and must be refused having recorded nothing; C (waiting) queues behind A.

A repetition passes when every process exits as it should, every request it expects is
complete (attempted once), the deleted set is exactly the union of the served requests' ids,
no checkpoint file on disk is unaccounted for, and the served ensemble is bit-identical to the
shards trained from scratch (``train_shard`` from slice 0) without those ids.

    cpu timeout 1800 env PYTHONPATH=src python benchmarks/sisa_race.py --reps 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import obliviate as ob
from obliviate.sisa import SisaModel, train_shard

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
       "MKL_NUM_THREADS": "1"}
PROTOCOL = "sisa-race/1"


def start(logs: Path, *args, pause: Path | None = None, stage: str = "PLAN"):
    env = dict(ENV)
    if pause is not None:
        env[f"OBLIVIATE_SISA_PAUSE_AFTER_{stage}"] = str(pause)
    with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "obliviate", "sisa", *map(str, args)],
                                env=env, stdout=out, stderr=err)
    proc.logs = logs
    return proc


def finish(proc, timeout: float = 300) -> tuple[int, str]:
    proc.wait(timeout)
    return proc.returncode, Path(f"{proc.logs}.err").read_text()


def wait_until(check, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise TimeoutError("a process never reached the expected point")
        time.sleep(0.05)


def ids_file(folder: Path, name: str, ids: list[int]) -> Path:
    path = folder / name
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


def check(path: Path, expected_requests: int) -> dict:
    """Ledger, files and weights of a finished repetition."""
    model = SisaModel.open(path, recover=False)
    reqs = model.ledger.requests()
    served = sorted({i for r in reqs if r.status == "complete" for i in r.ids})
    deleted = model.ledger.deleted(complete_only=True).tolist()
    named = {model._path(s, r, v) for (s, r), v in model.ledger.checkpoint_versions().items()}
    on_disk = set(path.glob("shard*/*"))
    members = model.ensemble().constituents
    exact = True
    for s in range(model.plan.shards):
        ref = train_shard(model.factory, model.x, model.y, model.plan, s, model.recipe,
                          model.seed, deleted=np.array(served, dtype=np.int64)).state_dict()
        got = members[s].state_dict()
        exact &= all(torch.equal(got[k], v) for k, v in ref.items())
    model.close()
    return {"exact": exact,
            "all_complete": len(reqs) == expected_requests and
            all(r.status == "complete" and r.attempts == 1 for r in reqs),
            "nothing_lost": deleted == served,
            "stray_files": len(on_disk - named), "missing_files": len(named - on_disk),
            "order": [list(r.ids) for r in reqs]}


def paused_race(folder: Path, a: list[int], b: list[int]) -> dict:
    release = folder.parent / "release"
    pa = start(folder.parent / "a", "forget", folder, "--ids", ids_file(folder.parent, "a", a),
               "--quiet", pause=release)
    wait_until(lambda: release.with_name("release.paused").exists())
    pb = start(folder.parent / "b", "forget", folder, "--ids", ids_file(folder.parent, "b", b),
               "--quiet")
    wait_until(lambda: "waiting for pid" in Path(f"{pb.logs}.err").read_text())
    release.touch()
    (ca, ea), (cb, eb) = finish(pa), finish(pb)
    return {"exit_ok": ca == 0 and cb == 0, "b_waited": "waiting for pid" in eb,
            "errors": [e for e in (ea, eb) if "error" in e]}


def free_race(folder: Path, a: list[int], b: list[int]) -> dict:
    pa = start(folder.parent / "a", "forget", folder, "--ids", ids_file(folder.parent, "a", a),
               "--quiet")
    pb = start(folder.parent / "b", "forget", folder, "--ids", ids_file(folder.parent, "b", b),
               "--quiet")
    (ca, ea), (cb, eb) = finish(pa), finish(pb)
    return {"exit_ok": ca == 0 and cb == 0,
            "someone_waited": "waiting for pid" in ea + eb,
            "errors": [e for e in (ea, eb) if "error" in e]}


def no_wait_in_flight(folder: Path, a: list[int], b: list[int]) -> dict:
    release = folder.parent / "release"
    pa = start(folder.parent / "a", "forget", folder, "--ids", ids_file(folder.parent, "a", a),
               "--quiet", pause=release, stage="CHECKPOINT")
    wait_until(lambda: release.with_name("release.paused").exists())
    refused = subprocess.run([sys.executable, "-m", "obliviate", "sisa", "forget", str(folder),
                              "--ids", str(ids_file(folder.parent, "b", [b[0] + 1])),
                              "--no-wait", "--quiet"], env=ENV, capture_output=True, text=True,
                             timeout=300)
    pc = start(folder.parent / "c", "forget", folder, "--ids", ids_file(folder.parent, "c", b),
               "--quiet")
    wait_until(lambda: "waiting for pid" in Path(f"{pc.logs}.err").read_text())
    release.touch()
    (ca, ea), (cc, ec) = finish(pa), finish(pc)
    return {"exit_ok": ca == 0 and cc == 0 and refused.returncode == 2,
            "refusal_one_line": refused.stderr.count("\n") == 1 and "is busy" in refused.stderr,
            "errors": [e for e in (ea, ec) if "error" in e]}


CASES = {"paused_race": paused_race, "free_race": free_race,
         "no_wait_in_flight": no_wait_in_flight}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sc = ob.load_scenario("digits", model="mlp")
    work = Path(tempfile.mkdtemp(prefix="sisa-race-"))
    result = {"protocol": PROTOCOL, "obliviate": ob.__version__, "git_commit": git_commit(),
              "torch": torch.__version__, "machine": platform.platform(),
              "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
              "model": {"scenario": "digits", "n_train": 400, "model": "mlp", "shards": 4,
                        "slices": 2, "epochs": 2}, "cases": {}}
    try:
        base = work / "trained"
        SisaModel.train(base, sc.splits.x_train[:400], sc.splits.y_train[:400],
                        model_name="mlp", shards=4, slices=2, seed=0, num_classes=10,
                        recipe=ob.Recipe(optimizer="sgd", lr=0.05, epochs=2, batch_size=64))
        members = SisaModel.open(base, recover=False).plan.members
        a = sorted(int(v) for v in (members[0][1][0], members[1][0][2], members[3][0][5]))
        b = [int(members[3][1][4])]  # shard 3, which A retrains too
        for name in args.cases:
            reps = []
            for rep in range(args.reps):
                run_dir = work / f"{name}-{rep}"
                shutil.copytree(base, run_dir / "m")
                started = time.perf_counter()
                row = CASES[name](run_dir / "m", a, b)
                row.update(check(run_dir / "m", 2))
                row["seconds"] = round(time.perf_counter() - started, 2)
                row["ok"] = (row["exit_ok"] and row["exact"] and row["all_complete"] and
                             row["nothing_lost"] and not row["stray_files"] and
                             not row["missing_files"])
                reps.append(row)
                print(f"{name} {rep + 1}/{args.reps}: ok={row['ok']} exact={row['exact']} "
                      f"order={row['order']} {row['seconds']}s", flush=True)
                shutil.rmtree(run_dir, ignore_errors=True)
            result["cases"][name] = {
                "a_ids": a, "b_ids": b, "reps": len(reps),
                "ok": sum(r["ok"] for r in reps), "exact": sum(r["exact"] for r in reps),
                "nothing_lost": sum(r["nothing_lost"] for r in reps),
                "a_first": sum(r["order"][0] == a for r in reps), "runs": reps}
            result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "sisa_race.json").write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, c in result["cases"].items():
        print(f"{name}: {c['ok']}/{c['reps']} ok, {c['exact']}/{c['reps']} bit-identical, "
              f"{c['nothing_lost']}/{c['reps']} nothing lost; A first in {c['a_first']}")


if __name__ == "__main__":
    main()
