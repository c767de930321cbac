"""Statistics of the test loss L = 1/(N_T k) sum_d sum_i (z_i(x_d) - y_id)^2 over the Gaussian ensemble.

Every output component i is Gaussian with mean m_i and the shared covariance S, so with the
residual R = m - Y_test the quadratic-form moments give exactly

    mu_L      = ( ||R||_F^2 + k tr S ) / (N_T k)
    sigma_L^2 = ( 2 k ||S||_F^2 + 4 sum_i R_i^T S R_i ) / (N_T k)^2

and L is a generalized chi-square variable: with S = U diag(lam) U^T and B = U^T R,
L = sum_j w_j chi'^2_k(nc_j), w_j = lam_j / (N_T k), nc_j = sum_i B_ji^2 / lam_j.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq

from .checks import (InputTypeError, check_fraction, check_inputs, check_instance, check_int, check_positive,
                     check_real)
from .dynamics import EnsemblePrediction

Array = jax.Array

@dataclass(frozen=True)
class LossStats:
    """Exact mean, standard deviation and coefficient of variation of the test loss, and their parts."""

    mu: float
    sigma: float
    n_test: int
    n_out: int
    bias2: float
    trace_S: float
    fro2_S: float
    rSr: float

    @property
    def eps(self) -> float:
        """Coefficient of variation eps_L = sigma_L / mu_L (0 when mu_L = 0: L >= 0, so then L = 0 always)."""
        return self.sigma / self.mu if self.mu > 0 else 0.0

    @property
    def var(self) -> float:
        """Variance sigma_L^2."""
        return self.sigma**2

@jax.jit
def _block_terms(s_rows: Array, r_rows: Array, r: Array):
    return jnp.sum(s_rows**2), jnp.sum(r_rows * (s_rows @ r))

def _residual(pred: EnsemblePrediction, y_test) -> Array:
    check_instance(pred, "pred", EnsemblePrediction, "an EnsemblePrediction (ntk_prediction, nngp_posterior)")
    y = check_inputs(y_test, "y_test", n_rows=pred.n_test)
    if y.shape[1] != pred.mean.shape[1]:
        raise ValueError(f"y_test: expected {pred.mean.shape[1]} output columns to match y_train, got {y.shape[1]}")
    return pred.mean - y

def loss_stats(pred: EnsemblePrediction, y_test, *, block_size: int = 1024) -> LossStats:
    """mu_L, sigma_L, eps_L; S is visited in blocks of `block_size` test rows, never held whole."""
    block_size = check_int(block_size, "block_size")
    r = _residual(pred, y_test)
    n_t, k = r.shape
    trace = float(jnp.sum(pred.cov_diag()))
    fro2 = rsr = 0.0
    for start in range(0, n_t, block_size):
        stop = min(start + block_size, n_t)
        f, q = _block_terms(pred.cov_rows(start, stop), r[start:stop], r)
        fro2 += float(f)
        rsr += float(q)
    bias2 = float(jnp.sum(r**2))
    norm = n_t * k
    mu = (bias2 + k * trace) / norm
    var = (2 * k * fro2 + 4 * rsr) / norm**2
    return LossStats(mu, math.sqrt(max(var, 0.0)), n_t, k, bias2, trace, fro2, rsr)

@dataclass(frozen=True)
class GeneralizedChi2:
    """L = offset + sum_j w_j X_j with X_j ~ noncentral chi-square (dof degrees of freedom, noncentrality nc_j)."""

    weights: np.ndarray
    nc: np.ndarray
    dof: int
    offset: float = 0.0

    def __post_init__(self) -> None:
        weights = _real_vector(self.weights, "weights")
        nc = _real_vector(self.nc, "nc")
        if weights.shape != nc.shape:
            raise ValueError(f"nc: expected one noncentrality per weight ({weights.size}), got {nc.size}")
        if np.any(weights < 0):
            raise ValueError(f"weights: expected numbers >= 0 (eigenvalues of a covariance), got {weights.min():g}")
        if np.any(nc < 0):
            raise ValueError(f"nc: expected noncentralities >= 0 (squared means), got {nc.min():g}")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "nc", nc)
        object.__setattr__(self, "dof", check_int(self.dof, "dof"))
        object.__setattr__(self, "offset", check_real(self.offset, "offset"))

    @property
    def mean(self) -> float:
        """E[L] = offset + sum_j w_j (dof + nc_j)."""
        return float(self.offset + np.sum(self.weights * (self.dof + self.nc)))

    @property
    def std(self) -> float:
        """sqrt(Var L) = sqrt(sum_j 2 w_j^2 (dof + 2 nc_j))."""
        return float(np.sqrt(np.sum(2 * self.weights**2 * (self.dof + 2 * self.nc))))

    def log_cf(self, u: np.ndarray) -> np.ndarray:
        """Logarithm of the characteristic function E[exp(i u L)]."""
        u = np.asarray(u, dtype=np.float64)[..., None]
        one = 1 - 2j * self.weights * u
        terms = -0.5 * self.dof * np.log(one) + 1j * self.nc * self.weights * u / one
        return 1j * u[..., 0] * self.offset + terms.sum(-1)

    def _grid(self, tol: float = 1e-12, max_points: int = 2**18):
        """Davies' midpoint grid u_m = (m + 1/2) h: h avoids aliasing, the end where |cf| < tol."""
        span = self.mean + 40 * self.std - self.offset
        h = 2 * np.pi / (2 * span)
        m = 64
        while np.exp(self.log_cf((m + 0.5) * h).real) > tol and m < max_points:
            m *= 2
        return h, (np.arange(m) + 0.5) * h

    def _invert(self, x, kernel) -> np.ndarray:
        """Sum kernel(exp(-i u x) cf(u), u / h) over the grid, for x in chunks that bound the memory."""
        x = np.atleast_1d(_real_vector(x, "x", flat=False))
        cache = self.__dict__.get("_grid_cf")
        if cache is None:  # the grid and cf cost O(grid x weights): once per distribution, not per call
            h, u = self._grid()
            cache = (h, u, np.exp(self.log_cf(u)))
            object.__setattr__(self, "_grid_cf", cache)
        h, u, cf = cache
        chunk = max(1, 2**22 // u.size)
        return np.concatenate([np.sum(kernel(np.exp(-1j * np.outer(x[i:i + chunk], u)) * cf, u / h), axis=1)
                               for i in range(0, x.size, chunk)]), h

    def cdf(self, x) -> np.ndarray:
        """P(L <= x) by Gil-Pelaez inversion of the characteristic function (Davies' trapezoid rule)."""
        total, _ = self._invert(x, lambda v, m: v.imag / m)
        return np.clip(0.5 - total / np.pi, 0.0, 1.0)

    def pdf(self, x) -> np.ndarray:
        """The density of L, by the same inversion."""
        total, h = self._invert(x, lambda v, m: v.real)
        return np.maximum(h / np.pi * total, 0.0)

    def quantile(self, q):
        """The q-quantile of L (0 < q < 1), by root finding on the CDF; an array of levels gives an array.

        Levels below 100 times the inversion's error at the lower end (the computed CDF at the offset, where
        the true one is 0: about 1e-12 for many weights, more for few weights with dof = 1) are refused with
        that error named, rather than answered wrongly."""
        if isinstance(q, (list, tuple, np.ndarray)) and np.ndim(q) > 0:
            levels = np.asarray(q)
            return np.array([self.quantile(v) for v in levels.ravel()]).reshape(levels.shape)
        q = check_fraction(q, "q")
        if self.weights.size == 0 or not self.std > 0:  # no spread: L is the constant offset
            return float(self.offset)
        lo, hi = self.offset, self.mean + 40 * self.std
        floor = float(self.cdf(lo)[0])  # 0 exactly; what the inversion gives there is its error
        if floor > 0.01 * q:
            raise ValueError(f"q: expected a level at least 100 times the CDF's numerical error at the lower end of L "
                             f"(about {floor:.1e}, so q >= {100 * floor:.1e}), got {q!r}")
        for _ in range(8):  # far upper tail: widen the bracket
            if float(self.cdf(hi)[0]) - q > 0:
                break
            hi = self.offset + 2 * (hi - self.offset)
        else:
            raise ValueError(f"q: expected a level below the CDF's numerical accuracy at the upper end of L, got {q!r}")
        return float(brentq(lambda x: self.cdf(x)[0] - q, lo, hi, xtol=1e-14 * hi))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n independent draws of L (from its chi-square representation)."""
        rng = np.random.default_rng(seed)
        draws = rng.noncentral_chisquare(self.dof, np.maximum(self.nc, 1e-300), size=(n, self.weights.size))
        return self.offset + draws @ self.weights

def _real_vector(values, name: str, flat: bool = True) -> np.ndarray:
    """Finite real numbers as a float64 array (1-D if flat); InputTypeError / ValueError naming `name`."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: expected real numbers, got {type(values).__name__}") from None
    if arr.dtype.kind not in "iuf":
        raise InputTypeError(f"{name}: expected real numbers, got {type(values).__name__} of dtype {arr.dtype} "
                             f"{values!r}"[:200])
    arr = arr.astype(np.float64)
    if flat and arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite numbers, found NaN or infinity")
    return arr


