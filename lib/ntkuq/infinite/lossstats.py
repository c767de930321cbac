"""Statistics of the test loss L = 1/(N_T k) sum_d sum_i (z_i(x_d) - y_id)^2 over the Gaussian ensemble.

Every output component i is Gaussian with mean m_i and the shared covariance S, so with the
residual R = m - Y_test the quadratic-form moments give exactly

    mu_L      = ( ||R||_F^2 + k tr S ) / (N_T k)
    sigma_L^2 = ( 2 k ||S||_F^2 + 4 sum_i R_i^T S R_i ) / (N_T k)^2

sigma_L^2 is a double sum over test points d, d'; its terms with d = d' (var_diag) and d != d' (var_offdiag)
add up like N_T and N_T^2 terms, so one computation at N_T gives eps_L for any test-set size n_T <= N_T drawn
from the same points (`eps_at`): a floor N_T var_diag / n and a population part (science.md, "The two parts").
The whole distribution of L (a generalized chi-square variable) is in `ntkuq.infinite.distribution`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ntkuq._src.checks import check_inputs, check_instance, check_int
from ntkuq.errors import InputTypeError
from ntkuq.infinite.predict import EnsemblePrediction

Array = jax.Array

@dataclass(frozen=True)
class LossStats:
    """Exact mean, standard deviation and coefficient of variation of the test loss, and their parts.

    Attributes:
        mu: the mean mu_L.
        sigma: the standard deviation sigma_L.
        n_test: N_T, the number of test points.
        n_out: k, the number of outputs.
        bias2: ||R||_F^2, the squared residual R = m - Y_test of the mean.
        trace_S: tr S.
        fro2_S: ||S||_F^2.
        rSr: sum_i R_i^T S R_i.
        diag_S2: sum_d S_dd^2 (the diagonal of S squared); NaN when not computed.
        diag_rSr: sum_d S_dd ||R_d||^2; NaN when not computed.
    """

    mu: float
    sigma: float
    n_test: int
    n_out: int
    bias2: float
    trace_S: float
    fro2_S: float
    rSr: float
    diag_S2: float = math.nan
    diag_rSr: float = math.nan

    @property
    def var_diag(self) -> float:
        """The pairs d = d' of sigma_L^2: (2 k sum_d S_dd^2 + 4 sum_d S_dd ||R_d||^2) / (N_T k)^2."""
        return (2 * self.n_out * self.diag_S2 + 4 * self.diag_rSr) / (self.n_test * self.n_out) ** 2

    @property
    def var_offdiag(self) -> float:
        """The pairs d != d' of sigma_L^2: sigma_L^2 - var_diag."""
        return self.sigma**2 - self.var_diag

    def eps_at(self, n) -> float:
        """eps_L of a test set of n of these N_T points drawn at random (`eps_for_test_size`).

        Args:
            n: the test-set size, 1 <= n <= N_T (an array gives an array).

        Returns:
            eps_L(n_T), a float or an array.
        """
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
    """Expected sigma_L^2 of a test set of n_T points drawn without replacement from N_T = n_test points.

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
        var_diag: the d = d' part of sigma_L^2, as in `var_for_test_size`.
        var_offdiag: the d != d' part, as in `var_for_test_size`.
        n_test: N_T, as in `var_for_test_size`.
        n: the smaller test-set size, as in `var_for_test_size`.

    Returns:
        eps_L(n_T), a float or an array.

    Raises:
        ValueError: mu_L <= 0, or the arguments of `var_for_test_size` out of range.
    """
    mu = _as_array(mu, "mu")
    if np.any(mu <= 0):
        raise ValueError(f"mu: expected mu_L > 0, got {mu!r}")
    out = np.sqrt(np.maximum(_as_array(var_for_test_size(var_diag, var_offdiag, n_test, n), "var"), 0.0)) / mu
    return float(out) if out.ndim == 0 else out


def eps_population(mu, var_offdiag, n_test):
    """eps_L of an infinite test set (n -> infinity): sqrt(var_offdiag N_T / (N_T - 1)) / mu_L.

    The spread of the ensemble's population loss over initializations; arguments as `eps_for_test_size`.

    Args:
        mu: mu_L (> 0).
        var_offdiag: the d != d' part of sigma_L^2 at N_T test points (`LossStats.var_offdiag`).
        n_test: N_T, the test-set size it was computed at (>= 2).

    Returns:
        The population eps_L, a float or an array.

    Raises:
        ValueError: mu_L <= 0 or N_T < 2.
    """
    mu, vo, n_test = _as_array(mu, "mu"), _as_array(var_offdiag, "var_offdiag"), _as_array(n_test, "n_test")
    if np.any(mu <= 0) or np.any(n_test < 2):
        raise ValueError(f"mu, n_test: expected mu_L > 0 and N_T >= 2, got {mu!r}, {n_test!r}")
    out = np.sqrt(np.maximum(vo * n_test / (n_test - 1), 0.0)) / mu
    return float(out) if out.ndim == 0 else out


def eps_floor(mu, var_diag, n_test, n):
    """The test-set floor of eps_L at n_T test points: sqrt(N_T var_diag / n_T) / mu_L (arguments as above).

    eps_L(n_T)^2 = eps_floor(n)^2 + (n - 1) / n eps_population^2, so the floor is what remains when the
    population part is negligible.

    Args:
        mu: mu_L (> 0).
        var_diag: the d = d' part of sigma_L^2 at N_T test points (`LossStats.var_diag`).
        n_test: N_T, the test-set size it was computed at (>= 2).
        n: the test-set size, 1 <= n <= N_T (arrays broadcast).

    Returns:
        The floor, a float or an array.
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

    Returns:
        The floor, a float or an array of the broadcast shape.

    Raises:
        ValueError: bias_share outside [0, 1].
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

    Example:
        >>> import numpy as np
        >>> import ntkuq
        >>> ntkuq.enable_float64()
        >>> from ntkuq import MLPSpec
        >>> from ntkuq.infinite import loss_stats, ntk_prediction, train_test_kernels
        >>> rng = np.random.default_rng(0)
        >>> x_train, x_test = rng.standard_normal((20, 3)), rng.standard_normal((10, 3))
        >>> kern = train_test_kernels(MLPSpec(depth=3), x_train, x_test)
        >>> pred = ntk_prediction(kern, np.sin(x_train[:, :1]))
        >>> stats = loss_stats(pred, np.sin(x_test[:, :1]))
        >>> round(stats.mu, 4), round(stats.sigma, 4), round(stats.eps, 4)
        (0.1992, 0.1142, 0.5731)
        >>> bool(np.isclose(stats.var_diag + stats.var_offdiag, stats.var))
        True
        >>> round(stats.eps_at(5), 4)
        0.7633
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


__all__ = ["LossStats", "eps_floor", "eps_for_test_size", "eps_population", "loss_stats", "uniform_floor",
           "var_for_test_size"]
