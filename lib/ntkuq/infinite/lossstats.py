"""Statistics of the test loss L = 1/(N_T k) sum_d sum_i (z_i(x_d) - y_id)^2 over the Gaussian ensemble.

Every output component i is Gaussian with mean m_i and the shared covariance S, so with the
residual R = m - Y_test the quadratic-form moments give exactly

    mu_L      = ( ||R||_F^2 + k tr S ) / (N_T k)
    sigma_L^2 = ( 2 k ||S||_F^2 + 4 sum_i R_i^T S R_i ) / (N_T k)^2

sigma_L^2 is a double sum over test points d, d'; its terms with d = d' (var_diag) and d != d' (var_offdiag)
add up like N_T and N_T^2 terms, so one computation at N_T gives eps_L for any test-set size n <= N_T drawn
from the same points (`eps_at`): a floor N_T var_diag / n and a population part (science.md, "The two parts").

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

from ntkuq._src.checks import check_fraction, check_inputs, check_instance, check_int, check_positive, check_real
from ntkuq.errors import InputTypeError
from ntkuq.infinite.predict import EnsemblePrediction

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
    diag_S2: float = math.nan
    """sum_d S_dd^2 (the diagonal of S squared); NaN when not computed."""
    diag_rSr: float = math.nan
    """sum_d S_dd ||R_d||^2; NaN when not computed."""

    @property
    def var_diag(self) -> float:
        """The pairs d = d' of sigma_L^2: (2 k sum_d S_dd^2 + 4 sum_d S_dd ||R_d||^2) / (N_T k)^2."""
        return (2 * self.n_out * self.diag_S2 + 4 * self.diag_rSr) / (self.n_test * self.n_out) ** 2

    @property
    def var_offdiag(self) -> float:
        """The pairs d != d' of sigma_L^2: sigma_L^2 - var_diag."""
        return self.sigma**2 - self.var_diag

    def eps_at(self, n) -> float:
        """eps_L of a test set of n of these N_T points drawn at random (`eps_for_test_size`)."""
        return eps_for_test_size(self.mu, self.var_diag, self.var_offdiag, self.n_test, n)

    @property
    def eps_population(self) -> float:
        """eps_L of an infinite test set from the same distribution (`eps_population`)."""
        return eps_population(self.mu, self.var_offdiag, self.n_test)

    @property
    def eps(self) -> float:
        """Coefficient of variation eps_L = sigma_L / mu_L (0 when mu_L = 0: L >= 0, so then L = 0 always)."""
        return self.sigma / self.mu if self.mu > 0 else 0.0

    @property
    def var(self) -> float:
        """Variance sigma_L^2."""
        return self.sigma**2

def _as_array(value, name: str) -> np.ndarray:
    arr = _real_vector(np.atleast_1d(value), name, flat=False)
    return arr if np.ndim(value) else arr.reshape(())


def _test_size(n, n_test) -> np.ndarray:
    n, n_test = _as_array(n, "n"), _as_array(n_test, "n_test")
    if np.any(n_test < 2) or np.any(n_test != np.round(n_test)):
        raise ValueError(f"n_test: expected whole numbers >= 2 (the test-set size N_T), got {n_test!r}")
    if np.any(n < 1) or np.any(n != np.round(n)) or np.any(n > n_test):
        raise ValueError(f"n: expected whole numbers from 1 to n_test ({n_test!r}), got {n!r}")
    return n


def var_for_test_size(var_diag, var_offdiag, n_test, n):
    """Expected sigma_L^2 of a test set of n points drawn without replacement from N_T = n_test points.

    E[sigma_L^2(n)] = (N_T / n) var_diag + (n - 1) N_T / (n (N_T - 1)) var_offdiag   (science.md).

    Args:
      var_diag: the d = d' part of sigma_L^2 at N_T test points (`LossStats.var_diag`).
      var_offdiag: the d != d' part (`LossStats.var_offdiag`).
      n_test: N_T, the test-set size they were computed at (>= 2).
      n: the smaller test-set size, 1 <= n <= N_T (arrays broadcast).

    Returns:
      The variance, a float or an array of the broadcast shape.

    Raises:
      ValueError: n outside 1..N_T, N_T < 2, or a non-finite part.
    """
    n = _test_size(n, n_test)
    n_test = _as_array(n_test, "n_test")
    vd, vo = _as_array(var_diag, "var_diag"), _as_array(var_offdiag, "var_offdiag")
    out = n_test / n * vd + (n - 1) * n_test / (n * (n_test - 1)) * vo
    return float(out) if out.ndim == 0 else out


def eps_for_test_size(mu, var_diag, var_offdiag, n_test, n):
    """eps_L = sqrt(E[sigma_L^2(n)]) / mu_L for a test set of n of the N_T points (`var_for_test_size`).

    Args:
      mu: mu_L (> 0; a random subset has the same mean on average).
      var_diag, var_offdiag, n_test, n: as in `var_for_test_size`.

    Returns:
      eps_L(n), a float or an array.
    """
    mu = _as_array(mu, "mu")
    if np.any(mu <= 0):
        raise ValueError(f"mu: expected mu_L > 0, got {mu!r}")
    out = np.sqrt(np.maximum(_as_array(var_for_test_size(var_diag, var_offdiag, n_test, n), "var"), 0.0)) / mu
    return float(out) if out.ndim == 0 else out