def loss_distribution(pred: EnsemblePrediction, y_test, *, rtol: float = 1e-12) -> GeneralizedChi2:
    """The exact distribution of L; eigendecomposes the full S, so N_T up to a few thousand."""
    rtol = check_positive(rtol, "rtol")
    r = np.asarray(_residual(pred, y_test))
    n_t, k = r.shape
    lam, U = np.linalg.eigh(np.asarray(pred.cov()))
    b2 = np.sum((U.T @ r) ** 2, axis=1)
    keep = lam > rtol * max(lam[-1], 0.0)
    offset = float(np.sum(b2[~keep]) / (n_t * k))
    return GeneralizedChi2(lam[keep] / (n_t * k), b2[keep] / lam[keep], k, offset)

def sample_test_losses(pred: EnsemblePrediction, y_test, n_samples: int, *, seed: int = 0) -> np.ndarray:
    """Monte Carlo: draw the ensemble's test outputs z ~ N(m, S) per component and return their losses."""
    n_samples = check_int(n_samples, "n_samples")
    seed = check_int(seed, "seed", minimum=0)
    r = np.asarray(_residual(pred, y_test))
    n_t, k = r.shape
    lam, U = np.linalg.eigh(np.asarray(pred.cov()))
    root = U * np.sqrt(np.maximum(lam, 0.0))
    rng = np.random.default_rng(seed)
    out = np.empty(n_samples)
    for i in range(n_samples):
        z = r + root @ rng.standard_normal((n_t, k))
        out[i] = np.sum(z**2) / (n_t * k)
    return out
