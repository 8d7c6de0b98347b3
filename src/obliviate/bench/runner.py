"""Run a bench: plan its jobs, hold its run directory, let the protocol's driver fill the store.

The bench is the same for every protocol and task: per seed an ``original`` job, a
``retrain (reference)`` job and one job per method; the protocol's driver (its registered spec)
decides what each job trains and measures. Every job is committed on its own, so a killed bench
started again skips what finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from obliviate.bench import ownership
from obliviate.bench.config import BenchConfig, ResolvedBench, resolve
from obliviate.bench.executors import make_executor
from obliviate.bench.interfaces import tuning_mismatch
from obliviate.bench.kit import Kit
from obliviate.bench.leaderboard import build_leaderboard, chance_levels, write_leaderboard
from obliviate.bench.provenance import git_commit, machine, versions  # noqa: F401  (re-exported)
from obliviate.bench.spec import Progress
from obliviate.bench.store import ResultStore, atomic_write_text, ensure_writable_dir
from obliviate.cache import ModelCache
from obliviate.calibrate import auto_in_config, with_value
from obliviate.config import config_dict


@dataclass
class Job:
    key: str
    kind: str  # 'original', 'retrain' (references) or 'method'
    method: str
    seed: int


def job_key(*parts: Any) -> str:
    """A stable key for a job from everything that determines its result."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def plan(rb: ResolvedBench) -> list[Job]:
    """Every job of the bench, references first for each seed; keys identify finished work."""
    base: tuple = (rb.scenario.describe(), rb.protocol.version)
    if rb.protocol.options is not None:
        base += (rb.n_models, config_dict(rb.protocol_options))
    jobs = []
    for seed in rb.seeds:
        jobs.append(Job(job_key(base, "original", seed), "original", "original", seed))
        jobs.append(Job(job_key(base, "retrain-reference", seed), "retrain",
                        "retrain (reference)", seed))
        for name, info in rb.methods.items():
            cfg = config_dict(rb.method_configs[name])
            jobs.append(Job(job_key(base, info.name, cfg, seed), "method", name, seed))
        for name in rb.protocol.policies(rb.protocol_options):  # the protocol's own rows
            jobs.append(Job(job_key(base, "policy", name, seed), "method", name, seed))
    return jobs


