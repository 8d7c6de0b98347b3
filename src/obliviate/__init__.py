"""obliviate: make trained models forget chosen training data, and measure how well they forgot.

Example:
    >>> import obliviate as ob
    >>> sc = ob.load_scenario("digits", forget="random:0.1", seed=0)
    >>> original = sc.train_original(seed=0)
    >>> unlearned = ob.unlearn(original, forget=sc.forget_loader(), retain=sc.retain_loader(),
    ...                        method="finetune", epochs=1)
    >>> report = ob.audit(unlearned, sc, reference=sc.train_retrained(seed=0))

``import obliviate`` itself is light (no torch): the public names below are imported, and the
built-in methods, scenarios and models registered, on the first use of any of them (or of a
registry), so that ``obliviate --help`` answers at once.
"""

from __future__ import annotations

import importlib
from typing import Any

# isort: off
from obliviate import environment  # noqa: F401,E402  (first: screens OMP_NUM_THREADS before torch)
# isort: on
from obliviate.version import __version__

# public name -> the module that defines it
_PUBLIC = {
    "METHODS": "obliviate.unlearning", "PrepareData": "obliviate.unlearning",
    "UnlearnData": "obliviate.unlearning", "prepare": "obliviate.unlearning",
    "register_method": "obliviate.unlearning", "unlearn": "obliviate.unlearning",
    "AuditReport": "obliviate.evaluate.audit", "audit": "obliviate.evaluate.audit",
    "Scenario": "obliviate.data", "load_scenario": "obliviate.data",
    "register_model": "obliviate.models", "Recipe": "obliviate.train",
    **{name: "obliviate.errors" for name in (
        "ConfigError", "DataError", "ForgetSpecError", "ObliviateError", "StoreError",
        "TrainingDivergedError", "UnknownNameError")},
}

__all__ = [
    "METHODS", "AuditReport", "ConfigError", "DataError", "ForgetSpecError", "ObliviateError",
    "Recipe", "Scenario", "StoreError", "TrainingDivergedError", "UnknownNameError",
    "PrepareData", "UnlearnData", "__version__", "audit", "errors", "evaluate", "load_scenario",
    "prepare", "register_method", "register_model", "unlearn",
]


def load_builtins() -> None:
    """Import the built-in methods, scenarios, models and the language-model track, which
    registers them (what ``import obliviate`` did eagerly before; idempotent)."""
    for module in ("obliviate.methods", "obliviate.llm", "obliviate.data", "obliviate.models",
                   "obliviate.evaluate.audit", "obliviate.unlearning"):
        importlib.import_module(module)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        load_builtins()
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")  # a submodule: ob.errors
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'obliviate' has no attribute '{name}'") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
