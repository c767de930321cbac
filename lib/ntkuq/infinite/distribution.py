"""The exact distribution of the test loss over the Gaussian ensemble, and Monte Carlo draws of it.

With S = U diag(lam) U^T and B = U^T R (R the residuals of the mean), L is a generalized chi-square
variable: L = sum_j w_j chi'^2_k(nc_j), w_j = lam_j / (N_T k), nc_j = sum_i B_ji^2 / lam_j.  Its CDF and
density come from Gil-Pelaez inversion of the characteristic function (Davies' trapezoid rule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ntkuq._src.checks import check_fraction, check_int, check_positive, check_real
from ntkuq.infinite.lossstats import _real_vector, _residual
from ntkuq.infinite.predict import EnsemblePrediction


@dataclass(frozen=True)
class GeneralizedChi2:
    """L = offset + sum_j w_j X_j with X_j ~ noncentral chi-square (dof degrees of freedom, noncentrality nc_j).

    Attributes:
        weights: the weights w_j (>= 0), a 1-D array.
        nc: the noncentralities nc_j (>= 0), one per weight.
        dof: the degrees of freedom of every X_j.
        offset: the constant added to the sum.
    """

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
        """Logarithm of the characteristic function E[exp(i u L)].

        Args:
            u: the real arguments (any shape).

        Returns:
            The complex logarithms, of u's shape.
        """
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
        """P(L <= x) by Gil-Pelaez inversion of the characteristic function (Davies' trapezoid rule).

        Args:
            x: the points, a number or real numbers.

        Returns:
            The probabilities, a 1-D array (one per point).
        """
        total, _ = self._invert(x, lambda v, m: v.imag / m)
        return np.clip(0.5 - total / np.pi, 0.0, 1.0)

    def pdf(self, x) -> np.ndarray:
        """The density of L, by the same inversion.

        Args:
            x: the points, a number or real numbers.

        Returns:
            The densities, a 1-D array (one per point).
        """
        total, h = self._invert(x, lambda v, m: v.real)
        return np.maximum(h / np.pi * total, 0.0)

    def quantile(self, q):
        """The q-quantile of L (0 < q < 1), by root finding on the CDF; an array of levels gives an array.

        Levels below 100 times the inversion's error at the lower end (the computed CDF at the offset, where
        the true one is 0: about 1e-12 for many weights, more for few weights with dof = 1) are refused with
        that error named, rather than answered wrongly.

        Args:
            q: the level, or a list, tuple or array of levels.

        Returns:
            The quantile, a float (an array of the levels' shape for several levels).

        Raises:
            ValueError: a level below 100 times the CDF's numerical error at the lower end, or beyond its
                accuracy at the upper end.
        """
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
        """N independent draws of L (from its chi-square representation).

        Args:
            n: the number of draws.
            seed: the seed of NumPy's default generator.

        Returns:
            The draws, an array of shape (n,).
        """
        rng = np.random.default_rng(seed)
        draws = rng.noncentral_chisquare(self.dof, np.maximum(self.nc, 1e-300), size=(n, self.weights.size))
        return self.offset + draws @ self.weights


def loss_distribution(pred: EnsemblePrediction, y_test, *, rtol: float = 1e-12) -> GeneralizedChi2:
    """The exact distribution of L; eigendecomposes the full S, so N_T up to a few thousand.

    Args:
        pred: the ensemble's Gaussian prediction on the test set (`ntk_prediction`, `nngp_posterior`).
        y_test: the test targets, N_T x k.
        rtol: eigenvalues of S up to rtol times the largest are dropped, their squared bias going into the offset.

    Returns:
        GeneralizedChi2: the distribution of L.
    """
    rtol = check_positive(rtol, "rtol")
    r = np.asarray(_residual(pred, y_test))
    n_t, k = r.shape
    lam, U = np.linalg.eigh(np.asarray(pred.cov()))
    b2 = np.sum((U.T @ r) ** 2, axis=1)
    keep = lam > rtol * max(lam[-1], 0.0)
    offset = float(np.sum(b2[~keep]) / (n_t * k))
    return GeneralizedChi2(lam[keep] / (n_t * k), b2[keep] / lam[keep], k, offset)


def sample_test_losses(pred: EnsemblePrediction, y_test, n_samples: int, *, seed: int = 0) -> np.ndarray:
    """Monte Carlo: draw the ensemble's test outputs z ~ N(m, S) per component and return their losses.

    Args:
        pred: the ensemble's Gaussian prediction on the test set (`ntk_prediction`, `nngp_posterior`).
        y_test: the test targets, N_T x k.
        n_samples: the number of draws.
        seed: the seed of NumPy's default generator (>= 0).

    Returns:
        The test losses L of the draws, an array of shape (n_samples,).
    """
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


__all__ = ["GeneralizedChi2", "loss_distribution", "sample_test_losses"]
