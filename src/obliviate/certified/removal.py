"""Certified removal from a logistic regression: train once, remove by Newton steps, keep score.

Guo, Goldstein, Hannun and van der Maaten (ICML 2020) train an L2-regularised linear model with
a random linear term b.w in the objective. Removing points by one Newton step leaves a small
gradient residual; while the accumulated residual stays under sigma * epsilon / c, the noise b
hides it and the model is (epsilon, delta)-indistinguishable from one retrained without the
points. Past that budget the model is retrained from scratch, with fresh noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from obliviate.certified import objective as obj
from obliviate.errors import ConfigError, DataError


@dataclass(frozen=True)
class Certificate:
    """Where a certified model stands: the budget, what removals used of it, retrains so far."""

    epsilon: float
    delta: float
    sigma: float
    budget: float
    used: float = 0.0
    removed: int = 0
    retrains: int = 0
    steps: tuple[float, ...] = field(default=())  # the bound of each Newton step since training

    @property
    def certified(self) -> bool:
        return self.used <= self.budget

    def to_dict(self) -> dict:
        return {"epsilon": self.epsilon, "delta": self.delta, "sigma": self.sigma,
                "budget": self.budget, "used": self.used, "removed": self.removed,
                "retrains": self.retrains, "certified": self.certified}


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (the theory assumes |x| <= 1), as float64."""
    x = x.reshape(len(x), -1).double()
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


