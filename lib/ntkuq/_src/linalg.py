"""Dense float64 linear algebra for kernel matrices: checked Cholesky, solves, condition estimates.

`checked_cholesky` factors a train-train kernel (plus diag_reg) and refuses it, naming a diag_reg that
would do, when it is too ill-conditioned for about six digits of mu_L; `cho_solve` solves with the
factor; `largest_eigenvalue` serves the learning-rate rule of `ntkuq.infinite.gains`.  The condition
estimates read factors passed to BLAS in Fortran order: a C-ordered N x N array `a` is handed over as
`a.T`, so "upper" for BLAS is the lower triangle of `a` as NumPy prints it.

Conditioning.  A Cholesky solve in float64 is backward stable, so the solution of A x = b carries a
relative error of about cond(A) * u (u = 1.1e-16), and so does every statistic computed from it.  The
squared ratio of extreme Cholesky pivots bounds 1/cond(A) from above but can overestimate it by 10^3
to 10^4; `cond_estimate` instead runs a few steps of power iteration (lambda_max) and inverse
iteration (lambda_min) with the factor, O(N^2) each, and is typically within a factor of two of the
2-norm condition number.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from scipy.linalg import blas
from scipy.sparse.linalg import eigsh

Array = jax.Array

MAX_COND = 1e10
"""Largest accepted (estimated) 2-norm condition number of a train-train kernel plus diag_reg.

