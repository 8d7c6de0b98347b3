"""The perturbed L2-regularised logistic objective of Guo et al. (2020), one-vs-rest, in float64.

For K one-vs-rest heads stacked as the columns of W (d x K), labels s in {-1, +1} (n x K) and
unit-norm rows x_i, the objective of head k on a data set of n points is

    L_k(w) = sum_i log(1 + exp(-s_ik w.x_i)) + (lam n / 2) |w|^2 + b_k . w

with b ~ N(0, sigma^2 I) drawn once at training. Plain functions; every one is vectorised over
the K heads.
"""

from __future__ import annotations

import math

import torch

GAMMA = 0.25  # the paper's Lipschitz constant of the logistic loss's second derivative


def signs(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-vs-rest targets: +1 for the example's class, -1 elsewhere (n x K, float64)."""
    s = -torch.ones(len(y), num_classes, dtype=torch.float64)
    s[torch.arange(len(y)), y.long()] = 1.0
    return s


def objective(w: torch.Tensor, x: torch.Tensor, s: torch.Tensor, lam: float,
              b: torch.Tensor) -> torch.Tensor:
    """L_k(w_k) for every head k (a K-vector)."""
    margins = s * (x @ w)
    n = len(x)
    return (torch.nn.functional.softplus(-margins).sum(0) + lam * n / 2 * (w * w).sum(0)
            + (b * w).sum(0))


def loss_grad(w: torch.Tensor, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Gradient of sum_i log(1 + exp(-s_ik w.x_i)) for every head (d x K)."""
    return x.T @ (-s * torch.sigmoid(-s * (x @ w)))


def gradient(w: torch.Tensor, x: torch.Tensor, s: torch.Tensor, lam: float,
             b: torch.Tensor) -> torch.Tensor:
    """Gradient of the whole objective L_k for every head (d x K)."""
    return loss_grad(w, x, s) + lam * len(x) * w + b


def hessian(w: torch.Tensor, x: torch.Tensor, lam: float) -> torch.Tensor:
    """Hessian of L_k for every head (K x d x d): X' diag(p(1-p)) X + lam n I."""
    p = torch.sigmoid(x @ w)
    curvature = p * (1 - p)  # (n, K); symmetric in the sign of the target
    h = torch.einsum("nk,nd,ne->kde", curvature, x, x)
    return h + lam * len(x) * torch.eye(x.shape[1], dtype=x.dtype)


def minimise(x: torch.Tensor, s: torch.Tensor, lam: float, b: torch.Tensor,
             *, tol: float = 1e-13, max_iter: int = 100) -> torch.Tensor:
    """The exact minimiser of every L_k by damped Newton steps (strongly convex: one optimum)."""
    w = torch.zeros(x.shape[1], s.shape[1], dtype=torch.float64)
    for _ in range(max_iter):
        g = gradient(w, x, s, lam, b)
        if g.norm() <= tol * max(1.0, len(x)):
            break
        step = torch.linalg.solve(hessian(w, x, lam), g.T.unsqueeze(-1)).squeeze(-1).T
        t = torch.ones(s.shape[1], dtype=torch.float64)
        # backtracking, head by head; the slack ignores rounding near the optimum
        base = objective(w, x, s, lam, b)
        base = base + 1e-12 * base.abs().clamp_min(1.0)
        for _ in range(30):
            worse = objective(w - t * step, x, s, lam, b) > base
            if not worse.any():
                break
            t = torch.where(worse, t / 2, t)
        w = w - t * step
    return w


def newton_removal(w: torch.Tensor, x_removed: torch.Tensor, s_removed: torch.Tensor,
                   x_kept: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One Newton step that removes a batch of points: returns (w_minus, the update H^-1 Delta).

    Delta is the removed points' share of the objective's gradient (their loss gradient plus
    lam m w); H is the Hessian on the kept points. ``w`` must be the exact or certified minimiser
    of the objective on the kept and removed points together.
    """
    delta = loss_grad(w, x_removed, s_removed) + lam * len(x_removed) * w
    update = torch.linalg.solve(hessian(w, x_kept, lam), delta.T.unsqueeze(-1)).squeeze(-1).T
    return w + update, update


def residual_bound(update: torch.Tensor, x_kept: torch.Tensor, spectral: float) -> float:
    """The data-dependent bound on the gradient residual |grad L(w_minus; D')| of one step.

    Per head: gamma |X'|_2 |u_k| |X' u_k| (the paper's Corollary 1), with u_k = H_k^-1 Delta_k;
    the K heads form one objective in R^(dK), whose residual norm is the root of the sum of
    squares of the heads'. ``spectral`` is |X'|_2, the root of the largest eigenvalue of X'^T X'.
    """
    per_head = GAMMA * spectral * update.norm(dim=0) * (x_kept @ update).norm(dim=0)
    return float(per_head.pow(2).sum().sqrt())


def worst_case_bound(n_kept: int, lam: float) -> float:
    """The paper's data-independent bound for one removal: 4 gamma C^2 / (lam^2 (n - 1)), C = 1."""
    return 4 * GAMMA / (lam**2 * n_kept)


def budget(sigma: float, epsilon: float, delta: float) -> float:
    """Largest total gradient residual that keeps the model (epsilon, delta)-certified."""
    return sigma * epsilon / math.sqrt(2 * math.log(1.5 / delta))
