"""Everything a report needs, read from a run directory alone (no scenario, no models)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obliviate.bench.spec import PROTOCOLS, REFERENCE_ROWS, ProtocolSpec
from obliviate.bench.store import ResultStore
from obliviate.errors import StoreError

REFERENCES = REFERENCE_ROWS


@dataclass
class RunDir:
    """A finished bench: its resolved config, leaderboard and stored per-example values."""

    root: Path
    config: dict[str, Any]
    board: pd.DataFrame
    runs: pd.DataFrame  # one row per stored job (references and methods; not single runs)
    db: Path

    @property
    def spec(self) -> ProtocolSpec:
        """The registered protocol that wrote the run."""
        return PROTOCOLS.get(self.config["protocol"])

    @property
    def protocol(self) -> str:
        return self.spec.name

    @property
    def methods(self) -> list[str]:
        """Leaderboard order: references first, then methods by rank."""
        return [str(m) for m in self.board["method"]]

    def arrays(self, name: str) -> dict[str, list[np.ndarray]]:
        """Per-example array ``name`` of each row's finished jobs, one array per seed."""
        out: dict[str, list[np.ndarray]] = {}
        done = self.runs[self.runs["status"] == "done"].sort_values("seed", kind="stable")
        with ResultStore(self.db, readonly=True) as store:
            for method, key in zip(done["method"], done["key"], strict=True):
                values = store.example_values(key, name)
                if values is not None:
                    out.setdefault(method, []).append(values)
        return {m: out[m] for m in self.methods if m in out}

    def pooled(self, name: str) -> dict[str, np.ndarray]:
        """``arrays(name)`` with the seeds concatenated."""
        return {m: np.concatenate(v) for m, v in self.arrays(name).items()}


# The fields of config.json the report reads, with the JSON type each must have.
CONFIG_FIELDS: dict[str, tuple[type, ...]] = {
    "bench": (dict,), "scenario": (dict,), "protocol_options": (dict,), "versions": (dict,),
    "methods": (dict,), "machine": (dict,), "seeds": (list,), "notes": (list,),
    "n_models": (int, type(None)), "experiment": (str, type(None)),
}
JSON_NAMES = {dict: "an object", list: "a list", int: "an integer", str: "a string",
              type(None): "null"}


def read_run_config(path: Path) -> dict[str, Any]:
    """A run directory's ``config.json``, with the type of every field the report reads
    checked; a StoreError (one line) says which field is wrong."""
    fix = "it was edited or written by another version; run the bench again into a fresh --out"
    try:
        cfg = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise StoreError(f"Cannot read {path} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}); {fix}.") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("protocol"), str) \
            or cfg["protocol"] not in PROTOCOLS:
        raise StoreError(f"{path} names no protocol this obliviate knows; {fix}.")
    for key, types in CONFIG_FIELDS.items():
        value = cfg.get(key)
        if key in cfg and (not isinstance(value, types) or isinstance(value, bool)):
            want = " or ".join(JSON_NAMES[t] for t in types)
            raise StoreError(f"{path}: '{key}' is {type(value).__name__}, not {want}; {fix}.")
    for key in ("bench", "scenario"):
        for name in ("forget", "scenario"):
            value = cfg.get(key, {}).get(name)
            if value is not None and not isinstance(value, str):
                raise StoreError(f"{path}: '{key}.{name}' is {type(value).__name__}, not a "
                                 f"string; {fix}.")
    if not all(isinstance(n, str) for n in cfg.get("notes", [])):
        raise StoreError(f"{path}: 'notes' must be a list of strings; {fix}.")
    return cfg


def load_run(root: Path) -> RunDir:
    """Read ``root``; a StoreError says what is missing when it is not a finished run.

    Only the jobs of the experiment the store records are read (see
    :mod:`obliviate.bench.ownership`), and a store that fails SQLite's integrity check is refused.
    """
    root = Path(root)
    db, config, board = root / "results.sqlite", root / "config.json", root / "leaderboard.csv"
    if not root.is_dir() or not db.is_file() or not config.is_file():
        raise StoreError(f"{root} is not a run directory (it needs results.sqlite and "
                         f"config.json); pass the --out directory of an 'obliviate bench' run.")
    if not board.is_file():
        raise StoreError(f"{root} has no leaderboard.csv: the bench did not finish; run the same "
                         f"'obliviate bench' command again to complete it, then report.")
    with ResultStore(db, readonly=True) as store:  # refuses a damaged store; writes nothing
        cfg = read_run_config(config)
        try:
            table = pd.read_csv(board)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise StoreError(f"Cannot read the run directory {root}: {exc}.") from None
        if store.meta("fingerprint") != cfg.get("experiment"):
            raise StoreError(f"{root}/config.json and results.sqlite describe different "
                             f"experiments; run the bench again to rewrite them.")
        try:
            runs = pd.read_sql_query(
                "SELECT runs.key, runs.kind, runs.method, runs.seed, status, error, wall_s "
                "FROM runs JOIN jobs ON jobs.key = runs.key ORDER BY jobs.position",
                store.conn)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise StoreError(f"Cannot read the run directory {root}: {exc}.") from None
    return RunDir(root, cfg, table, runs, db)
