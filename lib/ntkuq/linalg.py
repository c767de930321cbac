"""Dense float64 linear algebra for kernel matrices: in-place Cholesky, condition estimates, memory checks.

The large t = infinity computations (lib/ntkuq/sweep.py) work on NumPy arrays with LAPACK/BLAS called
through scipy, in place, so that the memory a computation needs is known before it starts and no
hidden copy doubles it.  Matrices are passed to LAPACK in Fortran order: a C-ordered N x N array `a`
is handed over as `a.T`, so "upper" for LAPACK is the lower triangle of `a` as NumPy prints it.

Conditioning.  A Cholesky solve in float64 is backward stable, so the solution of A x = b carries a
relative error of about cond(A) * u (u = 1.1e-16), and so does every statistic computed from it.  The
squared ratio of extreme Cholesky pivots bounds 1/cond(A) from above but can overestimate it by 10^3
to 10^4; `cond_estimate` instead runs a few steps of power iteration (lambda_max) and inverse
iteration (lambda_min) with the factor, O(N^2) each, and is typically within a factor of two of the
2-norm condition number.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy.linalg import blas, lapack

MAX_COND = 1e10
"""Largest accepted (estimated) 2-norm condition number of a train-train kernel plus diag_reg.

The first-order bound on the relative error of a Cholesky solve is about cond * u = 1.1e-6 here.
Measured on erf kernels of 2-D inputs (tests/test_linalg.py): the relative error of mu_L was at most
about 3e-18 * cond, so kernels at the limit give mu_L to about 1e-7; the ReLU kernels of MNIST and
CIFAR-10 at N_D = 4000 have cond 1e5 (NTK) to 3e7 (NNGP)."""

GIB = 2**30


def extreme_eigenvalues(factor: np.ndarray, *, lower: bool, steps: int = 3, n_vectors: int = 4,
                        seed: int = 0) -> Tuple[float, float]:
    """Estimates (lambda_max, lambda_min) of A = F F^T (lower) or F^T F (upper) from its Cholesky factor F.

    `factor` is an N x N array whose `lower` or upper triangle (with the diagonal) holds F; only that
    triangle is read.  Power iteration on A and inverse iteration on A^{-1} (two triangular products or
    solves per step, O(N^2) each: 4 steps - 2 passes over the factor in all) with a block of `n_vectors`
    random starts.  Both are Rayleigh
    quotients, so lambda_max is estimated from below and lambda_min from above: the ratio is a lower
    bound on cond(A), usually within a factor of two of it.  A zero or non-finite pivot gives lambda_min = 0."""
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
    """Estimated 2-norm condition number of A from its Cholesky factor (see `extreme_eigenvalues`); inf if singular."""
    lam_max, lam_min = extreme_eigenvalues(factor, lower=lower, **kwargs)
    return lam_max / lam_min if lam_min > 0 else math.inf


def require_well_conditioned(factor: np.ndarray, *, lower: bool, info: int, what: str, diag_reg: float,
                             trace: Optional[float] = None) -> float:
    """The estimated condition number of the factored kernel, or a ValueError naming diag_reg if it exceeds MAX_COND.

    `info` is LAPACK's potrf result (nonzero: not positive definite in floating point); `trace`, the
    kernel's trace, scales the suggested diag_reg when the factorization failed."""
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