def eps_population(mu, var_offdiag, n_test):
    """eps_L of an infinite test set (n -> infinity): sqrt(var_offdiag N_T / (N_T - 1)) / mu_L.

    The spread of the ensemble's population loss over initializations; arguments as `eps_for_test_size`.
    """
    mu, vo, n_test = _as_array(mu, "mu"), _as_array(var_offdiag, "var_offdiag"), _as_array(n_test, "n_test")
    if np.any(mu <= 0) or np.any(n_test < 2):
        raise ValueError(f"mu, n_test: expected mu_L > 0 and N_T >= 2, got {mu!r}, {n_test!r}")
    out = np.sqrt(np.maximum(vo * n_test / (n_test - 1), 0.0)) / mu
    return float(out) if out.ndim == 0 else out


def eps_floor(mu, var_diag, n_test, n):
    """The test-set floor of eps_L at n test points: sqrt(N_T var_diag / n) / mu_L (arguments as above).

    eps_L(n)^2 = eps_floor(n)^2 + (n - 1) / n eps_population^2, so the floor is what remains when the
    population part is negligible.
    """
    mu, vd = _as_array(mu, "mu"), _as_array(var_diag, "var_diag")
    n = _test_size(n, n_test)
    out = np.sqrt(np.maximum(_as_array(n_test, "n_test") * vd / n, 0.0)) / mu
    return float(out) if out.ndim == 0 else out


def uniform_floor(bias_share, n_out, n):
    """The floor when every test point has the same variance and squared bias: sqrt(2 (1 - f^2) / (k n)).

    Args:
      bias_share: f = bias^2 / (bias^2 + variance), the bias share of mu_L (0..1).
      n_out: k, the number of outputs.
      n: the test-set size.
    """
    f = _as_array(bias_share, "bias_share")
    if np.any((f < 0) | (f > 1)):
        raise ValueError(f"bias_share: expected numbers in [0, 1], got {f!r}")
    out = np.sqrt(2 * (1 - f**2) / (_as_array(n_out, "n_out") * _as_array(n, "n")))
    return float(out) if out.ndim == 0 else out


@jax.jit
def _block_terms(s_rows: Array, r_rows: Array, r: Array):
    return jnp.sum(s_rows**2), jnp.sum(r_rows * (s_rows @ r))


@jax.jit
def _diag_terms(s_rows: Array, r_rows: Array, start):
    diag = jax.lax.dynamic_slice_in_dim(s_rows, start, s_rows.shape[0], axis=1).diagonal()
    return jnp.sum(diag**2), jnp.sum(diag * jnp.sum(r_rows**2, axis=1))

def _residual(pred: EnsemblePrediction, y_test) -> Array:
    check_instance(pred, "pred", EnsemblePrediction, "an EnsemblePrediction (ntk_prediction, nngp_posterior)")
    y = check_inputs(y_test, "y_test", n_rows=pred.n_test)
    if y.shape[1] != pred.mean.shape[1]:
        raise ValueError(f"y_test: expected {pred.mean.shape[1]} output columns to match y_train, got {y.shape[1]}")
    return pred.mean - y

def loss_stats(pred: EnsemblePrediction, y_test, *, block_size: int = 1024) -> LossStats:
    """mu_L, sigma_L, eps_L and the two parts of sigma_L^2; S is visited in blocks of `block_size` test rows.

    Args:
      pred: the ensemble's Gaussian prediction on the test set (`ntk_prediction`, `nngp_posterior`).
      y_test: the test targets, N_T x k.
      block_size: test rows of S held at once (S is never held whole).

    Returns:
      LossStats, with var_diag / var_offdiag and eps_at(n) for smaller test sets.
    """
    block_size = check_int(block_size, "block_size")
    r = _residual(pred, y_test)
    n_t, k = r.shape
    trace = float(jnp.sum(pred.cov_diag()))
    fro2 = rsr = d2 = drsr = 0.0
    for start in range(0, n_t, block_size):
        stop = min(start + block_size, n_t)
        rows = pred.cov_rows(start, stop)
        f, q = _block_terms(rows, r[start:stop], r)
        dd, dq = _diag_terms(rows, r[start:stop], start)
        fro2 += float(f)
        rsr += float(q)
        d2 += float(dd)
        drsr += float(dq)
    bias2 = float(jnp.sum(r**2))
    norm = n_t * k
    mu = (bias2 + k * trace) / norm
    var = (2 * k * fro2 + 4 * rsr) / norm**2
    return LossStats(mu, math.sqrt(max(var, 0.0)), n_t, k, bias2, trace, fro2, rsr, d2, drsr)

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


__all__ = ["GeneralizedChi2", "LossStats", "eps_floor", "eps_for_test_size", "eps_population", "loss_distribution",
           "loss_stats", "sample_test_losses", "uniform_floor", "var_for_test_size"]
