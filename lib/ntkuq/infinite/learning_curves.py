"""Learning curves from the kernel's spectrum: mu_L of the t = infinity NTK ensemble predicted at any N_D.

On a pool of P points (the population, uniform measure) the NTK Theta has the eigenpairs of Theta / P:
eigenvalues lambda_i and unit eigenvectors u_i, i.e. eigenfunctions phi_i = sqrt(P) u_i orthonormal under the
pool's measure.  A function g on the pool has coefficients g_i = <phi_i, g> = u_i . g / sqrt(P), and its mean
square over the pool is sum_i g_i^2.  Kernel regression on N points drawn from the pool has, on average over
the draw (Bordelon, Canatar and Pehlevan 2020; Canatar, Bordelon and Pehlevan 2021; Simon et al. 2023), the
error over the pool

    E(N) = 1 / (1 - gamma) sum_i (kappa / (lambda_i + kappa))^2 g_i^2,
    sum_i lambda_i / (lambda_i + kappa) = N,   gamma = (1 / N) sum_i lambda_i^2 / (lambda_i + kappa)^2.

The t = infinity NTK ensemble splits mu_L into two such errors (`ntkuq.infinite.lossstats`):

- the bias part: the mean predictor is NTK regression of the targets y, so g = y (mean over the k outputs);
- the variance part: the initialization noise is NTK regression of a draw f0 of the NNGP prior, whose
  coefficient powers average to E[g_i^2] = u_i . K u_i / P (K the NNGP kernel on the pool; the theory uses
  only this diagonal of K in the NTK's eigenbasis).

mu_L = bias + variance, and the bias share f = bias / mu_L sets the test-set floor of eps_L (the plateau chapter).

Everything is float64; the pool's two kernels and an eigendecomposition are held at once (`spectrum_bytes`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ntkuq._src.budget import OVERHEAD_BYTES, WORD, require
from ntkuq._src.checks import check_inputs, check_instance
from ntkuq.infinite.kernels import kernels
from ntkuq.spec import MLPSpec


@dataclass(frozen=True)
class Spectrum:
    """The NTK's spectrum on a pool and the powers of the target and of the NNGP prior in its eigenbasis.

    Attributes:
        eigenvalues: lambda_i of Theta / P, descending, (P,) (tiny negative round-off clipped to 0).
        target_power: g_i^2 of the targets y, mean over the k outputs, (P,).
        prior_power: E[g_i^2] = u_i . K u_i / P of a draw of the NNGP prior (one output), (P,).
    """

    eigenvalues: np.ndarray
    target_power: np.ndarray
    prior_power: np.ndarray

    @property
    def n_pool(self) -> int:
        """P, the number of pool points (and of modes)."""
        return int(self.eigenvalues.size)


@dataclass(frozen=True)
class LearningCurve:
    """Predicted errors at training-set sizes n (arrays of the same shape as n).

    Attributes:
        n: the training-set sizes.
        kappa: the self-consistent ridge kappa(N).
        gamma: the overlap gamma(N).
        bias: the bias part of mu_L (the targets' regression error).
        variance: the variance part of mu_L (the prior draw's regression error).
    """

    n: np.ndarray
    kappa: np.ndarray
    gamma: np.ndarray
    bias: np.ndarray
    variance: np.ndarray

    @property
    def mu(self) -> np.ndarray:
        """mu_L = bias + variance."""
        return self.bias + self.variance

    @property
    def bias_share(self) -> np.ndarray:
        """F = bias / mu_L."""
        return self.bias / self.mu


def spectrum_bytes(n_pool: int) -> float:
    """Estimated peak bytes of `spectrum`: both kernels, the eigenvectors and LAPACK's workspace (6 P^2).

    Args:
        n_pool: P, the number of pool points.

    Returns:
        The estimated bytes.
    """
    return WORD * 6.0 * float(n_pool) ** 2 + OVERHEAD_BYTES


def spectrum_from_kernels(ntk, nngp, y) -> Spectrum:
    """The Spectrum of given pool kernels and targets.

    Args:
        ntk: the NTK Theta on the pool, (P, P), symmetric.
        nngp: the NNGP kernel K on the pool, (P, P), symmetric.
        y: the targets on the pool, (P, k).

    Returns:
        Spectrum (eigenvalues of Theta / P descending; target and prior powers).

    Raises:
        ValueError: shapes that do not match, or non-finite values.
    """
    theta = check_inputs(ntk, "ntk")
    p = theta.shape[0]
    if theta.shape != (p, p):
        raise ValueError(f"ntk: expected a square (P, P) matrix, got shape {theta.shape}")
    k = check_inputs(nngp, "nngp", n_rows=p, n_features=p)
    y = check_inputs(y, "y", n_rows=p)
    lam, u = np.linalg.eigh(theta / p)
    lam, u = np.clip(lam[::-1], 0.0, None), u[:, ::-1]
    target = ((u.T @ y) ** 2).mean(axis=1) / p
    prior = np.einsum("ai,ab,bi->i", u, k, u) / p
    return Spectrum(lam, target, np.clip(prior, 0.0, None))


def spectrum(spec: MLPSpec, x_pool, y_pool) -> Spectrum:
    """The NTK's spectrum on a pool of inputs, with the targets' and the NNGP prior's powers.

    Args:
        spec: the architecture (infinite width).
        x_pool: the pool's inputs, (P, features); the population the training sets are drawn from.
        y_pool: the pool's targets, (P, k).

    Returns:
        Spectrum of the pool.

    Raises:
        TooLargeError: if the kernels and the eigendecomposition would not fit in memory.
    """
    check_instance(spec, "spec", MLPSpec)
    x = check_inputs(x_pool, "x_pool")
    check_inputs(y_pool, "y_pool", n_rows=x.shape[0])
    require(spectrum_bytes(x.shape[0]), f"spectrum of a pool of P = {x.shape[0]} points")
    kern = kernels(spec, x)
    return spectrum_from_kernels(np.asarray(kern.ntk), np.asarray(kern.nngp), y_pool)


def solve_kappa(eigenvalues, n: float) -> float:
    """Kappa > 0 with sum_i lambda_i / (lambda_i + kappa) = n (ridgeless).

    Args:
        eigenvalues: lambda_i >= 0.
        n: the training-set size, 0 < n < the number of positive eigenvalues.

    Returns:
        kappa.

    Raises:
        ValueError: n outside (0, number of positive eigenvalues).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    lam = lam[lam > 0]
    if not 0 < n < lam.size:
        raise ValueError(f"n: expected 0 < n < {lam.size} (the number of positive eigenvalues), got {n!r}")

    def excess(log_kappa: float) -> float:
        """Sum lambda / (lambda + kappa) - n, decreasing in kappa."""
        kappa = np.exp(log_kappa)
        return float(np.sum(lam / (lam + kappa)) - n)

    lo, hi = np.log(lam.min()) - 40.0, np.log(lam.sum()) + 40.0
    return float(np.exp(brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500)))


def learning_curve(spectrum: Spectrum, n) -> LearningCurve:
    """The predicted bias and variance parts of mu_L at training-set sizes n.

    Args:
        spectrum: the pool's Spectrum.
        n: training-set sizes, each in (0, number of positive eigenvalues).

    Returns:
        LearningCurve at these sizes.

    Raises:
        ValueError: a size outside (0, number of positive eigenvalues).
    """
    check_instance(spectrum, "spectrum", Spectrum)
    sizes = np.atleast_1d(np.asarray(n, dtype=np.float64))
    lam = spectrum.eigenvalues
    out = {name: np.empty(sizes.shape) for name in ("kappa", "gamma", "bias", "variance")}
    for j, size in np.ndenumerate(sizes):
        kappa = solve_kappa(lam, size)
        gamma = float(np.sum(lam**2 / (lam + kappa) ** 2) / size)
        weight = (kappa / (lam + kappa)) ** 2 / (1.0 - gamma)
        out["kappa"][j], out["gamma"][j] = kappa, gamma
        out["bias"][j] = np.sum(weight * spectrum.target_power)
        out["variance"][j] = np.sum(weight * spectrum.prior_power)
    return LearningCurve(sizes, out["kappa"], out["gamma"], out["bias"], out["variance"])


@dataclass(frozen=True)
class SpectralExponents:
    """Power laws of a spectrum over a range of modes, and the mu_L exponent they predict.

    Attributes:
        a: lambda_i ~ i^-a, with its standard error a_err (least squares in log-log).
        b: the targets' tail sum_{j > i} g_j^2 ~ i^-b, with b_err.
        alpha: the predicted exponent of the bias part, min(b, 2 a) (ridgeless kernel regression: the error at N
            is the target's tail beyond mode N while b < 2 a, and capped at 2 a beyond).
        modes: the (first, last) mode indices fitted (1-based).
    """

    a: float
    a_err: float
    b: float
    b_err: float
    alpha: float
    modes: tuple


def _slope(i: np.ndarray, v: np.ndarray) -> tuple:
    """-slope of log v against log i and its standard error."""
    x, y = np.log(i), np.log(v)
    coef, cov = np.polyfit(x, y, 1, cov=True)
    return float(-coef[0]), float(np.sqrt(cov[0, 0]))


def spectral_exponents(spectrum: Spectrum, first: int, last: int) -> SpectralExponents:
    """Fit lambda_i ~ i^-a and the targets' tail ~ i^-b over modes first..last (1-based) and predict alpha.

    Args:
        spectrum: the pool's Spectrum.
        first: the first mode fitted, >= 1.
        last: the last mode fitted, at least first + 3 and below the number of positive eigenvalues; keep it
            well below the pool size P, whose end truncates the targets' tail (the tail at mode i misses the
            modes beyond P).

    Returns:
        SpectralExponents.

    Raises:
        ValueError: a mode range outside the spectrum, or too short to fit.
    """
    check_instance(spectrum, "spectrum", Spectrum)
    positive = int(np.sum(spectrum.eigenvalues > 0))
    if not (isinstance(first, (int, np.integer)) and isinstance(last, (int, np.integer))
            and 1 <= first and first + 3 <= last < positive):
        raise ValueError(f"first, last: expected integers with 1 <= first, first + 3 <= last < {positive} (the "
                         f"positive eigenvalues), got {first!r}, {last!r}")
    i = np.arange(first, last + 1, dtype=np.float64)
    tail = np.cumsum(spectrum.target_power[::-1])[::-1]  # tail[i - 1] = sum_{j >= i} g_j^2
    a, a_err = _slope(i, spectrum.eigenvalues[first - 1:last])
    b, b_err = _slope(i, tail[first:last + 1])  # modes beyond i
    return SpectralExponents(a, a_err, b, b_err, float(min(b, 2 * a)), (int(first), int(last)))


__all__ = ["LearningCurve", "SpectralExponents", "Spectrum", "learning_curve", "solve_kappa", "spectral_exponents",
           "spectrum", "spectrum_bytes", "spectrum_from_kernels"]
