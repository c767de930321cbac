"""Statistics of a trained ensemble, and the result of a training run.

mu_L, sigma_L, eps_L with bootstrap errors over members, the two parts of sigma_L^2 from the members'
per-test-point losses, and the result of a training run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ntkuq._src.checks import check_int
from ntkuq.errors import InputTypeError
from ntkuq.finite.stopping import StopRecord


@dataclass(frozen=True)
class EnsembleStats:
    """Sample mu_L, sigma_L (ddof = 1), eps_L = sigma_L / mu_L over members and their bootstrap standard errors.

    The fields are named as in `lossstats.LossStats` (mu, sigma, eps) and the result rows (`results.COLUMNS`).
    """

    mu: float
    sigma: float
    eps: float
    mu_err: float
    sigma_err: float
    eps_err: float
    n_members: int


def _mu_sigma_eps(samples: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation (ddof = 1) and their ratio along the last axis."""
    mu = samples.mean(axis=-1)
    sigma = samples.std(axis=-1, ddof=1)
    return mu, sigma, sigma / mu


def bootstrap_stats(losses, n_boot: int = 1000, seed: int = 0) -> EnsembleStats:
    """mu_L, sigma_L, eps_L of member losses with standard errors from n_boot seeded resamplings of members.

    Args:
        losses: the members' losses, a 1-D array of at least 2 finite real numbers (M >= 2).
        n_boot: bootstrap resamplings of members for the errors (>= 2, default 1000).
        seed: the resampling's seed (default 0).

    Returns:
        EnsembleStats: the sample mu_L, sigma_L (ddof = 1), eps_L, their bootstrap standard errors and M.

    Raises:
        InputTypeError: losses are not real numbers.
        ValueError: losses are not 1-D with at least 2 members, or not finite.
    """
    try:
        arr = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"losses: expected a 1-D array of member losses (real numbers), got {losses!r}"[:200]) \
            from None
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"losses: expected a 1-D array of at least 2 member losses (M >= 2), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("losses: expected finite values, found NaN or infinity (diverged members?)")
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    boot = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))]
    mu, sigma, eps = _mu_sigma_eps(arr)
    bmu, bsigma, beps = _mu_sigma_eps(boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        return EnsembleStats(float(mu), float(sigma), float(eps), float(bmu.std(ddof=1)),
                             float(bsigma.std(ddof=1)), float(np.nanstd(beps, ddof=1)), int(arr.size))


@dataclass(frozen=True)
class LossSplit:
    """The two parts of sigma_L^2 of a trained ensemble, with bootstrap standard errors over members.

    var_diag = sum_d Var(l_d) / N_T^2 (each test point with itself), var_offdiag = sigma_L^2 - var_diag
    (pairs of points), with l_d a member's loss on test point d and variances over members (ddof = 1).
    """

    var_diag: float
    var_offdiag: float
    var_diag_err: float
    var_offdiag_err: float
    n_test: int


def _split(point_losses: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(var_diag, var_offdiag) over axis -2 (members) of (..., M, N_T) per-point losses."""
    n_t = point_losses.shape[-1]
    total = point_losses.mean(axis=-1).var(axis=-1, ddof=1)
    diag = point_losses.var(axis=-2, ddof=1).sum(axis=-1) / n_t**2
    return diag, total - diag


def loss_split(point_losses, n_boot: int = 400, seed: int = 0) -> LossSplit:
    """The split of sigma_L^2 from the members' per-test-point losses.

    Args:
        point_losses: (M, N_T) array, member m's loss on test point d (mean over outputs); M >= 2, N_T >= 2.
        n_boot: bootstrap resamplings of members for the errors (>= 2).
        seed: the resampling's seed.

    Returns:
        LossSplit; var_diag + var_offdiag is the sample variance (ddof = 1) of the members' test losses.

    Raises:
        InputTypeError: point_losses are not real numbers.
        ValueError: wrong shape or non-finite losses.
    """
    try:
        arr = np.asarray(point_losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"point_losses: expected an (M, N_T) array of real numbers, got "
                             f"{type(point_losses).__name__}") from None
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"point_losses: expected an (M, N_T) array with M >= 2 members and N_T >= 2 test points, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("point_losses: expected finite values, found NaN or infinity (diverged members?)")
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    diag, off = _split(arr)
    bd, bo = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):  # one resample at a time: M x N_T numbers, never n_boot of them
        bd[b], bo[b] = _split(arr[rng.integers(0, arr.shape[0], arr.shape[0])])
    return LossSplit(float(diag), float(off), float(bd.std(ddof=1)), float(bo.std(ddof=1)), int(arr.shape[1]))


@dataclass(frozen=True)
class EnsembleResult:
    """Per-member final losses, loss histories at `steps`, and optionally the final test outputs (M, N_T, k).

    train losses use L_train = 1/(2 N_D) sum (z - y)^2 (the training objective); test losses
    L = 1/(N_T k) sum (z - y)^2.  A chunk stopped by `tol` keeps its last values at later steps;
    `stopped_at` holds each member's last trained step.  `alive_history` (M, len(steps), depth - 1) is
    the fraction of each hidden layer's units alive on the training inputs (network.alive_fraction).
    `point_losses` (M, N_T): each member's final loss on each test point (mean over the k outputs).
    `stopping`: what a stop rule did (`ntkuq.finite.stopping.StopRecord`), None when none was given.
    `seconds`: the training's wall-clock seconds, the earlier sittings of a resumed run included
    (`ntkuq.finite.checkpoint`), None when not measured.
    """

    test_losses: np.ndarray
    train_losses: np.ndarray
    steps: np.ndarray
    train_history: np.ndarray
    test_history: np.ndarray
    stopped_at: np.ndarray
    eta: float
    outputs: Optional[np.ndarray] = None
    alive_history: Optional[np.ndarray] = None
    point_losses: Optional[np.ndarray] = None
    stopping: Optional[StopRecord] = None
    seconds: Optional[float] = None

    def split(self, n_boot: int = 400, seed: int = 0) -> LossSplit:
        """The two parts of sigma_L^2 from the final per-test-point losses (`loss_split`).

        Args:
            n_boot: bootstrap resamplings of members for the errors (>= 2, default 400).
            seed: the resampling's seed (default 0).

        Returns:
            LossSplit of `point_losses`.

        Raises:
            ValueError: this result has no per-test-point losses.
        """
        if self.point_losses is None:
            raise ValueError("point_losses: this result has no per-test-point losses")
        return loss_split(self.point_losses, n_boot=n_boot, seed=seed)

    @property
    def n_members(self) -> int:
        """Number of members M."""
        return int(self.test_losses.shape[0])

    @property
    def recorded(self) -> int:
        """How many recorded steps the training reached.

        All of `steps` without a stop rule; with one, those up to and including the step it stopped at (the
        histories hold copies of the last values after it).
        """
        if self.stopping is None:
            return int(self.steps.size)
        return int(np.searchsorted(self.steps, self.stopping.steps)) + 1

    def stats(self, n_boot: int = 1000, seed: int = 0) -> EnsembleStats:
        """mu_L, sigma_L, eps_L of the final test losses with bootstrap standard errors (needs M >= 2).

        Args:
            n_boot: bootstrap resamplings of members for the errors (>= 2, default 1000).
            seed: the resampling's seed (default 0).

        Returns:
            EnsembleStats of `test_losses` (`bootstrap_stats`).
        """
        return bootstrap_stats(self.test_losses, n_boot=n_boot, seed=seed)


__all__ = ["EnsembleResult", "EnsembleStats", "LossSplit", "bootstrap_stats", "loss_split"]