The first-order bound on the relative error of a Cholesky solve is about cond * u = 1.1e-6 here.
Measured on erf kernels of 2-D inputs (tests/test_linalg.py): the relative error of mu_L was at most
about 3e-18 * cond, so kernels at the limit give mu_L to about 1e-7; the ReLU kernels of MNIST and
CIFAR-10 at N_D = 4000 have cond 1e5 (NTK) to 3e7 (NNGP)."""


def extreme_eigenvalues(factor: np.ndarray, *, lower: bool, steps: int = 3, n_vectors: int = 4,
                        seed: int = 0) -> Tuple[float, float]:
    """Estimates (lambda_max, lambda_min) of A = F F^T (lower) or F^T F (upper) from its Cholesky factor F.

    `factor` is an N x N array whose `lower` or upper triangle (with the diagonal) holds F; only that
    triangle is read.  Power iteration on A and inverse iteration on A^{-1} (two triangular products or
    solves per step, O(N^2) each: 4 steps - 2 passes over the factor in all) with a block of `n_vectors`
    random starts.  Both are Rayleigh quotients, so lambda_max is estimated from below and lambda_min
    from above: the ratio is a lower bound on cond(A), usually within a factor of two of it.  A zero or
    non-finite pivot gives lambda_min = 0.

    Args:
        factor: the N x N array holding the Cholesky factor F in one triangle (float64).
        lower: True if F is the lower triangle (A = F F^T), False if the upper one (A = F^T F).
        steps: iterations of the inverse iteration (default 3; the power iteration takes max(1, steps - 1)).
        n_vectors: random start vectors iterated together (default 4).
        seed: the seed of the random starts (default 0).

    Returns:
        (lambda_max, lambda_min): the estimates, (inf, 0) for a zero or non-finite diagonal.
    """
    f = np.asfortranarray(factor)
    d = np.diag(f)
    if not np.all(np.isfinite(d)) or np.min(np.abs(d)) == 0.0:
        return math.inf, 0.0
    n = f.shape[0]
    rng = np.random.default_rng(seed)
    x = np.asfortranarray(rng.standard_normal((n, n_vectors)))
    y = x.copy(order="F")
    first = 1 if lower else 0  # A = F F^T: apply F^T first (lower); A = F^T F: apply F first (upper)
    lam_max = 0.0
    for _ in range(max(1, steps - 1)):  # kernel matrices: lambda_max is well separated, fewer steps suffice
        x /= np.linalg.norm(x, axis=0)
        ax = blas.dtrmm(1.0, f, x, lower=int(lower), trans_a=first)
        ax = blas.dtrmm(1.0, f, ax, lower=int(lower), trans_a=1 - first, overwrite_b=1)
        lam_max = max(lam_max, float(np.max(np.sum(x * ax, axis=0))))
        x = ax
    inv_max = 0.0
    for _ in range(steps):  # A^{-1} = F^{-T} F^{-1} (lower) or F^{-1} F^{-T} (upper)
        y /= np.linalg.norm(y, axis=0)
        ay = blas.dtrsm(1.0, f, y, lower=int(lower), trans_a=1 - first)
        ay = blas.dtrsm(1.0, f, ay, lower=int(lower), trans_a=first, overwrite_b=1)
        if not np.all(np.isfinite(ay)):
            return lam_max, 0.0
        inv_max = max(inv_max, float(np.max(np.sum(y * ay, axis=0))))
        y = ay
    return lam_max, (1.0 / inv_max if inv_max > 0 else 0.0)


def cond_estimate(factor: np.ndarray, *, lower: bool, **kwargs) -> float:
    """Estimated 2-norm condition number of A from its Cholesky factor (see `extreme_eigenvalues`).

    Args:
        factor: the N x N array holding the Cholesky factor F in one triangle (float64).
        lower: True if F is the lower triangle (A = F F^T), False if the upper one (A = F^T F).
        **kwargs: passed to `extreme_eigenvalues` (steps, n_vectors, seed).

    Returns:
        lambda_max / lambda_min, or inf if the estimated lambda_min is 0 (singular).
    """
    lam_max, lam_min = extreme_eigenvalues(factor, lower=lower, **kwargs)
    return lam_max / lam_min if lam_min > 0 else math.inf


def require_well_conditioned(factor: np.ndarray, *, lower: bool, info: int, what: str, diag_reg: float,
                             trace: Optional[float] = None) -> float:
    """The estimated condition number of the factored kernel, or a ValueError naming diag_reg if it exceeds MAX_COND.

    `info` is LAPACK's potrf result (nonzero: not positive definite in floating point); `trace`, the
    kernel's trace, scales the suggested diag_reg when the factorization failed.

    Args:
        factor: the N x N array holding the Cholesky factor in one triangle (read only when info == 0).
        lower: True if the factor is in the lower triangle, False if in the upper one.
        info: LAPACK's potrf result; nonzero means the factorization failed.
        what: the kernel's name in the error message ('NTK', 'NNGP').
        diag_reg: the ridge already added to the kernel's diagonal, quoted in the message.
        trace: the trace of the kernel plus diag_reg; None (default) if unknown (no suggestion after a failure).

    Returns:
        The estimated 2-norm condition number (at most MAX_COND).

    Raises:
        ValueError: if the factorization failed or the estimated condition number exceeds MAX_COND.
    """
    lam_max, lam_min = (math.inf, 0.0) if info != 0 else extreme_eigenvalues(factor, lower=lower)
    cond = lam_max / lam_min if lam_min > 0 else math.inf
    if not cond <= MAX_COND:
        scale = lam_max if math.isfinite(lam_max) else (trace if trace is not None else float("nan"))
        detail = ("not positive definite in floating point" if info != 0 else
                  f"estimated condition number {cond:.2g} > {MAX_COND:g}")
        raise ValueError(
            f"diag_reg: the {what} train-train kernel plus diag_reg={diag_reg:g} is too ill-conditioned for about six "
            f"correct digits of mu_L ({detail}; duplicate or nearly collinear training inputs?); expected a larger "
            f"diag_reg, e.g. {2.0 * scale / MAX_COND:.2g}")
    return cond


@jax.jit
def _cholesky(m: Array, diag_reg: float) -> Array:
    return jnp.linalg.cholesky(m + diag_reg * jnp.eye(m.shape[0], dtype=m.dtype))


def checked_cholesky(m: Array, diag_reg: float, what: str) -> Array:
    """Lower Cholesky factor of m + diag_reg I, or a ValueError naming diag_reg if it is too ill-conditioned.

    The condition number is estimated from the factor in O(N^2) (`extreme_eigenvalues`) and must not
    exceed MAX_COND (`require_well_conditioned`).

    Args:
        m: a symmetric positive semi-definite N x N kernel matrix (float64).
        diag_reg: added to the diagonal before factoring (>= 0).
        what: the kernel's name in the error message ('NTK', 'NNGP').

    Returns:
        The lower-triangular factor L with L L^T = m + diag_reg I.

    Raises:
        ValueError: if the factorization fails or the estimated condition number exceeds MAX_COND.
    """
    chol = _cholesky(m, diag_reg)
    finite = bool(jnp.all(jnp.isfinite(chol)))
    # L L^T = U^T U with U = L^T: the transpose of the C-ordered factor is a Fortran-ordered upper factor.
    require_well_conditioned(np.asarray(chol).T if finite else np.full((1, 1), np.nan), lower=False,
                             info=0 if finite else 1, what=what, diag_reg=diag_reg,
                             trace=float(jnp.trace(m)) + m.shape[0] * diag_reg)
    return chol


@jax.jit
def cho_solve(chol: Array, b: Array) -> Array:
    """X = A^{-1} b for A = chol chol^T (chol lower triangular, e.g. from `checked_cholesky`): two triangular solves.

    A leading block chol[:n, :n] is the factor of the leading block of A (nested training sets).

    Args:
        chol: the lower Cholesky factor of A, N x N.
        b: the right-hand side(s), N or N x k.

    Returns:
        A^{-1} b, of the shape of `b`.
    """
    return solve_triangular(chol, solve_triangular(chol, b, lower=True), lower=True, trans=1)


def largest_eigenvalue(m, *, lanczos_above: Optional[int] = None) -> float:
    """lambda_max of a symmetric matrix: a full eigvalsh, or Lanczos for N > lanczos_above (None: never).

    Lanczos is scipy's eigsh (tol 1e-12) from the all-ones start vector, so it is reproducible bit for
    bit; on NTKs it agrees with eigvalsh to ~1e-15 at N = 4096 and takes 0.2 s instead of ~25 s on 2 cores.

    Args:
        m: a symmetric N x N matrix.
        lanczos_above: use Lanczos when N exceeds it; None (default) never uses Lanczos.

    Returns:
        The largest eigenvalue.
    """
    n = m.shape[0]
    if lanczos_above is None or n <= lanczos_above:
        return float(jnp.linalg.eigvalsh(m)[-1])
    return float(eigsh(np.asarray(m), k=1, which="LA", return_eigenvectors=False, tol=1e-12, v0=np.ones(n))[0])


__all__ = ["MAX_COND", "checked_cholesky", "cho_solve", "cond_estimate", "extreme_eigenvalues",
           "largest_eigenvalue", "require_well_conditioned"]
