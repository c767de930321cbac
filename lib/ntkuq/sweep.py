"""Test-loss statistics at every size of a nested training set from one pair of Cholesky factors.

For training sets that are prefixes of one permutation, the kernel of the first n points is the
leading n x n block of the largest kernel, and the Cholesky factor of a leading block is the leading
block of the factor.  So one O(N^3) factorization per kernel serves every size, and so does every
forward triangular solve: (L^{-1} B)[:n] = L_n^{-1} B[:n].  (This needs a constant diagonal
regularization, as used here.)

With Theta = U^T U (NTK) and K + r = C C^T (NNGP, r = diag_reg), write
    Z = U^{-T} Theta_Xs,  X = C^{-1} K_Xs          (N x N_T, forward solves shared by all sizes)
    V_n = U_n^{-1} Z_n,   D_n = C_n^T V_n - X_n    (per size: one back solve, one triangular product)
Then for the training prefix of size n
    NNGP posterior:  m = X_n^T (C^{-1} Y)_n,   S = K_ss - X_n^T X_n
    NTK, t = inf:    m = Z_n^T (U^{-T} Y)_n,   S = K_ss - X_n^T X_n + D_n^T D_n - r V_n^T V_n
(the NTK form equals K_ss - K_sX V - V^T (K_Xs - K V), expanded with K = C C^T - r; the D_n^T D_n form
shows that the NTK ensemble's covariance exceeds the posterior's by a PSD term when r = 0).
tr S, ||S||_F^2 and R^T S R are accumulated over panels of test rows (upper-triangular tiles of the
test-test kernel, each computed once for all sizes and both methods): K_ss is never held whole.

Memory (float64): one N x N buffer holds Theta in one triangle and K in the other, then both factors
(the diagonals are swapped in and out), the cross kernels become Z and X in place, and D_n is kept for
every size until the test-row pass; `linalg.nested_sweep_memory` counts it, and the sweep refuses
before allocating if it does not fit.  Operation counts: `linalg.nested_sweep_flops`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Sequence

import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from . import linalg
from ._checks import check_inputs, check_int, check_positive
from .kernels import auto_nodes, diag_layers, kernel_tile
from .lossstats import LossStats
from .spec import MLPSpec

TILE = 1024
"""Kernel tile size (rows and columns) and test-row panel height."""

last_timings: Dict[str, float] = {}
"""Wall-clock seconds of each phase of the latest `nested_sweep` (for benchmarks/bench_infinite.py)."""


@dataclass(frozen=True)
class SweepPoint:
    """The statistics at one training-set size."""

    n_train: int
    method: str
    stats: LossStats


def _check_args(x_train, y_train, x_test, y_test, sizes, methods, diag_reg):
    sizes = [int(n) for n in sizes]
    if np.ndim(x_train) != 2:
        check_inputs(x_train, "x_train")  # raises the usual message
    pool = np.shape(x_train)[0]
    if not sizes or sizes[0] < 1 or any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[-1] > pool:
        raise ValueError(f"sizes: expected strictly increasing positive sizes up to {pool}, got {sizes}")
    unknown = set(methods) - {"ntk", "nngp"}
    if unknown or not methods:
        raise ValueError(f"methods: expected a non-empty subset of ('ntk', 'nngp'), got {tuple(methods)}")
    n = sizes[-1]  # only the rows used are converted (one float64 copy of them is all the sweep keeps)
    x_train = check_inputs(x_train[:n], "x_train")
    y_train = check_inputs(y_train, "y_train", n_rows=pool)[:n]
    x_test = check_inputs(x_test, "x_test", n_features=x_train.shape[1])
    y_test = check_inputs(y_test, "y_test", n_rows=x_test.shape[0])
    if y_test.shape[1] != y_train.shape[1]:
        raise ValueError(f"y_test: expected {y_train.shape[1]} output columns to match y_train, got {y_test.shape[1]}")
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    return x_train, y_train, x_test, y_test, sizes, diag_reg


def sweep_memory(n_train: int, n_test: int, sizes: Sequence[int], *, n_features: int, n_out: int,
                 diag_reg: float = 0.0) -> int:
    """Estimated peak bytes of `nested_sweep` for these sizes (see linalg.nested_sweep_memory)."""
    extra = 8 * sum(sizes) * n_test if diag_reg > 0 else 0  # V_n kept for the -r V^T V term
    return linalg.nested_sweep_memory(n_train, n_test, sizes, n_features=n_features, n_out=n_out,
                                      block=TILE) + extra


def _fit_message(n: int, t: int, sizes: Sequence[int], n_features: int, n_out: int, diag_reg: float,
                 budget: int) -> str:
    """What would fit instead: the largest N_D at this N_T (sizes scaled) and the largest N_T at this N_D."""
    def scaled(m):
        return [max(1, s * m // n) for s in sizes]

    n_fit = linalg.largest_fitting(lambda m: sweep_memory(m, t, scaled(m), n_features=n_features, n_out=n_out,
                                                          diag_reg=diag_reg), 1, n, budget)
    t_fit = linalg.largest_fitting(lambda u: sweep_memory(n, u, sizes, n_features=n_features, n_out=n_out,
                                                          diag_reg=diag_reg), 1, t, budget)
    return (f"at N_T = {t} up to N_D = {n_fit} fits (sizes scaled down), at N_D = {n} up to N_T = {t_fit}"
            if n_fit or t_fit else "nothing of this shape fits")


def nested_sweep(spec: MLPSpec, x_train, y_train, x_test, y_test, sizes: Sequence[int], *,
                 methods: Sequence[str] = ("ntk", "nngp"), diag_reg: float = 0.0,
                 block_size: int = TILE, progress: bool = False) -> List[SweepPoint]:
    """mu_L, sigma_L, eps_L of the t = infinity NTK ensemble and/or NNGP posterior for each prefix size.

    The training set of size n is the first n rows of x_train.  Refuses with a MemoryError (naming what
    would fit) before allocating if the estimated peak memory exceeds what is available, and with a
    ValueError naming diag_reg if either train-train kernel is too ill-conditioned for about six
    correct digits of mu_L.  Both Cholesky factors are computed whatever `methods` asks for (the NTK
    covariance uses the NNGP factor)."""
    x_train, y_train, x_test, y_test, sizes, diag_reg = _check_args(x_train, y_train, x_test, y_test, sizes,
                                                                    methods, diag_reg)
    block = check_int(block_size, "block_size")
    n, t, k = sizes[-1], x_test.shape[0], y_train.shape[1]
    need = sweep_memory(n, t, sizes, n_features=x_train.shape[1], n_out=k, diag_reg=diag_reg)
    budget = linalg.available_bytes()
    if need > budget:
        linalg.check_memory(need, f"nested_sweep with N_D = {n}, N_T = {t}, {len(sizes)} sizes", budget=budget,
                            fits=_fit_message(n, t, sizes, x_train.shape[1], k, diag_reg, budget))
    y = np.asarray(y_train, dtype=np.float64)
    y_test = np.asarray(y_test, dtype=np.float64)
    clock = [time.perf_counter()]
    last_timings.clear()

    def lap(name):
        clock.append(time.perf_counter())
        last_timings[name] = last_timings.get(name, 0.0) + clock[-1] - clock[-2]

    nq = auto_nodes(spec, x_train, x_test)  # quadrature nodes (tanh, GELU), the same for every kernel block
    a, kdiag, thxs, kxs = _train_kernels(spec, x_train, x_test, block, diag_reg, progress, nq)
    lap("kernels")
    af = a.T  # Fortran view: Theta in its upper triangle, K below the diagonal
    # NTK: Theta + r = U^T U in place; Z = U^{-T} Theta_Xs in place (thxs is N_T x N C-order = N x N_T Fortran).
    _factor(af, lower=False, what="NTK", diag_reg=diag_reg, lap=lap, trace=float(np.trace(a)))
    z = linalg.trsm_inplace(af, thxs.T, lower=False, trans=True)
    zy = linalg.trsm_inplace(af, np.asfortranarray(y), lower=False, trans=True)
    udiag = np.diag(a).copy()
    np.fill_diagonal(a, kdiag + diag_reg)
    lap("forward")
    # NNGP: K + r = C C^T in place (the other triangle); X = C^{-1} K_Xs in place.
    _factor(af, lower=True, what="NNGP", diag_reg=diag_reg, lap=lap, trace=float(np.trace(a)))
    x = linalg.trsm_inplace(af, kxs.T, lower=True, trans=False)
    cy = linalg.trsm_inplace(af, np.asfortranarray(y), lower=True, trans=False)
    cdiag = np.diag(a).copy()
    lap("forward")

    means: Dict[tuple, np.ndarray] = {}
    d_of: Dict[int, np.ndarray] = {}
    v_of: Dict[int, np.ndarray] = {}
    for size in sorted(sizes, reverse=True):
        means[("nngp", size)] = x[:size].T @ cy[:size]
        if "ntk" not in methods:
            continue
        means[("ntk", size)] = z[:size].T @ zy[:size]
        f = af if size == n else np.array(af[:size, :size], order="F")
        np.fill_diagonal(f, udiag[:size])
        v = np.array(z[:size], order="F")
        linalg.trsm_inplace(f, v, lower=False, trans=False)  # V_n = U_n^{-1} Z_n
        if diag_reg > 0:
            v_of[size] = v.T.copy()
        np.fill_diagonal(f, cdiag[:size])
        linalg.trmm_inplace(f, v, lower=True, trans=True)  # C_n^T V_n
        v -= x[:size]
        d_of[size] = v.T  # N_T x n, C-ordered
        del f
    lap("per_size")
    del a, af, z, thxs, zy, cy, udiag, cdiag
    xc = x.T  # N_T x N, C-ordered
    stats = _test_rows(spec, x_test, y_test, xc, d_of, v_of, means, sizes, methods, diag_reg, block, progress, nq)
    lap("test_rows")
    return [SweepPoint(size, m, stats[(m, size)]) for m in methods for size in sizes]


def _rows(x, d, r0: int, block: int):
    """Rows r0:r0+block of the inputs and of their layer diagonals, zero-padded to `block` rows (a fixed tile
    shape compiles once; padding only the last tile keeps the inputs from being copied whole)."""
    xi, di = x[r0:r0 + block], d[:, r0:r0 + block]
    pad = block - xi.shape[0]
    if pad:  # NumPy on the host: no compilation per padding amount
        xi, di = np.pad(xi, ((0, pad), (0, 0))), np.pad(di, ((0, 0), (0, pad)))
    return xi, di


def _train_kernels(spec, x_train, x_test, block, diag_reg, progress, nq):
    """The packed train-train buffer (Theta lower incl. diagonal + r, K strictly upper), diag(K), and the
    cross kernels Theta_sX, K_sX as N_T x N C-ordered arrays; tiles of block x block, lower half only."""
    n, t = x_train.shape[0], x_test.shape[0]
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    dx, ds = np.asarray(diag_layers(spec, x_train, n_quad=nq)), np.asarray(diag_layers(spec, x_test, n_quad=nq))
    a = np.empty((n, n))
    kdiag = np.empty(n)
    thsx, ksx = np.empty((t, n)), np.empty((t, n))
    rows = linalg.tile_ranges(n, block)
    cols = linalg.tile_ranges(t, block)
    total = len(rows) * (len(rows) + 1) // 2 + len(rows) * len(cols)
    bar = tqdm(total=total, desc="kernels", disable=not progress)
    for i, (r0, r1) in enumerate(rows):
        xi, di = _rows(x_train, dx, r0, block)
        for c0, c1 in rows[:i + 1]:
            xj, dj = _rows(x_train, dx, c0, block)
            kk, th = (np.asarray(v) for v in kernel_tile(spec, xi, xj, di, dj, n_quad=nq))
            kk, th = kk[:r1 - r0, :c1 - c0], th[:r1 - r0, :c1 - c0]
            if c0 == r0:
                kdiag[r0:r1] = np.diag(kk)
                a[r0:r1, r0:r1] = np.tril(th) + np.triu(kk.T, 1)
            else:
                a[r0:r1, c0:c1] = th
                a[c0:c1, r0:r1] = kk.T
            bar.update()
        for s0, s1 in cols:  # test rows x these train columns
            xs_, ds_ = _rows(x_test, ds, s0, block)
            kk, th = kernel_tile(spec, xs_, xi, ds_, di, n_quad=nq)
            ksx[s0:s1, r0:r1] = np.asarray(kk)[:s1 - s0, :r1 - r0]
            thsx[s0:s1, r0:r1] = np.asarray(th)[:s1 - s0, :r1 - r0]
            bar.update()
    bar.close()
    a[np.diag_indices(n)] += diag_reg
    return a, kdiag, thsx, ksx


def _factor(af: np.ndarray, *, lower: bool, what: str, diag_reg: float, lap, trace: float) -> None:
    """Factor the lower (NNGP) or upper (NTK) triangle of the Fortran view af in place, then check it."""
    info = linalg.cholesky_inplace(af, lower=lower)
    lap("cholesky")
    linalg.require_well_conditioned(af, lower=lower, info=info, what=what, diag_reg=diag_reg, trace=trace)
    lap("condition")


def _test_rows(spec, x_test, y_test, xc, d_of, v_of, means, sizes, methods, diag_reg, block, progress, nq):
    """One pass over panels of test rows: upper-triangular K_ss tiles, S panels for every size and method."""
    t = x_test.shape[0]
    x_test = np.asarray(x_test)
    ds = np.asarray(diag_layers(spec, x_test, n_quad=nq))
    resid = {key: means[key] - y_test for key in means}
    acc = {key: np.zeros(3) for key in resid if key[0] in methods}  # trace, ||S||_F^2, sum_i R_i^T S R_i
    panels = linalg.tile_ranges(t, block)
    for i, (r0, r1) in enumerate(tqdm(panels, desc="test rows", disable=not progress)):
        xq, dq = _rows(x_test, ds, r0, block)
        tiles = []
        for c0, c1 in panels[i:]:
            xc0, dc0 = _rows(x_test, ds, c0, block)
            tiles.append(np.asarray(kernel_tile(spec, xq, xc0, dq, dc0, n_quad=nq)[0])[:r1 - r0, :c1 - c0])
        kss = np.concatenate(tiles, axis=1)
        del tiles
        w = r1 - r0
        for size in sizes:
            xr, xall = xc[r0:r1, :size], xc[r0:, :size]
            s = kss - xr @ xall.T
            if "nngp" in methods:
                _accumulate(acc[("nngp", size)], s, resid[("nngp", size)], r0, r1, w)
            if "ntk" in methods:
                dd = d_of[size]
                s += dd[r0:r1] @ dd[r0:].T
                if diag_reg > 0:
                    vv = v_of[size]
                    s -= diag_reg * (vv[r0:r1] @ vv[r0:].T)
                _accumulate(acc[("ntk", size)], s, resid[("ntk", size)], r0, r1, w)
    out = {}
    for (m, size), (trace, fro2, rsr) in acc.items():
        r = resid[(m, size)]
        norm = t * r.shape[1]
        bias2 = float(np.sum(r**2))
        mu = (bias2 + r.shape[1] * trace) / norm
        var = (2 * r.shape[1] * fro2 + 4 * rsr) / norm**2
        out[(m, size)] = LossStats(mu, float(np.sqrt(max(var, 0.0))), t, r.shape[1], bias2, float(trace),
                                   float(fro2), float(rsr))
    return out


def _accumulate(acc: np.ndarray, s: np.ndarray, r: np.ndarray, r0: int, r1: int, w: int) -> None:
    """Add a panel S[r0:r1, r0:] (diagonal tile first) to (trace, ||S||_F^2, sum_i R_i^T S R_i)."""
    sq = s[:, :w]
    flat = s.reshape(-1)  # s is a fresh C-ordered panel: ||panel||^2 by one dot product
    rr = r[r0:r1]
    sq2 = float(np.einsum("ij,ij->", sq, sq))
    acc[0] += np.trace(sq)
    acc[1] += 2.0 * float(flat @ flat) - sq2
    sr = s @ r[r0:]  # (rows, k): diagonal tile and off-diagonal part together
    diag_part = float(np.sum(rr * (sq @ rr)))
    acc[2] += 2.0 * float(np.sum(rr * sr)) - diag_part