class BenchRun:
    """One bench over a run directory; :meth:`run` is resumable.

    Creating it resolves the configuration (nothing is written if that fails), takes the run
    directory's lock and checks that the directory holds this experiment or nothing.
    """

    def __init__(self, cfg: BenchConfig):
        self.rb = resolve(cfg)
        self.jobs = plan(self.rb)
        self.out = ensure_writable_dir(cfg.out)
        self.lock = ownership.DirectoryLock(self.out)
        self.store = None
        try:
            configs = {n: config_dict(c) for n, c in self.rb.method_configs.items()}
            db = self.out / "results.sqlite"
            if db.exists():  # check before writing: a refused bench leaves the store as it was
                with ResultStore(db, immutable=True) as existing:
                    ownership.claim(existing, self.out, self.identity())
                    if existing.meta("experiment") is not None:
                        ownership.check_method_configs(existing, self.out, configs)
            self.store = ResultStore(db)
            ownership.claim(self.store, self.out, self.identity())
            self.store.add_jobs([(j.key, j.kind, j.method, j.seed,
                                  configs.get(j.method, {})) for j in self.jobs])
        except BaseException:
            self.close()
            raise
        self.cache = ModelCache(ensure_writable_dir(cfg.cache_dir, "--cache"), on_note=self.note)
        self.failures: list[str] = []
        self.calibrations: dict[str, dict] = {}  # --set METHOD.lr=auto: the sweep per method
        self.notes: list[str] = []  # one-line facts the run wants its user to know
        self.executor = None  # set while run() runs

    def identity(self) -> dict[str, Any]:
        rb = self.rb
        return ownership.identity(rb.scenario.describe(), rb.protocol.version,
                                  config_dict(rb.protocol_options),
                                  rb.n_models if rb.protocol.default_models else None)

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
            self.store = None
        self.lock.close()

    @property
    def total_steps(self) -> int:
        """Progress units: one per job, or per unlearning run when a protocol repeats runs."""
        if self.rb.protocol.default_models is not None:
            n_methods = sum(j.kind == "method" for j in self.jobs)
            return len(self.jobs) - n_methods + n_methods * self.rb.n_models
        return len(self.jobs)

    def tuned_defaults(self) -> list[str]:
        """The scenario's adjustments to methods' defaults that this bench uses."""
        tuned = self.rb.scenario.method_defaults
        sets = self.rb.config.set
        return [f"{name}.{k}={v}" for name in self.rb.methods
                for k, v in tuned.get(self.rb.methods[name].name, {}).items()
                if not any(s.startswith(f"{name}.{k}=") for s in sets)]

    def note(self, text: str) -> None:
        """A fact the user should know about this run (printed once, kept in config.json)."""
        if text not in self.notes:
            self.notes.append(text)

    def tuned_notes(self) -> dict[str, str]:
        """Per method using tuned defaults: a note when the recipe is not the tuned one."""
        mismatch = tuning_mismatch(self.rb.scenario)
        if not mismatch:
            return {}
        used: dict[str, list[str]] = {}
        for d in self.tuned_defaults():  # "neggrad.lr=0.003"
            used.setdefault(d.partition("=")[0].rpartition(".")[0], []).append(d)
        return {m: f"tuned defaults {', '.join(ds)} used with {', '.join(mismatch)}"
                for m, ds in used.items()}

    def earlier_failures(self) -> list[str]:
        """Failures recorded by an earlier run and kept (not run again without --retry-failed)."""
        out = []
        for job in self.all_jobs():
            run = self.store.run(job.key)
            text = f"seed {job.seed}: {run['error']}" if run else ""
            if run and run["status"] == "failed" and text not in self.failures:
                out.append(f"{text} (recorded by an earlier run; --retry-failed runs it again)")
        return out

    # ------------------------------------------------------------------ the run
    def all_jobs(self) -> list[Job]:
        """This bench's jobs and those an earlier bench of the experiment recorded, in order."""
        return [Job(j["key"], j["kind"], j["method"], j["seed"]) for j in self.store.jobs()]

    def write_config(self) -> None:
        rb = self.rb
        methods = {}
        for job in self.store.jobs():
            if job["kind"] == "method":
                info = rb.methods.get(job["method"])
                methods[job["method"]] = {"method": info.name if info else job["method"],
                                          "family": info.family if info else None,
                                          "config": job["config"]}
                if job["method"] in self.calibrations:
                    methods[job["method"]]["calibration"] = self.calibrations[job["method"]]
        doc = {
            "bench": rb.config.to_dict(),
            "protocol": rb.protocol.name,
            "protocol_version": rb.protocol.version,
            "protocol_options": config_dict(rb.protocol_options),
            "n_models": rb.n_models,
            "scenario": rb.scenario.describe(),
            "experiment": self.store.meta("fingerprint"),
            "methods": methods,
            "seeds": sorted({j["seed"] for j in self.store.jobs()}),
            "device": rb.device,
            "notes": self.notes,
            "versions": versions(),
            "machine": machine(),
        }
        atomic_write_text(self.out / "config.json", json.dumps(doc, indent=2, sort_keys=True)
                          + "\n")

    def calibrate(self, progress: Progress) -> None:
        """Methods given ``--set METHOD.lr=auto``: calibrate the step size once, on the first
        seed's original (:mod:`obliviate.calibrate`), and run every seed at the chosen value;
        the calibration goes into config.json (``methods.NAME.calibration``)."""
        rb, kit = self.rb, Kit(self)
        for name, cfg in list(rb.method_configs.items()):
            marked = auto_in_config(cfg)
            if marked is None:
                continue
            field = marked[0]
            job = next(j for j in self.jobs if j.kind == "method" and j.method == name)
            progress.say(f"calibrating {name}.{field} (seed {job.seed}'s original)")
            original, _ = kit.reference("original", job.seed)
            out, _ = kit.unlearn(job, original)
            cal = out.obliviate_calibration
            rb.method_configs[name] = with_value(cfg, field, cal["value"])
            self.calibrations[name] = cal
            self.note(f"{name}: {field}='auto' chose {cal['value']:g} (default "
                      f"{cal['default']:g}){'; ' + cal['note'] if cal['note'] else ''}")
        if self.calibrations:
            self.write_config()

    def run(self, progress: Progress | None = None) -> Any:
        progress = progress or Progress()
        try:
            self.write_config()
            self.calibrate(progress)
            progress.say(f"starting the {self.rb.config.executor} executor")
            self.executor = make_executor(self.rb.config.executor, self.rb.config.address)
            self.executor.running = lambda label: progress.say(f"running {label}")
            try:
                driver = self.rb.protocol.driver(Kit(self), self.rb.protocol_options,
                                                 self.rb.n_models)
                driver.run_all(self.jobs, progress)
            finally:
                self.executor.close()
                self.executor = None
            self.write_config()  # with what the run learnt (notes)
            board = build_leaderboard(self.store, self.all_jobs(), self.rb.protocol,
                                      chance=chance_levels(self.rb.scenario),
                                      notes=self.tuned_notes())
            write_leaderboard(board, self.out)
            self.failures += self.earlier_failures()
        finally:
            self.close()
        return board
