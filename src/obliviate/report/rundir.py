"""Everything a report needs, read from a run directory alone (no scenario, no models)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from obliviate.bench.store import ResultStore
from obliviate.errors import StoreError

REFERENCES = ("original", "retrain (reference)")


@dataclass
class RunDir:
    """A finished bench: its resolved config, leaderboard and stored per-example values."""

    root: Path
    config: dict[str, Any]
    board: pd.DataFrame
    runs: pd.DataFrame  # one row per stored job (references and methods; not single runs)
    db: Path

    @property
    def protocol(self) -> str:
        return str(self.config.get("bench", {}).get("protocol", "quick"))

    @property
    def methods(self) -> list[str]:
        """Leaderboard order: references first, then methods by rank."""
        return [str(m) for m in self.board["method"]]

    def arrays(self, name: str) -> dict[str, list[np.ndarray]]:
        """Per-example array ``name`` of each row's finished jobs, one array per seed."""
        out: dict[str, list[np.ndarray]] = {}
        done = self.runs[self.runs["status"] == "done"].sort_values("seed", kind="stable")
        with ResultStore(self.db) as store:
            for method, key in zip(done["method"], done["key"], strict=True):
                values = store.example_values(key, name)
                if values is not None:
                    out.setdefault(method, []).append(values)
        return {m: out[m] for m in self.methods if m in out}

    def pooled(self, name: str) -> dict[str, np.ndarray]:
        """``arrays(name)`` with the seeds concatenated."""
        return {m: np.concatenate(v) for m, v in self.arrays(name).items()}


def load_run(root: Path) -> RunDir:
    """Read ``root``; a StoreError says what is missing when it is not a finished run."""
    root = Path(root)
    db, config, board = root / "results.sqlite", root / "config.json", root / "leaderboard.csv"
    if not root.is_dir() or not db.is_file() or not config.is_file():
        raise StoreError(f"{root} is not a run directory (it needs results.sqlite and "
                         f"config.json); pass the --out directory of an 'obliviate bench' run.")
    if not board.is_file():
        raise StoreError(f"{root} has no leaderboard.csv: the bench did not finish; run the same "
                         f"'obliviate bench' command again to complete it, then report.")
    try:
        cfg = json.loads(config.read_text())
        table = pd.read_csv(board)
        with sqlite3.connect(db) as conn:
            runs = pd.read_sql_query(
                "SELECT key, kind, method, seed, status, error, wall_s FROM runs "
                "WHERE kind != 'run'", conn)
    except (OSError, ValueError, sqlite3.Error, pd.errors.ParserError) as exc:
        raise StoreError(f"Cannot read the run directory {root}: {exc}.") from None
    return RunDir(root, cfg, table, runs, db)
