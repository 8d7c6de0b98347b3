"""What a protocol may ask of a scenario, written down as two ``typing.Protocol`` classes.

A classification-style scenario (:class:`obliviate.data.scenario.Scenario`: classification,
regression, anomaly) and a language-model scenario (:class:`obliviate.llm.scenario.TofuScenario`
and the MUSE scenario built on it) are told apart by their ``task``, never by probing for
attributes: :func:`is_language_model` is the one test. Each interface names the metrics a
protocol can count on for it (``REQUIRED_METRICS``); ``tests/test_protocol_suite.py`` checks every
registered scenario that loads offline against its interface and those metrics.

The pattern is torchtune's ``recipe_interfaces.py``: the contract is a typed class that a type
checker and ``isinstance`` (``runtime_checkable``) both read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypeGuard, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

# The metrics every scenario of a kind yields, whatever the protocol: what
# :func:`obliviate.evaluate.audit.measure` returns for a classifier (RA, FA, TA, the loss MIA)
# and what :func:`obliviate.llm.evaluate.evaluate_lm` returns for a language model.
CLASSIFIER_METRICS = ("RA", "FA", "TA", "MIA")
LM_METRICS = ("forget_quality", "model_utility")  # forget_quality: given the retain-only model


@runtime_checkable
class ClassifierScenario(Protocol):
    """Tensors split once, a forget set given by indices, a model and its recipe.

    ``task`` is "classification", "regression" or "anomaly". Reference models are trained by
    the bench (``train_*_timed`` return (model, seconds)) and cached under ``fingerprint``.
    """

    name: str
    task: str
    forget_spec: str
    forget_idx: np.ndarray
    retain_idx: np.ndarray
    recipe: Any
    method_defaults: dict[str, dict[str, Any]]
    model_name: str
    device: str
    splits: Any  # obliviate.data.scenario.Splits

    @property
    def num_classes(self) -> int: ...
    @property
    def x_forget(self) -> torch.Tensor: ...
    @property
    def y_forget(self) -> torch.Tensor: ...
    @property
    def x_retain(self) -> torch.Tensor: ...
    @property
    def y_retain(self) -> torch.Tensor: ...

    def forget_loader(self, batch_size: int | None = None, *, shuffle: bool = True,
                      seed: int = 0) -> DataLoader: ...
    def retain_loader(self, batch_size: int | None = None, *, shuffle: bool = True,
                      seed: int = 0) -> DataLoader: ...
    def test_loader(self, batch_size: int = 512) -> DataLoader: ...
    def val_loader(self, batch_size: int = 512) -> DataLoader: ...
    def new_model(self, seed: int = 0) -> nn.Module: ...
    def train_original_timed(self, seed: int = 0) -> tuple[nn.Module, float]: ...
    def train_retrained_timed(self, seed: int = 0) -> tuple[nn.Module, float]: ...
    def fingerprint(self, kind: str, seed: int) -> str: ...
    def describe(self) -> dict[str, Any]: ...
    def tuning_mismatch(self) -> list[str]: ...


@runtime_checkable
class LanguageModelScenario(Protocol):
    """Question-answer pairs of authors, some forgotten, and a causal LM fine-tuned on them.

    ``task`` is "lm". The scenario caches its own models (pretrained, original, retain-only)
    under ``cache``.
    """

    name: str
    task: str
    forget_spec: str
    options: Any  # lora_rank among them
    recipe: Any
    method_defaults: dict[str, dict[str, Any]]
    device: str

    def forget_set(self) -> Any: ...
    def retain_set(self) -> Any: ...
    def forget_idk_set(self) -> Any: ...
    def forget_alt_set(self, model: nn.Module | None = None) -> Any: ...
    def new_model(self, seed: int = 0) -> nn.Module: ...
    def train_original_timed(self, seed: int = 0, cache: Path | None = None
                             ) -> tuple[nn.Module, float]: ...
    def train_retrained_timed(self, seed: int = 0, cache: Path | None = None
                              ) -> tuple[nn.Module, float]: ...
    def fingerprint(self, kind: str, seed: int) -> str: ...
    def describe(self) -> dict[str, Any]: ...


Scenario = ClassifierScenario | LanguageModelScenario


def is_language_model(sc: Scenario) -> TypeGuard[LanguageModelScenario]:
    """True for a language-model scenario (its ``task`` is "lm")."""
    return sc.task == "lm"


def required_metrics(sc: Scenario) -> tuple[str, ...]:
    """The metrics every protocol can count on for ``sc``'s kind."""
    return LM_METRICS if is_language_model(sc) else CLASSIFIER_METRICS


def tuning_mismatch(sc: Scenario) -> list[str]:
    """How ``sc``'s model and recipe differ from those its tuned defaults were tuned with
    (classifiers; a language-model scenario's defaults carry no such record)."""
    return [] if is_language_model(sc) else sc.tuning_mismatch()
