"""What a protocol is: one registered :class:`ProtocolSpec` that owns everything about it.

A spec holds the protocol's versioned name, its options, its driver, the tasks it scores, its
columns (meaning, direction, ideal, digits, whether the terminal table shows them), its ranking,
the flags that mark a row's status, its trade-off axes and plots. The bench, the CLI table and
help, the leaderboard, the JSON output and the report all read the spec; no other file names a
protocol. A new protocol is one file in :mod:`obliviate.bench.protocols` that defines a driver
and calls ``PROTOCOLS.add(name, ProtocolSpec(...))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from obliviate.errors import ConfigError
from obliviate.registry import Registry

if TYPE_CHECKING:
    from obliviate.bench.kit import Kit
    from obliviate.bench.runner import Job

REFERENCE_ROWS = ("original", "retrain (reference)")
UNIT = (0.0, 1.0)  # bounds of a share (accuracy, AUC, F, a p-value)
POSITIVE = (0.0, math.inf)  # bounds of a ratio
STATISTICS = (
    "±: half the width of the 95% confidence interval ([lo, hi] in leaderboard.md; NAME_lo, "
    "NAME_hi in leaderboard.csv and the JSON): within a seed a bootstrap over models and "
    "examples where the protocol stores one, over seeds Student t; none for wall times or one "
    "seed without a bootstrap",
    "status 'collapsed' / 'degraded': the retain or test accuracy of some seed (or run) kept "
    "under 20% / 50% of the original's accuracy above chance (the majority-class share)",
    "status 'no-op': RA, FA and TA equal the original's in every seed (the method changed "
    "nothing); 'near chance' on a reference row: that reference is itself within 0.05 of chance, "
    "so no method is judged against it",
)
DIRECTIONS = ("higher", "lower", "closer to retrain", "closer to 0")


@dataclass(frozen=True)
class Column:
    """A leaderboard column: what it means, which way is better, its ideal and how it prints."""

    name: str
    meaning: str
    direction: str
    ideal: str
    digits: int = 3
    shown: bool = False  # in the terminal table by default (the rest behind --wide/--columns)
    bounds: tuple[float, float] = (-math.inf, math.inf)  # the range intervals are clipped to
    tasks: tuple[str, ...] = ()  # the tasks whose rows fill it (empty: every task)
    optional: bool = False  # filled only where the scenario has it (e.g. a backdoor's ASR)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"Column {self.name}: direction must be one of {DIRECTIONS}.")

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "≈")

    def legend(self) -> str:
        better = {"higher": "higher is better", "lower": "lower is better"}.get(
            self.direction, f"{self.direction} is better")
        return f"{self.name}: {self.meaning}; {better}; ideal: {self.ideal}"


@dataclass(frozen=True)
class Flag:
    """A per-run metric (1.0 when set) that marks a leaderboard row's status."""

    metric: str
    status: str  # short, for the table's status column
    meaning: str  # one line for the legend


@dataclass(frozen=True)
class Axes:
    """Two columns plotted against each other (trade-off, Pareto front)."""

    x: str
    y: str
    xlabel: str
    ylabel: str
    x_lower_is_better: bool = True
    y_lower_is_better: bool = False
    absolute_x: bool = False  # plot |x| (gaps)


@dataclass(frozen=True)
class Distributions:
    """Per-example arrays of forget and test examples drawn side by side for each row."""

    forget: str
    test: str
    xlabel: str
    log: bool = False


@dataclass(frozen=True)
class Figure:
    """A report plot a protocol draws itself: ``draw(run_dir) -> matplotlib Figure | None``."""

    name: str
    draw: Callable[[Any], Any]
    caption: str


def no_policies(options: Any) -> tuple[str, ...]:
    return ()


@dataclass
class Progress:
    """What a driver reports while it runs: a message, and one step done."""

    say: Callable[[str], None] = field(default=lambda _msg: None)
    step: Callable[[], None] = field(default=lambda: None)


class Driver(Protocol):
    """Runs a protocol's jobs for one bench and records every result through its kit."""

    def run_all(self, jobs: list[Job], progress: Progress) -> None: ...