class CertifiedLogisticRegression:
    """One-vs-rest logistic regression with objective perturbation and certified removal.

    Args:
        lam: L2 strength lambda (the objective holds lam * n / 2 * |w|^2); paper: 1e-3 on MNIST.
        sigma: standard deviation of the objective's noise b; paper: 10.
        epsilon, delta: the removal guarantee to keep.
        generator: source of the noise b (and of the fresh noise of any retrain).

    Example:
        >>> clf = CertifiedLogisticRegression(generator=torch.Generator().manual_seed(0))
        >>> clf.fit(x_train, y_train, num_classes=10)
        >>> clf.remove([3, 17])           # one Newton step; clf.certificate says what it cost
    """

    def __init__(self, lam: float = 1e-3, sigma: float = 10.0, epsilon: float = 1.0,
                 delta: float = 1e-4, *, generator: torch.Generator | None = None):
        for name, value in (("lam", lam), ("sigma", sigma), ("epsilon", epsilon)):
            if not value > 0:
                raise ConfigError(f"The '{name}' parameter of certified removal must be a float "
                                  f"> 0. Got {value!r} instead.")
        if not 0 < delta < 1:
            raise ConfigError(f"The 'delta' parameter of certified removal must be in (0, 1). "
                              f"Got {delta!r} instead.")
        self.lam, self.sigma = lam, sigma
        self.generator = generator or torch.Generator().manual_seed(0)
        self.certificate = Certificate(epsilon, delta, sigma, obj.budget(sigma, epsilon, delta))

    # ------------------------------------------------------------------ training
    def fit(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None
            ) -> CertifiedLogisticRegression:
        """Minimise the perturbed objective exactly on (x, y); rows are scaled to unit norm."""
        self.x = unit_rows(x)
        self.k = num_classes or int(y.max()) + 1
        # two classes: one head whose sign is the class; more: one head per class (one-vs-rest)
        self.s = obj.signs(y, self.k)[:, 1:] if self.k == 2 else obj.signs(y, self.k)
        self.kept = np.ones(len(y), dtype=bool)
        self.gram = self.x.T @ self.x  # X'^T X' of the kept rows, downdated on each removal
        self._train()
        return self

    def _train(self) -> None:
        d = self.x.shape[1]
        self.b = self.sigma * torch.randn(d, self.s.shape[1], generator=self.generator,
                                          dtype=torch.float64)
        self.w = obj.minimise(self.x[self.kept], self.s[self.kept], self.lam, self.b)

    # ------------------------------------------------------------------ saving
    def state(self) -> dict[str, torch.Tensor]:
        """Everything a trained model needs to remove rows later, as tensors (safetensors)."""
        c = self.certificate
        return {"x": self.x, "s": self.s, "kept": torch.from_numpy(self.kept.copy()),
                "gram": self.gram, "b": self.b, "w": self.w,
                "numbers": torch.tensor([self.lam, self.sigma, c.epsilon, c.delta, c.used,
                                         c.removed, c.retrains, self.k], dtype=torch.float64)}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], *,
                   generator: torch.Generator | None = None) -> CertifiedLogisticRegression:
        """The model :meth:`state` saved; ``generator`` draws the noise of any later retrain."""
        lam, sigma, eps, delta, used, removed, retrains, k = state["numbers"].tolist()
        clf = cls(lam, sigma, eps, delta, generator=generator)
        clf.x, clf.s, clf.gram = state["x"], state["s"], state["gram"].clone()
        clf.b, clf.w, clf.k = state["b"], state["w"].clone(), int(k)
        clf.kept = state["kept"].numpy().astype(bool).copy()
        clf.certificate = replace(clf.certificate, used=used, removed=int(removed),
                                  retrains=int(retrains))
        return clf

    # ------------------------------------------------------------------ removal
    def remove(self, ids, *, batch_size: int | None = None) -> Certificate:
        """Remove training rows ``ids`` by Newton steps of ``batch_size`` points (None: one step).

        A step whose residual bound would take the total past the budget is not applied; the
        model is retrained from scratch on the remaining rows instead and the budget restarts.

        Raises:
            DataError: an id out of range or already removed.
        """
        ids = np.asarray(ids, dtype=np.int64).ravel()
        bad = ids[(ids < 0) | (ids >= len(self.kept))]
        if bad.size:
            raise DataError(f"Row {int(bad[0])} is out of range: the model was trained on "
                            f"{len(self.kept)} rows.")
        gone = ids[~self.kept[ids]]
        if gone.size:
            raise DataError(f"Row {int(gone[0])} was already removed; remove each row once.")
        size = batch_size or len(ids)
        for start in range(0, len(ids), size):
            self._step(ids[start:start + size])
        return self.certificate

    def _step(self, batch: np.ndarray) -> None:
        cert = self.certificate
        self.kept[batch] = False
        self.gram = self.gram - self.x[batch].T @ self.x[batch]
        x_kept = self.x[self.kept]
        w_minus, update = obj.newton_removal(self.w, self.x[batch], self.s[batch], x_kept,
                                             self.lam)
        spectral = float(torch.linalg.eigvalsh(self.gram)[-1].clamp_min(0).sqrt())
        bound = obj.residual_bound(update, x_kept, spectral)
        if cert.used + bound <= cert.budget:
            self.w = w_minus
            self.certificate = replace(cert, used=cert.used + bound,
                                       removed=cert.removed + len(batch),
                                       steps=(*cert.steps, bound))
        else:
            self._train()
            self.certificate = replace(cert, used=0.0, removed=cert.removed + len(batch),
                                       retrains=cert.retrains + 1, steps=())

    # ------------------------------------------------------------------ reading
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores for unit-scaled rows of ``x`` (n x K): w_k.x one-vs-rest; with two
        classes (-z/2, z/2), whose softmax is the logistic model's (1 - p, p)."""
        z = unit_rows(x) @ self.w
        return torch.cat([-z / 2, z / 2], dim=1) if self.k == 2 else z

    @property
    def weight(self) -> torch.Tensor:
        """The (K x d) weight of a linear layer that gives :meth:`logits` on unit-norm rows."""
        return torch.cat([-self.w / 2, self.w / 2], dim=1).T if self.k == 2 else self.w.T

    def gradient_residual(self) -> float:
        """|grad L(w; kept rows)|: zero at the exact minimiser, what the bound bounds."""
        return float(obj.gradient(self.w, self.x[self.kept], self.s[self.kept], self.lam,
                                  self.b).norm())

    def exact_minimiser(self) -> torch.Tensor:
        """The minimiser of the same objective (same noise b) on the kept rows, for checks."""
        return obj.minimise(self.x[self.kept], self.s[self.kept], self.lam, self.b)