def _openblas_threads():
    """(get, set) for the OpenBLAS that scipy's LAPACK uses, or None where it cannot be found."""
    import ctypes
    import glob

    import scipy
    for path in glob.glob(os.path.join(os.path.dirname(scipy.__file__), os.pardir, "scipy.libs", "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
            return lib.scipy_openblas_get_num_threads, lib.scipy_openblas_set_num_threads
        except (OSError, AttributeError):
            continue
    return None


_THREADS = None


def cholesky_threads() -> Optional[int]:
    """Threads for LAPACK's Cholesky: NTKUQ_CHOLESKY_THREADS if set, else 1 when the machine is busy (1-minute
    load average above the number of cores), else None (OpenBLAS's default).

    Measured on the shared 2-core machine: under a load average of 5 to 10, OpenBLAS's two-thread potrf
    was 10 to 30 times slower than one thread (its recursive algorithm synchronizes its threads many times,
    and a descheduled partner stalls each), while its matrix product only lost what the other jobs took."""
    env = os.environ.get("NTKUQ_CHOLESKY_THREADS")
    if env:
        return int(env)
    try:
        busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:  # pragma: no cover
        busy = False
    return 1 if busy else None


def cholesky_inplace(a_fortran: np.ndarray, *, lower: bool) -> int:
    """Overwrite the `lower` (or upper) triangle of the Fortran-ordered square array with its Cholesky factor.

    Returns LAPACK's info (0 on success, i > 0 if the leading i x i minor is not positive definite).
    The other triangle is neither read nor written."""
    if not a_fortran.flags.f_contiguous or a_fortran.dtype != np.float64:
        raise ValueError("a_fortran: expected a Fortran-contiguous float64 array (it is factored in place)")
    global _THREADS
    threads = cholesky_threads()
    if threads is not None and _THREADS is None:
        _THREADS = _openblas_threads() or False
    saved = _THREADS[0]() if threads is not None and _THREADS else None
    if saved is not None:
        _THREADS[1](threads)
    try:
        c, info = lapack.dpotrf(a_fortran, lower=int(lower), clean=0, overwrite_a=1)
    finally:
        if saved is not None:
            _THREADS[1](saved)
    if not np.shares_memory(c, a_fortran):  # pragma: no cover - scipy always honours overwrite_a here
        a_fortran[...] = c
    return int(info)


def trsm_inplace(factor: np.ndarray, b_fortran: np.ndarray, *, lower: bool, trans: bool) -> np.ndarray:
    """b <- op(F)^{-1} b in place for a Fortran-ordered right-hand side (op = transpose if `trans`)."""
    if not b_fortran.flags.f_contiguous:
        raise ValueError("b_fortran: expected a Fortran-contiguous array (it is overwritten)")
    out = blas.dtrsm(1.0, factor, b_fortran, lower=int(lower), trans_a=int(trans), overwrite_b=1)
    if not np.shares_memory(out, b_fortran):  # pragma: no cover
        b_fortran[...] = out
    return b_fortran


def trmm_inplace(factor: np.ndarray, b_fortran: np.ndarray, *, lower: bool, trans: bool) -> np.ndarray:
    """b <- op(F) b in place for a Fortran-ordered right-hand side (op = transpose if `trans`)."""
    if not b_fortran.flags.f_contiguous:
        raise ValueError("b_fortran: expected a Fortran-contiguous array (it is overwritten)")
    out = blas.dtrmm(1.0, factor, b_fortran, lower=int(lower), trans_a=int(trans), overwrite_b=1)
    if not np.shares_memory(out, b_fortran):  # pragma: no cover
        b_fortran[...] = out
    return b_fortran


# ---------------------------------------------------------------------------------------------
# Memory: what is available, and a clear refusal instead of an allocator crash.
# ---------------------------------------------------------------------------------------------

def available_bytes() -> int:
    """Memory this process may still use: NTKUQ_MEMORY_LIMIT_GIB if set, else MemAvailable (Linux), else 8 GiB."""
    env = os.environ.get("NTKUQ_MEMORY_LIMIT_GIB")
    if env:
        return int(float(env) * GIB)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return 8 * GIB  # pragma: no cover


def largest_fitting(estimate, lo: int, hi: int, budget: float) -> int:
    """The largest integer n in [lo, hi] with estimate(n) <= budget (0 if none): bisection on a monotone estimate."""
    if estimate(lo) > budget:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def nested_sweep_memory(n_train: int, n_test: int, sizes: Sequence[int], *, n_features: int, n_out: int,
                        block: int) -> int:
    """Peak bytes of `sweep.nested_sweep` (float64), counted array by array; see that module's docstring.

    Held at the peak (end of the per-size phase): the packed train-train buffer (N^2), the two N x N_T
    forward solutions, D_n for every size (sum n N_T), the copy of the largest proper leading block of
    the factors (n^2), the inputs and outputs (N_D + N_T) (n_features + 2 n_out), plus kernel tiles.
    The kernel phase (N^2 + 2 N N_T + tiles) and the test-row pass (N N_T + sum n N_T + row panels)
    need less."""
    n, t = int(n_train), int(n_test)
    sizes = [int(s) for s in sizes]
    proper = [s for s in sizes if s < n]
    per_size = n * n + 2 * n * t + sum(sizes) * t + (max(proper) ** 2 if proper else 0)
    inputs = (n + t) * (n_features + 2 * n_out)
    # kernel tiles: a few block x block arrays per activation layer (JAX temporaries), and row panels
    # of the test-test pass: a block x N_T kernel panel plus two S panels.
    tiles = 16 * block * block + 3 * block * t
    return 8 * (per_size + inputs + tiles) + 400 * 2**20  # + interpreter, JAX and BLAS overhead


def check_memory(needed: int, what: str, *, fits: str = "", budget: Optional[int] = None) -> None:
    """Raise MemoryError naming the sizes if `needed` bytes exceed the budget (available memory by default)."""
    budget = available_bytes() if budget is None else budget
    if needed > budget:
        raise MemoryError(f"{what} needs about {needed / GIB:.1f} GiB but only {budget / GIB:.1f} GiB is available"
                          f"{'; ' + fits if fits else ''} (set NTKUQ_MEMORY_LIMIT_GIB to change the budget)")


def nested_sweep_flops(n_train: int, n_test: int, sizes: Sequence[int], *, n_features: int,
                       methods: Sequence[str] = ("ntk", "nngp")) -> dict:
    """Leading floating-point operation counts of `sweep.nested_sweep`, by step (multiply and add counted apart).

    gram: the symmetric train-train Gram (N^2 d), train-test (2 N N_T d), test-test upper half (N_T^2 d);
    cholesky: N^3 / 3 per factor; forward: N^2 N_T per forward solve (shared by all prefixes);
    per_size: for each n, the back solve and the product with the NNGP factor (2 n^2 N_T) for the NTK;
    test_rows: for each n and method, the upper half of the N_T x N_T covariance (n N_T^2)."""
    n, t, d = int(n_train), int(n_test), int(n_features)
    ntk = "ntk" in methods
    both_factors = 2  # the NTK covariance uses the NNGP factor, so both are always computed
    out = {
        "gram": n * n * d + 2 * n * t * d + t * t * d,
        "cholesky": both_factors * n**3 / 3,
        "forward": both_factors * n * n * t,
        "per_size": (2 * sum(s * s for s in sizes) * t) if ntk else 0,
        "test_rows": len(methods) * sum(sizes) * t * t,
    }
    out["total"] = sum(out.values())
    return out


def tile_ranges(n: int, block: int) -> Sequence[Tuple[int, int]]:
    """[(start, stop), ...] covering range(n) in blocks of `block`."""
    return [(s, min(s + block, n)) for s in range(0, n, block)]
