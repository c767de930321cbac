"""Learning curves from the kernel's spectrum: mu_L of the t = infinity NTK ensemble predicted at any N_D.

On a pool of P points (the population, uniform measure) the NTK Theta has the eigenpairs of Theta / P:
eigenvalues lambda_i and unit eigenvectors u_i, i.e. eigenfunctions psi_i = sqrt(P) u_i orthonormal under the
pool's measure.  A function g on the pool has coefficients g_i = <psi_i, g> = u_i . g / sqrt(P), and its mean
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
from typing import Optional

import numpy as np
from scipy.optimize import brentq

from ntkuq._src.budget import OVERHEAD_BYTES, WORD, require
from ntkuq._src.checks import check_inputs, check_instance
from ntkuq.infinite.kernels import kernels
from ntkuq.spec import MLPSpec


@dataclass(frozen=True)
class Spectrum:
    """The NTK's spectrum on a pool and the powers of the target and of the NNGP prior in its eigenbasis.

    A pool's spectrum (`spectrum`) has one entry per mode; an extended one (`extend_spectrum`) describes the
    population, its tail grouped into bins of `weights` modes each (the powers then are per mode).

    Attributes:
        eigenvalues: lambda_i of Theta / P, descending, (P,) (tiny negative round-off clipped to 0).
        target_power: g_i^2 of the targets y, mean over the k outputs, (P,).
        prior_power: E[g_i^2] = u_i . K u_i / P of a draw of the NNGP prior (one output), (P,).
        weights: None for a pool (one mode per entry), else the number of modes each entry stands for.
    """

    eigenvalues: np.ndarray
    target_power: np.ndarray
    prior_power: np.ndarray
    weights: Optional[np.ndarray] = None

    @property
    def is_pool(self) -> bool:
        """True for a pool's spectrum (errors over the pool), False for an extended one (the population)."""
        return self.weights is None

    @property
    def n_pool(self) -> int:
        """P, the number of entries (for a pool: its points and modes)."""
        return int(self.eigenvalues.size)

    @property
    def modes(self) -> float:
        """The number of modes with a positive eigenvalue (counting the weights of an extended spectrum)."""
        w = np.ones_like(self.eigenvalues) if self.weights is None else self.weights
        return float(np.sum(w[self.eigenvalues > 0]))

    def save(self, path) -> None:
        """Write a pool's three arrays to an .npz file.

        Args:
            path: the file (an .npz; its folder must exist).

        Raises:
            ValueError: an extended spectrum (rebuild it from the saved pool with `extend_spectrum`).
        """
        if not self.is_pool:
            raise ValueError("save: only a pool's spectrum is saved; extend it again after loading")
        np.savez(path, eigenvalues=self.eigenvalues, target_power=self.target_power, prior_power=self.prior_power)

    @classmethod
    def load(cls, path) -> "Spectrum":
        """Read a Spectrum written by `save`.

        Args:
            path: the .npz file.

        Returns:
            The Spectrum.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file lacks an array or holds arrays of different lengths or non-finite values.
        """
        with np.load(path) as f:
            names = ("eigenvalues", "target_power", "prior_power")
            missing = [name for name in names if name not in f.files]
            if missing:
                raise ValueError(f"{path}: not a saved Spectrum (missing {', '.join(missing)})")
            arrays = [np.asarray(f[name], dtype=np.float64) for name in names]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or not all(np.isfinite(a).all() for a in arrays):
            raise ValueError(f"{path}: expected three finite 1-D arrays of one length")
        return cls(*arrays)


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
    prior = np.sum(u * (k @ u), axis=0) / p  # u_i . K u_i through one matrix product (BLAS), not an einsum loop
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


