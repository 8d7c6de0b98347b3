"""DP-SGD training (Abadi et al. 2016) through Opacus, as an option of the training recipe.

:class:`DPRecipe` says how private a model must be; :func:`fit_private` trains it with the
ordinary :class:`~obliviate.train.Recipe` (optimizer, lr, epochs, batch size, schedule) and the
one loop :func:`~obliviate.train.run_loop`: Opacus's ``make_private_with_epsilon`` supplies the
per-example-gradient model, the clipping and noising optimizer and the Poisson-sampling loader,
and its accountant picks the noise multiplier that spends ``epsilon`` over the recipe's epochs
(what ``make_private_with_epsilon`` does, with the search memoised).
"""

from __future__ import annotations

import copy
import functools
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from obliviate.config import param
from obliviate.errors import ConfigError, first_sentence
from obliviate.train import (
    Recipe,
    cross_entropy_loss,
    make_optimizer,
    make_scheduler,
    run_loop,
    tensor_loader,
)


@dataclass(frozen=True)
class DPRecipe:
    """The privacy target of DP-SGD training; Opacus's defaults for clipping and accounting."""

    epsilon: float = param(8.0, gt=0, help="target epsilon of the whole training")
    delta: float = param(1e-5, gt=0, lt=1, help="target delta (below 1/n)")
    max_grad_norm: float = param(1.0, gt=0, help="per-example gradient clipping norm C")
    accountant: str = param("rdp", choices=("rdp", "prv", "gdp"), help="Opacus accountant")


@dataclass(frozen=True)
class PrivateResult:
    """A DP-trained model and what its training spent."""

    model: nn.Module
    epsilon: float
    noise_multiplier: float
    seconds: float


def _opacus():
    try:
        from opacus import PrivacyEngine
        from opacus.validators import ModuleValidator
    except ImportError:
        raise ConfigError("DP-SGD needs opacus; install the extra: pip install 'obliviate[dp]'.") \
            from None
    return PrivacyEngine, ModuleValidator


@functools.lru_cache(maxsize=64)
def noise_multiplier(epsilon: float, delta: float, sample_rate: float, epochs: int,
                     accountant: str) -> float:
    """The noise multiplier that spends ``epsilon`` over ``epochs`` (Opacus's search, memoised:
    the search costs seconds and a protocol trains many models under the same target)."""
    from opacus.accountants.utils import get_noise_multiplier

    return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta,
                                      sample_rate=sample_rate, epochs=epochs,
                                      accountant=accountant))


def fit_private(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe,
                dp: DPRecipe, seed: int, *, owner: str = "dp-sgd") -> PrivateResult:
    """Train ``model``'s architecture with DP-SGD on (x, y); ``model`` itself is not modified.

    The seed fixes the Poisson sampling and the noise (Opacus's non-secure mode), so the same
    call gives the same weights on CPU.

    Raises:
        ConfigError: opacus is missing, or the model has layers DP-SGD cannot train (e.g.
            BatchNorm, which mixes examples).
    """
    PrivacyEngine, ModuleValidator = _opacus()
    template, model = copy.deepcopy(model), copy.deepcopy(model).train()
    problems = ModuleValidator.validate(model, strict=False)
    if problems:
        raise ConfigError(f"{owner}: the model cannot be trained with DP-SGD: "
                          f"{first_sentence(str(problems[0])).rstrip('.')}. "
                          f"Replace BatchNorm by GroupNorm (opacus ModuleValidator.fix).")
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        optimizer = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr,
                                   recipe.momentum, recipe.weight_decay)
        loader = tensor_loader(x, y, recipe.batch_size, shuffle=True, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the non-secure RNG warning: seeds are on purpose
            engine = PrivacyEngine(accountant=dp.accountant)
            sigma = noise_multiplier(dp.epsilon, dp.delta, 1 / len(loader), recipe.epochs,
                                     dp.accountant)
            try:
                private, dp_optimizer, dp_loader = engine.make_private(
                    module=model, optimizer=optimizer, data_loader=loader,
                    noise_multiplier=sigma, max_grad_norm=dp.max_grad_norm,
                    noise_generator=torch.Generator().manual_seed(seed + 1))
            except (NotImplementedError, ValueError, TypeError) as exc:  # opacus's refusals
                raise ConfigError(f"{owner}: opacus cannot train this model with DP-SGD: "
                                  f"{first_sentence(str(exc)).rstrip('.')}. Use layers opacus "
                                  f"supports (opacus ModuleValidator.fix), or another method."
                                  ) from None
            scheduler = make_scheduler(dp_optimizer, recipe.schedule, recipe.epochs)
            run_loop(private, lambda epoch: dp_loader, cross_entropy_loss, dp_optimizer,
                     recipe.epochs, scheduler=scheduler, owner=owner)
            spent = float(engine.get_epsilon(dp.delta))
    trained = template
    trained.load_state_dict(private._module.state_dict())
    return PrivateResult(trained.eval(), spent, float(dp_optimizer.noise_multiplier),
                         time.perf_counter() - start)


def train_private(scenario, dp: DPRecipe, seed: int = 0) -> PrivateResult:
    """A scenario's original trained with DP-SGD on its full training set under its recipe."""
    s = scenario.splits
    return fit_private(scenario.new_model(seed), s.x_train, s.y_train, scenario.recipe, dp, seed,
                       owner="dp-original")
