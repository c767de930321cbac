"""Converged by design: how many optimizer steps bring mu_L and sigma_L within a tolerance of t = infinity.

The infinite-width engine gives the exact ensemble after T steps of gradient descent, heavy-ball or
Nesterov momentum (ntkuq.infinite.gains), so the number of steps a finite-width ensemble needs can be read off
before training it: the smallest T such that, from T on,

    abs(mu_L(T) / mu_L(inf) - 1) <= tol   and   abs(sigma_L(T) / sigma_L(inf) - 1) <= tol.

"From T on" is checked on a grid: doubling T until the deviation has stayed below tol / 4 at two
successive doublings, then a fine grid (ratio `ratio`) between the last failing doubling T_f and 2 T_f.
The returned T is the first fine-grid point after the last failure.  Momentum's underdamped modes
oscillate, but they decay by sqrt(beta) per step, much faster than the grid's resolution matters;
the slowest modes are overdamped and approach their limit monotonically.

Each evaluation works in the eigenbasis of Theta, computed once: with B = U^T Theta_Xs and the gain g
of T steps, V = U diag(g) B, and the statistics follow from the factored covariance in blocks
(ntkuq.infinite), O(N_D^2 N_T + N_D N_T^2) per T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import jax.numpy as jnp
import numpy as np

from ntkuq._src.budget import K_SS_LIMIT, OVERHEAD_BYTES, WORD, require_infinite
from ntkuq._src.checks import check_fraction, check_inputs, check_instance, check_int, check_positive
from ntkuq.infinite.gains import check_optimizer, gain, stable_eta
from ntkuq.infinite.kernels import kernels
from ntkuq.infinite.lossstats import LossStats, loss_stats
from ntkuq.infinite.predict import EnsemblePrediction, TrainTestKernels, ntk_prediction


@dataclass(frozen=True)
class Convergence:
    """The steps T to converge and the deviations that decided it.

    Attributes:
        steps: the smallest grid T from which mu_L and sigma_L stay within tol of t = infinity.
        converged: False if even max_steps did not get there (then steps = max_steps).
        tol: the relative tolerance on mu_L and sigma_L.
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov'.
        momentum: the momentum beta used (0 for 'gd').
        eta: the learning rate.
        grid: every T evaluated (sorted).
        mu: mu_L(T) at every T of the grid.
        sigma: sigma_L(T) at every T of the grid.
        limit: the t = infinity statistics.
    """

    steps: int
    converged: bool
    tol: float
    optimizer: str
    momentum: float
    eta: float
    grid: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    limit: LossStats

    @property
    def deviation(self) -> np.ndarray:
        """max(abs(mu(T)/mu(inf) - 1), abs(sigma(T)/sigma(inf) - 1)) on the grid."""
        return np.maximum(np.abs(self.mu / self.limit.mu - 1), np.abs(self.sigma / self.limit.sigma - 1))


class _Evaluator:
    """mu_L(T), sigma_L(T) for many T from one eigendecomposition of Theta."""

    def __init__(self, kern: TrainTestKernels, y_train, y_test, eta: float, optimizer: str,
                 momentum: Optional[float], diag_reg: float, block_size: int, warmup: int = 0) -> None:
        self.kern, self.y_train, self.y_test = kern, y_train, y_test
        self.eta, self.optimizer, self.momentum, self.block_size = eta, optimizer, momentum, block_size
        self.warmup, self.diag_reg = warmup, diag_reg
        lam, U = jnp.linalg.eigh(kern.Th_XX + diag_reg * jnp.eye(kern.n_train))
        self.lam, self.U = np.asarray(lam), U
        self.B = U.T @ kern.Th_Xs
        self.K_ss = kernels(kern.spec, kern.x_test).nngp if kern.x_test.shape[0] <= K_SS_LIMIT else None
        self.cache: dict = {}

    def stats(self, steps: int) -> LossStats:
        """The statistics after `steps` steps (memoized)."""
        if steps not in self.cache:
            g = gain(self.lam, self.eta, self.kern.n_train, steps=steps, optimizer=self.optimizer,
                     momentum=self.momentum, warmup=self.warmup)
            V = self.U @ (jnp.asarray(g)[:, None] * self.B)
            W = self.kern.K_Xs - self.kern.K_XX @ V
            pred = EnsemblePrediction(V.T @ self.y_train, V, self.kern.K_Xs, W, self.kern.spec, self.kern.x_test,
                                      self.K_ss)
            self.cache[steps] = loss_stats(pred, self.y_test, block_size=self.block_size)
        return self.cache[steps]

    def deviation(self, steps: int, limit: LossStats) -> float:
        """Max relative deviation of mu_L and sigma_L from the limit after `steps` steps."""
        s = self.stats(steps)
        return max(abs(s.mu / limit.mu - 1), abs(s.sigma / limit.sigma - 1))


def _checked_evaluator(name: str, kern, y_train, y_test, eta, optimizer, momentum, diag_reg, warmup,
                       block_size) -> Tuple[_Evaluator, Optional[float]]:
    """The arguments shared by `converged_steps` and `deviation_curve`, checked, and their evaluator.

    Refuses before the eigendecomposition when it would not fit in memory, and after it when eta is at or above
    the optimizer's stable maximum. Returns the evaluator (holding the checked arguments) and beta.
    """
    check_instance(kern, "kern", TrainTestKernels, "TrainTestKernels (train_test_kernels)")
    beta = check_optimizer(optimizer, momentum)
    mom = None if optimizer == "gd" else beta
    y_train = check_inputs(y_train, "y_train", n_rows=kern.n_train)
    y_test = check_inputs(y_test, "y_test", n_rows=kern.x_test.shape[0])
    eta = check_positive(eta, "eta")
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    warmup = check_int(warmup, "warmup", minimum=0)
    block_size = check_int(block_size, "block_size")
    require_infinite(name, kern.n_train, kern.x_test.shape[0],  # before the eigendecomposition
                     lambda n, t: convergence_bytes(n, t, block_size))
    ev = _Evaluator(kern, y_train, y_test, eta, optimizer, mom, diag_reg, block_size, warmup)
    eta_max = stable_eta(float(ev.lam[-1]), kern.n_train, optimizer, mom)
    if eta >= eta_max:
        raise ValueError(f"eta: expected a learning rate below the stable maximum {eta_max:.4g} of {optimizer!r}, "
                         f"got {eta:g}")
    return ev, beta


def converged_steps(kern: TrainTestKernels, y_train, y_test, *, eta: float, optimizer: str = "momentum",
                    momentum: Optional[float] = None, tol: float = 0.01, max_steps: int = 10**7,
                    ratio: float = 1.05, diag_reg: float = 0.0, block_size: int = 1024,
                    warmup: int = 0) -> Convergence:
    """The number of full-batch steps after which mu_L and sigma_L stay within `tol` of t = infinity.

    Args:
        kern: train-train and train-test kernels of the training set and test set.
        y_train: training targets, N_D x k.
        y_test: test targets, N_T x k.
        eta: the learning rate; must be below the optimizer's stable maximum.
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov'.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.
        tol: relative tolerance on mu_L and sigma_L (default 1 %).
        max_steps: give up (converged=False) beyond this many steps.
        ratio: the fine grid's ratio between successive T (> 1).
        diag_reg: added to the diagonal of Theta (as in ntk_prediction).
        block_size: test rows per block of the covariance.
        warmup: W >= 0 steps of linear warmup before the full rate (as in `train_ensemble`).

    Returns:
        Convergence: the steps, whether they converged, and the evaluated grid with its statistics.

    Raises:
        ValueError: ratio <= 1, or eta at or above the optimizer's stable maximum.
    """
    tol = check_fraction(tol, "tol")
    max_steps = check_int(max_steps, "max_steps")
    ratio = check_positive(ratio, "ratio")
    if ratio <= 1.0:
        raise ValueError(f"ratio: expected a grid ratio > 1, got {ratio!r}")
    ev, beta = _checked_evaluator("converged_steps", kern, y_train, y_test, eta, optimizer, momentum, diag_reg,
                                  warmup, block_size)
    limit = loss_stats(ntk_prediction(kern, ev.y_train, diag_reg=ev.diag_reg), ev.y_test, block_size=ev.block_size)
    last_fail, quiet, t = 0, 0, 1
    while True:
        dev = ev.deviation(t, limit)
        if dev > tol:
            last_fail, quiet = t, 0
        else:
            quiet = quiet + 1 if dev <= tol / 4 else 0
        if quiet >= 2 or t >= max_steps:
            break
        t = min(2 * t, max_steps)
    converged = last_fail < t
    steps = 1
    if last_fail and converged:
        top = min(2 * last_fail, max_steps)
        fine = np.unique(np.round(last_fail * ratio ** np.arange(1, np.log(2) / np.log(ratio) + 1)).astype(np.int64))
        steps = top
        for T in fine[(fine > last_fail) & (fine < top)][::-1]:  # walk down from the passing 2 T_f
            if ev.deviation(int(T), limit) > tol:
                break
            steps = int(T)
    grid = np.array(sorted(ev.cache))
    return Convergence(steps if converged else max_steps, converged, tol, optimizer, beta, float(ev.eta), grid,
                       np.array([ev.cache[T].mu for T in grid]), np.array([ev.cache[T].sigma for T in grid]), limit)


def deviation_curve(kern: TrainTestKernels, y_train, y_test, steps, *, eta: float, optimizer: str = "momentum",
                    momentum: Optional[float] = None, diag_reg: float = 0.0, warmup: int = 0,
                    block_size: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
    """mu_L(T) and sigma_L(T) at each T in `steps` (for plots), from one eigendecomposition.

    The same numbers as `loss_stats(ntk_prediction(kern, y_train, steps=T, ...), y_test)` at every T, for the cost
    of one eigendecomposition of Theta plus O(N_D^2 N_T + N_D N_T^2) per T (instead of one eigendecomposition
    per T).

    Args:
        kern: train-train and train-test kernels, as in `converged_steps`.
        y_train: training targets, N_D x k.
        y_test: test targets, N_T x k.
        steps: the numbers of steps T to evaluate.
        eta: the learning rate, as in `converged_steps`.
        optimizer: 'gd', 'momentum' (heavy ball) or 'nesterov', as in `converged_steps`.
        momentum: beta for 'momentum' / 'nesterov' (None: 0.9); None for 'gd'.
        diag_reg: added to the diagonal of Theta.
        warmup: W >= 0 steps of linear warmup before the full rate (as in `train_ensemble` and `ntk_prediction`).
        block_size: test rows per block of the covariance.

    Returns:
        (mu, sigma): arrays of mu_L(T) and sigma_L(T), one per T in `steps`.

    Raises:
        ValueError: no steps given, or eta at or above the optimizer's stable maximum.
        TooLargeError: the eigendecomposition and covariance blocks would not fit in memory (`convergence_bytes`).
    """
    grid = [check_int(T, "steps", minimum=0) for T in np.asarray(steps, dtype=object).ravel()]
    if not grid:
        raise ValueError("steps: expected at least one number of steps, got none")
    ev, _ = _checked_evaluator("deviation_curve", kern, y_train, y_test, eta, optimizer, momentum, diag_reg, warmup,
                               block_size)
    out = [ev.stats(T) for T in grid]
    return np.array([s.mu for s in out]), np.array([s.sigma for s in out])


def convergence_bytes(n_train: int, n_test: int, block_size: int = 1024) -> float:
    """Bytes of `converged_steps` and `deviation_curve` beyond the kernels they are given.

    The eigendecomposition of Theta (U and workspace, 3 N^2), B = U^T Theta_Xs, V, W and K_XX V (4 N N_T), the
    t = infinity solve (N^2 + 2 N N_T), the test-test kernel (N_T^2, up to K_SS_LIMIT) and a block of covariance
    rows, plus OVERHEAD_BYTES.

    Args:
        n_train: N, the number of training points.
        n_test: N_T, the number of test points.
        block_size: test rows per block of the covariance.

    Returns:
        The estimated bytes, a float.
    """
    n, t = float(n_train), float(n_test)
    k_ss = t * t if t <= K_SS_LIMIT else 0.0
    return WORD * (4 * n * n + 6 * n * t + k_ss + 2 * min(block_size, t) * t) + OVERHEAD_BYTES


__all__ = ["Convergence", "converged_steps", "convergence_bytes", "deviation_curve"]