def solve_kappa(eigenvalues, n: float, weights=None) -> float:
    """Kappa > 0 with sum_i w_i lambda_i / (lambda_i + kappa) = n (ridgeless).

    Args:
        eigenvalues: lambda_i >= 0.
        n: the training-set size, 0 < n < the number of positive eigenvalues (their weights' sum).
        weights: the number of modes each eigenvalue stands for (default: one each).

    Returns:
        kappa.

    Raises:
        ValueError: n outside (0, number of positive eigenvalues).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    w = np.ones_like(lam) if weights is None else np.asarray(weights, dtype=np.float64)
    w, lam = w[lam > 0], lam[lam > 0]
    total = float(np.sum(w))
    if not 0 < n < total:
        raise ValueError(f"n: expected 0 < n < {total:g} (the number of positive eigenvalues), got {n!r}")

    def excess(log_kappa: float) -> float:
        """Sum w lambda / (lambda + kappa) - n, decreasing in kappa."""
        kappa = np.exp(log_kappa)
        return float(np.sum(w * lam / (lam + kappa)) - n)

    lo, hi = np.log(lam.min()) - 40.0, np.log(np.sum(w * lam)) + 40.0
    return float(np.exp(brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500)))


def learning_curve(spectrum: Spectrum, n, held_out: bool = False) -> LearningCurve:
    """The predicted bias and variance parts of mu_L at training-set sizes n.

    Args:
        spectrum: a pool's Spectrum (errors over the pool) or an extended one (errors over the population).
        n: training-set sizes, each in (0, number of positive eigenvalues).
        held_out: for a pool: the error over the pool's points outside the training set, P / (P - N) times the
            error over the pool (the N training points have none: the regression interpolates them), which is
            what a separate test set measures. An extended spectrum's error is the population's already.

    Returns:
        LearningCurve at these sizes.

    Raises:
        ValueError: a size outside (0, number of positive eigenvalues).
    """
    check_instance(spectrum, "spectrum", Spectrum)
    sizes = np.atleast_1d(np.asarray(n, dtype=np.float64))
    lam = spectrum.eigenvalues
    w = np.ones_like(lam) if spectrum.weights is None else spectrum.weights
    out = {name: np.empty(sizes.shape) for name in ("kappa", "gamma", "bias", "variance")}
    for j, size in np.ndenumerate(sizes):
        kappa = solve_kappa(lam, size, spectrum.weights)
        gamma = float(np.sum(w * lam**2 / (lam + kappa) ** 2) / size)
        weight = w * (kappa / (lam + kappa)) ** 2 / (1.0 - gamma)
        if held_out and spectrum.is_pool:
            weight = weight * spectrum.n_pool / (spectrum.n_pool - size)
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
    if not spectrum.is_pool:
        raise ValueError("spectrum: expected a pool's spectrum (one entry per mode), got an extended one")
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


def _tail_law(power: np.ndarray, first: int, last: int) -> tuple:
    """(C, b) of the tail sum_{j > i} power_j ~ C i^-b fitted over modes first..last (1-based)."""
    tail = np.cumsum(power[::-1])[::-1]
    i = np.arange(first, last + 1, dtype=np.float64)
    values = tail[first:last + 1]
    coef = np.polyfit(np.log(i), np.log(np.maximum(values, np.finfo(float).tiny)), 1)
    return float(np.exp(coef[1])), float(-coef[0])


def extend_spectrum(spectrum: Spectrum, first: int, last: int, *, modes: float = 1e9,
                    bins: int = 2000) -> Spectrum:
    """The population's spectrum: a pool's modes 1..last, then power laws fitted over first..last to `modes`.

    A pool of P points resolves the population's eigenvalues and powers only well below mode P; past it the
    theory needs a model. This one continues lambda_i ~ i^-a and the tails sum_{j>i} g_j^2 ~ i^-b of the
    targets and of the prior (each with its own exponent), fitted over modes first..last, up to `modes` modes in
    `bins` log-spaced bins (each bin's eigenvalue at its geometric centre, its powers the fitted tail's share).
    Its learning curve is an extrapolation: it is right only as far as the power laws hold past the pool.

    Args:
        spectrum: a pool's Spectrum.
        first: the first mode fitted (1-based, >= 1).
        last: the last mode fitted and kept from the pool (first + 3 <= last < the positive eigenvalues).
        modes: the total number of modes of the extension (> last); the tails beyond are dropped.
        bins: the number of bins of the extension (>= 10).

    Returns:
        An extended Spectrum (its errors are over the population; `learning_curve` needs no held-out factor).

    Raises:
        ValueError: a pool spectrum is not given, or a mode range, `modes` or `bins` out of range.
    """
    check_instance(spectrum, "spectrum", Spectrum)
    spectral_exponents(spectrum, first, last)  # validates the spectrum and the mode range
    if not (isinstance(modes, (int, float, np.integer, np.floating)) and np.isfinite(modes) and modes > last + 1):
        raise ValueError(f"modes: expected a number of modes above last + 1 = {last + 1}, got {modes!r}")
    if not (isinstance(bins, (int, np.integer)) and bins >= 10):
        raise ValueError(f"bins: expected an integer >= 10, got {bins!r}")
    i = np.arange(first, last + 1, dtype=np.float64)
    coef = np.polyfit(np.log(i), np.log(spectrum.eigenvalues[first - 1:last]), 1)
    edges = np.geomspace(last, float(modes), bins + 1)  # bin k holds the modes in (edges[k], edges[k + 1]]
    width = np.diff(edges)
    lam = np.exp(coef[1]) * (np.sqrt(edges[:-1] * edges[1:]) + 0.5) ** coef[0]
    powers = []
    for power in (spectrum.target_power, spectrum.prior_power):
        c, b = _tail_law(power, first, last)
        powers.append(c * (edges[:-1] ** -b - edges[1:] ** -b) / width)  # the tail's share of each bin, per mode
    keep = slice(0, last)
    return Spectrum(np.concatenate([spectrum.eigenvalues[keep], lam]),
                    np.concatenate([spectrum.target_power[keep], powers[0]]),
                    np.concatenate([spectrum.prior_power[keep], powers[1]]),
                    np.concatenate([np.ones(last), width]))


@dataclass(frozen=True)
class Calibration:
    """The extension whose learning curve is closest to measured mu_L, among fit ranges tried.

    Attributes:
        spectrum: the extended Spectrum of the best range.
        first: its first fitted mode.
        last: its last fitted mode.
        mismatch: the largest relative difference, abs(predicted / measured - 1), of mu_L over the measured
            sizes, for the best range.
        tried: (first, last, mismatch) of every range tried, best first.
    """

    spectrum: Spectrum
    first: int
    last: int
    mismatch: float
    tried: tuple


def calibrate_extension(spectrum: Spectrum, n, mu, *, firsts=(10, 30, 100, 300), lasts=(500, 1000, 1500, 3000),
                        modes: float = 1e9) -> Calibration:
    """Choose the fit range of `extend_spectrum` whose learning curve best matches measured mu_L.

    The continuation past a pool is a model (`extend_spectrum`); this picks, among the ranges first..last with
    last >= 5 first and last below the pool's positive modes, the one whose predicted mu_L = bias + variance is
    closest to mu at sizes n in the worst case. Its mismatch says how far the model can be trusted; the choice
    uses the measurements, so they no longer check it.

    Args:
        spectrum: a pool's Spectrum.
        n: the measured training-set sizes.
        mu: the measured mu_L at n (same length), positive.
        firsts: candidate first modes.
        lasts: candidate last modes.
        modes: the extension's number of modes (`extend_spectrum`).

    Returns:
        Calibration.

    Raises:
        ValueError: n and mu of different lengths, non-positive mu, or no admissible range.
    """
    check_instance(spectrum, "spectrum", Spectrum)
    sizes = np.atleast_1d(np.asarray(n, dtype=np.float64))
    measured = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    if sizes.shape != measured.shape or sizes.ndim != 1 or not np.all(np.isfinite(measured) & (measured > 0)):
        raise ValueError(f"n, mu: expected two 1-D arrays of one length with mu > 0, got shapes {sizes.shape}, "
                         f"{measured.shape}")
    positive = int(np.sum(spectrum.eigenvalues > 0))
    tried = []
    for first in firsts:
        for last in lasts:
            if last < 5 * first or last >= positive:
                continue
            ext = extend_spectrum(spectrum, int(first), int(last), modes=modes)
            miss = float(np.max(np.abs(learning_curve(ext, sizes).mu / measured - 1)))
            tried.append((int(first), int(last), miss))
    if not tried:
        raise ValueError(f"firsts, lasts: no range with last >= 5 first and last < {positive} (the positive modes)")
    tried.sort(key=lambda t: t[2])
    first, last, miss = tried[0]
    return Calibration(extend_spectrum(spectrum, first, last, modes=modes), first, last, miss, tuple(tried))


__all__ = ["Calibration", "LearningCurve", "SpectralExponents", "Spectrum", "calibrate_extension", "extend_spectrum",
           "learning_curve", "solve_kappa", "spectral_exponents", "spectrum", "spectrum_bytes",
           "spectrum_from_kernels"]