@dataclass(frozen=True)
class ProtocolSpec:
    """A protocol: see the module docstring.

    Attributes:
        name: what ``--protocol`` takes.
        version: the versioned name stored with every result (``quick/1``); a change that
            alters numbers bumps it.
        summary: one line for ``--help`` and the listings.
        driver: ``driver(kit, options, n_models) -> Driver``, ``kit`` a
            :class:`~obliviate.bench.kit.Kit`.
        options: the options dataclass (``--set protocol.NAME=VALUE``), or None.
        tasks: the model tasks it scores (see :data:`obliviate.unlearning.TASKS`).
        default_for: the tasks for which it is the protocol when none is named.
        columns: every column it can produce, in display order.
        ranking: (column, "higher" | "lower"): how method rows are ordered.
        flags: per-run flags that set a row's status.
        default_models: models per side (None: one model of each kind per seed).
        executors: the executors it can fan out to.
        tradeoff, pareto: axes of the report's trade-off and Pareto-front plots.
        distributions: the per-example arrays the report's distribution plot draws.
        plots: the names of the report plots that apply (see :mod:`obliviate.report.plots`).
        utility: the accuracy columns whose fall near chance flags a row as collapsed.
        compare_with: the row the report's paired comparisons call "retrain".
        notes: extra legend lines.
        tunable: :func:`obliviate.tune.tune` can choose settings by this protocol's ranking
            column (one number per setting and seed).
        check_scenario: ``check_scenario(scenario, options)`` raises a ConfigError or
            DataError when the loaded scenario cannot be scored (a forget set too small for
            its attacks); :func:`obliviate.bench.config.resolve` calls it before training.
        figures: report plots the protocol draws itself (its own file, its own data).
        policies: ``policies(options)``: names of rows the protocol adds beside the methods
            (e.g. ``retrain-every-2``); the driver runs them.
        smallest: ``--set`` lines of the smallest run that still exercises the whole driver,
            and ``smallest_models`` its ``--models``: what tests/test_protocol_suite.py runs.
    """

    name: str
    version: str
    summary: str
    driver: Callable[[Kit, Any, int], Driver]
    options: type | None
    tasks: tuple[str, ...]
    columns: tuple[Column, ...]
    ranking: tuple[str, str]
    default_for: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    default_models: int | None = None
    executors: tuple[str, ...] = ("local", "ray")
    tradeoff: Axes | None = None
    pareto: Axes | None = None
    distributions: Distributions | None = None
    plots: tuple[str, ...] = ("tradeoff", "cost")
    utility: tuple[str, ...] = ()
    compare_with: str = "retrain (reference)"
    notes: tuple[str, ...] = ()
    tunable: bool = False
    check_scenario: Callable[[Any, Any], None] | None = None
    figures: tuple[Figure, ...] = ()
    policies: Callable[[Any], tuple[str, ...]] = no_policies
    smallest: tuple[str, ...] = ()
    smallest_models: int | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def legend(self, present: Sequence[str] | None = None) -> str:
        """One line per column (of those ``present``, if given), then the notes and flags."""
        cols = [c for c in self.columns if present is None or c.name in present]
        lines = [c.legend() for c in cols]
        lines += [f"status '{f.status}': {f.meaning}" for f in self.flags]
        return "\n".join([*lines, *self.notes, *STATISTICS[:1],
                          *(STATISTICS[1:] if self.utility else ())])

    @property
    def ascending(self) -> bool:
        return self.ranking[1] == "lower"


PROTOCOLS: Registry[ProtocolSpec] = Registry("protocol")


def protocol_for(task: str, name: str | None) -> ProtocolSpec:
    """The protocol ``name`` (checked against ``task``), or the default one for ``task``."""
    if name is None:
        for candidate in PROTOCOLS.names():
            spec = PROTOCOLS.get(candidate)
            if task in spec.default_for:
                return spec
        raise ConfigError(f"No protocol scores {task} models; name one with --protocol.")
    spec = PROTOCOLS.get(name)
    if task not in spec.tasks:
        fits = [n for n in PROTOCOLS.names() if task in PROTOCOLS.get(n).tasks]
        raise ConfigError(f"The {name} protocol scores {', '.join(spec.tasks)} models, not "
                          f"{task} ones. Use --protocol {' or '.join(fits)}.")
    return spec


from obliviate.bench import protocols  # noqa: E402,F401  (registers the built-in protocols)
