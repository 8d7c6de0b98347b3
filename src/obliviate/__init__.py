"""obliviate: make trained models forget chosen training data, and measure how well they forgot.

Example:
    >>> import obliviate as ob
    >>> sc = ob.load_scenario("digits", forget="random:0.1", seed=0)
    >>> original = sc.train_original(seed=0)
    >>> unlearned = ob.unlearn(original, forget=sc.forget_loader(), retain=sc.retain_loader(),
    ...                        method="finetune", epochs=1)
    >>> report = ob.audit(unlearned, sc, reference=sc.train_retrained(seed=0))
"""

# isort: off
from obliviate import environment  # noqa: F401  (first: screens OMP_NUM_THREADS before torch)
# isort: on
from obliviate import (
    errors,
    llm,  # noqa: F401  (registers the language-model track: tofu-mini and its methods)
    methods,  # noqa: E402,F401,I001  (registers the built-in methods)
)
from obliviate.data import Scenario, load_scenario
from obliviate.errors import (
    ConfigError,
    DataError,
    ForgetSpecError,
    ObliviateError,
    StoreError,
    TrainingDivergedError,
    UnknownNameError,
)
from obliviate.evaluate.audit import AuditReport, audit  # noqa: E402
from obliviate.models import register_model
from obliviate.train import Recipe
from obliviate.unlearning import (
    METHODS,
    PrepareData,
    UnlearnData,
    prepare,
    register_method,
    unlearn,
)
from obliviate.version import __version__

__all__ = [
    "METHODS", "AuditReport", "ConfigError", "DataError", "ForgetSpecError", "ObliviateError",
    "Recipe", "Scenario", "StoreError", "TrainingDivergedError", "UnknownNameError",
    "PrepareData", "UnlearnData", "__version__", "audit", "errors", "evaluate", "load_scenario",
    "prepare", "register_method", "register_model", "unlearn",
]
