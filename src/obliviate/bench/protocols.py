"""The evaluation protocols the bench knows: one registry entry each, no if/elif dispatch."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.bench.challenge_run import ChallengeDriver, ChallengeOptions
from obliviate.bench.quick_run import QuickDriver
from obliviate.bench.ulira_run import PROTOCOL as ULIRA_VERSION
from obliviate.bench.ulira_run import UliraDriver, UliraOptions
from obliviate.evaluate.audit import PROTOCOL as QUICK_VERSION
from obliviate.evaluate.challenge import PROTOCOL as CHALLENGE_VERSION
from obliviate.registry import Registry


@dataclass(frozen=True)
class ProtocolSpec:
    """A protocol: its versioned name, options, driver, ranking and default model count."""

    version: str
    driver: type
    options: type | None
    sort_by: str
    ascending: bool
    default_models: int | None  # None: the protocol trains one model of each kind per seed


PROTOCOLS: Registry[ProtocolSpec] = Registry("protocol")
PROTOCOLS.add("quick", ProtocolSpec(QUICK_VERSION, QuickDriver, None, "avg_gap", True, None))
PROTOCOLS.add("challenge", ProtocolSpec(CHALLENGE_VERSION, ChallengeDriver, ChallengeOptions,
                                        "score", False, 64))
PROTOCOLS.add("ulira", ProtocolSpec(ULIRA_VERSION, UliraDriver, UliraOptions, "attack_acc", True, 32))
