"""The nested sweep's algebra: every prefix size from one pass of factorizations, triangular products and test panels.

Notation (science.md): training prefix of size n, test set s (N_T points), r = diag_reg, k outputs.  With the
Cholesky factors of the largest kernels, K + r = C C^T (NNGP) and Theta + r = L L^T (NTK), and the shared
forward substitutions (the leading rows of a forward solve are the forward solve of the leading block)

    X = C^{-1} K_Xs,   Z = L^{-1} Theta_Xs,   c = C^{-1} Y,   w = L^{-1} Y            (N x N_T, N x k)

the NNGP posterior of the prefix n has mean X_n^T c_n and covariance S_n = K_ss - X_n^T X_n, and the t = inf
NTK ensemble (V_n = (Theta_n + r)^{-1} Theta_Xs,n = L_n^{-T} Z_n) has mean Z_n^T w_n and covariance

    S_n^NTK = K_ss - K_sX V - V^T K_Xs + V^T K V = S_n + D_n^T D_n - r V_n^T V_n,    D_n = X_n - F_n^T Z_n,

F = L^{-1} C (lower triangular; F_n = L_n^{-1} C_n is its leading block).  Expanding D^T D with C_n C_n^T = K_n + r
and C_n X_n = K_Xs,n gives the middle form.  F_n^T Z_n and V_n = H_n^T Z_n (H = L^{-1}, needed only when r > 0)
are accumulated over the sizes in increasing order: going from size p to n adds F[p:n, :n]^T Z[p:n] (a product
with the new rows only), so all sizes together cost one triangular product N^2 N_T.

The statistics need tr S, ||S||_F^2 and sum_i R_i^T S R_i (lossstats).  They are accumulated over panels of
test rows (rows a:b, columns a: of the upper triangle; the diagonal tile counted once): the panel of K_ss is
computed once, the NNGP panel S_n is updated in place from size to size (minus X[p:n, rows]^T X[p:n, cols]:
T^2 (n - p) flops), and the NTK panel adds D_n[:, rows]^T D_n[:, cols] (T^2 n flops per size).  K_ss is never
held whole; nor is any N_T x N_T matrix.  `sweep_flops` counts the operations, `budget.sweep_bytes` the memory.

Everything is float64 NumPy on the host, through in-place BLAS on views (`blasviews`); kernel tiles come from
`kernels.kernel_tile`, and the symmetric train-train blocks are computed once per pair of tiles (lower half).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ntkuq._src import blasviews as bv
from ntkuq._src.linalg import require_well_conditioned
from ntkuq.errors import NotPositiveDefinite
from ntkuq.infinite.kernels import auto_nodes, diag_layers, kernel_tile
from ntkuq.infinite.lossstats import LossStats
from ntkuq.spec import MLPSpec


def _tiles(n: int, tile: int) -> List[Tuple[int, int]]:
    return [(a, min(a + tile, n)) for a in range(0, n, tile)]


class _Tiler:
    """Kernel tiles of a fixed shape (one compilation) between rows of the training and test inputs."""

    def __init__(self, spec: MLPSpec, x_train: np.ndarray, x_test: np.ndarray, tile: int,
                 sq: Optional[Dict[str, np.ndarray]] = None):
        self.spec, self.tile = spec, tile
        self.nq = auto_nodes(spec, x_train, x_test)
        self.x = {"train": x_train, "test": x_test}
        sq = sq or {}
        self.d = {k: np.asarray(diag_layers(spec, v, n_quad=self.nq, sq=sq.get(k))) for k, v in self.x.items()}

    def _rows(self, which: str, a: int, b: int):
        x, d = np.asarray(self.x[which][a:b], dtype=np.float64), self.d[which][:, a:b]  # float32 inputs: per tile
        pad = self.tile - (b - a)
        if pad:  # zero rows: finite kernels, sliced away below
            x, d = np.pad(x, ((0, pad), (0, 0))), np.pad(d, ((0, 0), (0, pad)))
        return x, d

    def pair(self, w1: str, r1: Tuple[int, int], w2: str, r2: Tuple[int, int], ntk: bool = True):
        """(K, Theta) tiles between rows r1 of w1 and rows r2 of w2 (Theta None unless ntk)."""
        x1, d1 = self._rows(w1, *r1)
        x2, d2 = self._rows(w2, *r2)
        k, th = kernel_tile(self.spec, x1, x2, d1, d2, n_quad=self.nq)
        m1, m2 = r1[1] - r1[0], r2[1] - r2[0]
        return np.asarray(k)[:m1, :m2], (np.asarray(th)[:m1, :m2] if ntk else None)


def train_kernels(tiler: _Tiler, n: int, n_test: int, ntk: bool, progress: bool):
    """Lower triangles of K and Theta (n x n) and the cross kernels K_sX, Theta_sX (n_test x n).

    The train-train triangles are in C order with zero strictly upper parts; the cross kernels are in C order.
    Each symmetric pair of train tiles is computed once.

    Args:
        tiler: the tile maker (inputs, layer diagonals, quadrature nodes).
        n: the number of training rows.
        n_test: the number of test rows.
        ntk: also Theta (else None in its places).
        progress: a progress bar.

    Returns:
        (K, Theta, K_sX, Theta_sX): float64 NumPy arrays; Theta and Theta_sX are None unless ntk.
    """
    rows, cols = _tiles(n, tiler.tile), _tiles(n_test, tiler.tile)
    kk = np.zeros((n, n))
    tt = np.zeros((n, n)) if ntk else None
    ksx = np.empty((n_test, n))
    tsx = np.empty((n_test, n)) if ntk else None
    bar = tqdm(total=len(rows) * (len(rows) + 1) // 2 + len(rows) * len(cols), desc="kernels", disable=not progress)
    for i, ri in enumerate(rows):
        for rj in rows[:i + 1]:
            k, th = tiler.pair("train", ri, "train", rj, ntk)
            if rj == ri:
                k, th = np.tril(k), (np.tril(th) if ntk else None)
            kk[ri[0]:ri[1], rj[0]:rj[1]] = k
            if ntk:
                tt[ri[0]:ri[1], rj[0]:rj[1]] = th
            bar.update()
        for rs in cols:
            k, th = tiler.pair("test", rs, "train", ri, ntk)
            ksx[rs[0]:rs[1], ri[0]:ri[1]] = k
            if ntk:
                tsx[rs[0]:rs[1], ri[0]:ri[1]] = th
            bar.update()
    bar.close()
    return kk, tt, ksx, tsx


def _factor(a: np.ndarray, diag_reg: float, what: str, check: bool) -> None:
    """Cholesky of the lower triangle of a + diag_reg I in place; refuse (linalg's message) if ill-conditioned."""
    idx = np.diag_indices(a.shape[0])
    trace = float(np.sum(a[idx])) + a.shape[0] * diag_reg
    a[idx] += diag_reg
    info = bv.cholesky_lower(a)
    if info != 0 and not check:
        raise NotPositiveDefinite(f"the {what} kernel plus diag_reg={diag_reg:g} is not positive definite")
    if check or info != 0:
        require_well_conditioned(a.T, lower=False, info=info, what=what, diag_reg=diag_reg, trace=trace)


def times_factor_inverse(c: np.ndarray, l: np.ndarray, tile: int) -> None:
    """C <- L^{-1} c in place for lower-triangular c and L (lower triangles of the views), by column blocks.

    Column block J of c is zero above its first row s, so only L[s:, s:] takes part (N^3 / 3 flops).

    Args:
        c: square view; its lower triangle is overwritten (the upper parts of its diagonal tiles are zeroed).
        l: square view of the same size; its lower triangle is L.
        tile: the column-block width.
    """
    n = c.shape[0]
    for a, b in _tiles(n, tile):
        c[a:b, a:b] = np.tril(c[a:b, a:b])
        bv.right_solve_lower_t(l[a:, a:], c[a:, a:b])


class _Accumulator:
    """Running A^T[:, :n] = Z_n^T G_n for a lower-triangular G (G_n its leading block) as n grows."""

    def __init__(self, zt: np.ndarray, g: np.ndarray, n_max: int):
        self.zt, self.g, self.n = zt, g, 0
        self.acc = np.empty((zt.shape[0], n_max))

    def grow(self, n: int) -> np.ndarray:
        p = self.n
        if p:
            bv.gemm(self.acc[:, :p], self.zt[:, p:n], self.g[p:n, :p], 1.0, 1.0)
        self.acc[:, p:n] = self.zt[:, p:n]
        bv.times_lower(self.acc[:, p:n], self.g[p:n, p:n])
        self.n = n
        return self.acc[:, :n]


class _Stats:
    """trace S, ||S||_F^2 and sum_i R_i^T S R_i accumulated over upper panels S[a:b, a:]."""

    def __init__(self, resid: np.ndarray):
        self.r, self.trace, self.fro2, self.rsr = resid, 0.0, 0.0, 0.0
        self.diag2, self.diag_rsr = 0.0, 0.0
        self.r2 = np.einsum("ij,ij->i", resid, resid)  # ||R_d||^2

    def add(self, s: np.ndarray, a: int, b: int) -> None:
        w = b - a
        diag = s[:, :w]
        sdd = np.diagonal(diag)
        self.trace += float(np.trace(diag))
        self.diag2 += float(sdd @ sdd)
        self.diag_rsr += float(sdd @ self.r2[a:b])
        d2 = float(np.einsum("ij,ij->", diag, diag))
        self.fro2 += 2.0 * float(np.einsum("ij,ij->", s, s)) - d2
        ra = self.r[a:b]
        self.rsr += 2.0 * float(np.sum(ra * (s @ self.r[a:]))) - float(np.sum(ra * (diag @ ra)))

    def result(self) -> LossStats:
        n_t, k = self.r.shape
        bias2 = float(np.sum(self.r**2))
        norm = n_t * k
        mu = (bias2 + k * self.trace) / norm
        var = (2 * k * self.fro2 + 4 * self.rsr) / norm**2
        return LossStats(mu, math.sqrt(max(var, 0.0)), n_t, k, bias2, self.trace, self.fro2, self.rsr,
                         self.diag2, self.diag_rsr)


def sweep_stats(spec: MLPSpec, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                sizes: Sequence[int], methods: Sequence[str], diag_reg: float, tile: int,
                progress: bool = False, timings: Optional[Dict[str, float]] = None,
                sq: Optional[Dict[str, np.ndarray]] = None) -> Dict[Tuple[str, int], LossStats]:
    """The statistics of every (method, size), by the algorithm of the module docstring.

    Args:
        spec: the architecture (infinite width).
        x_train: the training inputs, a float64 array; only the first max(sizes) rows are used.
        y_train: the training targets, a float64 array; only the first max(sizes) rows are used.
        x_test: the test inputs, a float64 array.
        y_test: the test targets, a float64 array.
        sizes: strictly increasing prefix sizes (validated by the caller).
        methods: a non-empty subset of ('ntk', 'nngp').
        diag_reg: added to the diagonal of both train-train kernels.
        tile: kernel tile size and test-panel height.
        progress: progress bars.
        timings: if given, filled with the seconds of each stage.
        sq: `kernels.sq_norms` of the first max(sizes) training rows ('train') and of x_test ('test'), if already
            computed (the inputs are then not read for them again).

    Returns:
        The LossStats of every (method, size) pair, keyed by (method, size).

    Raises:
        NotPositiveDefinite: NTK only and K + diag_reg cannot be factored (the caller then solves per size).
    """
    import time
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        clock.append(time.perf_counter())
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + clock[-1] - clock[-2]

    n, t = sizes[-1], x_test.shape[0]
    ntk, nngp = "ntk" in methods, "nngp" in methods
    tiler = _Tiler(spec, x_train[:n], x_test, tile, sq)
    kk, tt, xt, zt = train_kernels(tiler, n, t, ntk, progress)  # xt, zt: the cross kernels, solved in place below
    lap("kernels")
    if ntk:  # the NTK first: its refusal's diag_reg advice (from its larger scale) then serves both kernels
        _factor(tt, diag_reg, "NTK", check=True)
    _factor(kk, diag_reg, "NNGP", check=nngp)
    yt = np.array(y_train[:n].T, dtype=np.float64, order="C")  # a writeable copy (k x N)
    ct, wt = yt.copy(), yt
    bv.forward_solve_rows(kk, xt)  # X^T = K_sX C^{-T}
    bv.forward_solve_rows(kk, ct)
    lap("factor_solve")
    means = {("nngp", m): xt[:, :m] @ ct[:, :m].T for m in sizes} if nngp else {}
    d_of: Dict[int, np.ndarray] = {}
    v_of: Dict[int, np.ndarray] = {}
    if ntk:
        bv.forward_solve_rows(tt, zt)  # Z^T
        bv.forward_solve_rows(tt, wt)
        lap("factor_solve")
        means.update({("ntk", m): zt[:, :m] @ wt[:, :m].T for m in sizes})
        times_factor_inverse(kk, tt, tile)  # F = L^{-1} C in place of C
        lap("F")
        if diag_reg > 0:
            info = bv.trtri_lower(tt)  # H = L^{-1} in place of L
            assert info == 0, info
        else:
            tt = None
        accs = [(_Accumulator(zt, kk, n), d_of, True)] + (
            [(_Accumulator(zt, tt, n), v_of, False)] if tt is not None else [])
        for m in sizes:
            for acc, store, is_d in accs:
                part = acc.grow(m)  # (F_m^T Z_m)^T or V_m^T
                if is_d:
                    out = part if m == n else np.empty_like(part)
                    np.subtract(xt[:, :m], part, out=out)  # D_m^T
                else:
                    out = part if m == n else part.copy()
                store[m] = out
        del accs
        lap("accumulate")
    del kk, tt, zt
    resid = {key: np.asarray(v) - y_test for key, v in means.items()}
    stats = {key: _Stats(r) for key, r in resid.items()}
    for a, b in tqdm(_tiles(t, tile), desc="test panels", disable=not progress):
        s = np.concatenate([tiler.pair("test", (a, b), "test", rq, ntk=False)[0]
                            for rq in _tiles(t, tile) if rq[0] >= a],
                           axis=1)  # K_ss[a:b, a:]
        work = np.empty_like(s) if ntk else None
        p = 0
        for m in sizes:
            bv.gemm(s, xt[a:b, p:m], xt[a:, p:m].T, -1.0, 1.0)  # S_m = S_p - X[p:m]^T X[p:m]
            p = m
            if nngp:
                stats[("nngp", m)].add(s, a, b)
            if ntk:
                work[...] = s
                dt = d_of[m]
                bv.gemm(work, dt[a:b], dt[a:].T, 1.0, 1.0)
                if diag_reg > 0:
                    vt = v_of[m]
                    bv.gemm(work, vt[a:b], vt[a:].T, -diag_reg, 1.0)
                stats[("ntk", m)].add(work, a, b)
    lap("test_panels")
    return {key: st.result() for key, st in stats.items()}


def sweep_flops(n_train: int, n_test: int, sizes: Sequence[int], *, n_features: int,
                methods: Sequence[str] = ("ntk", "nngp"), diag_reg: float = 0.0, tile: int = 1024,
                n_out: int = 10) -> Dict[str, float]:
    """Leading floating-point operations of `sweep_stats`, stage by stage (a multiply-add counts as two).

    Args:
        n_train: N, the largest size (sizes[-1]).
        n_test: N_T.
        sizes: the prefix sizes.
        n_features: the input dimension d (the Gram products of the kernels).
        methods: a non-empty subset of ('ntk', 'nngp'), as in `sweep_stats`.
        diag_reg: the diagonal regularization, as in `sweep_stats`.
        tile: the kernel tile size and test-panel height, as in `sweep_stats`.
        n_out: the number of outputs k (right-hand sides of the mean solves).

    Returns:
        Flops of 'kernels' (Gram products only: the elementwise layer recursion is not a flop count), 'cholesky',
        'forward' (X, Z, c, w), 'F' (L^{-1} C and, when diag_reg > 0, L^{-1}), 'accumulate', 'test_panels',
        'total'.
    """
    n, t, d = float(n_train), float(n_test), float(n_features)
    ntk, nngp = "ntk" in methods, "nngp" in methods
    nt = math.ceil(n / tile)
    pairs = nt * (nt + 1) / 2 * tile * tile  # lower-half train tiles, padded
    tiles_t = math.ceil(t / tile)
    test_pairs = tiles_t * (tiles_t + 1) / 2 * tile * tile
    f = {"kernels": 2 * d * (pairs + nt * tiles_t * tile * tile + test_pairs)}
    n_fac = 1 + ntk
    f["cholesky"] = n_fac * n**3 / 3
    f["forward"] = n_fac * n * n * (t + n_out)
    f["F"] = (n**3 / 3 + (n**3 / 3 if diag_reg > 0 else 0.0)) if ntk else 0.0
    f["accumulate"] = (n * n * t * (2 if diag_reg > 0 else 1)) if ntk else 0.0
    panel = sum(2.0 * (b - a) * (t - a) for a, b in _tiles(int(t), tile))  # 2 x the panel entries
    ntk_rank = sum(sizes) * (2 if diag_reg > 0 else 1) if ntk else 0
    f["test_panels"] = panel * (n + ntk_rank) + panel * (n_out + 1) * len(sizes) * (ntk + nngp)
    f["total"] = sum(f.values())
    return f


def sweep_peak_words(n_train: int, n_test: int, sizes: Sequence[int], *, methods: Sequence[str] = ("ntk", "nngp"),
                     diag_reg: float = 0.0, tile: int = 1024) -> float:
    """Float64 numbers held at the peak of `sweep_stats` (the largest of its three stages).

    Kernels: K (and Theta) N^2 each, the cross kernels N N_T each, tile work.  Accumulation (NTK): F (and
    H = L^{-1} when diag_reg > 0) N^2, X, Z and the running product N N_T each, and D_m (and V_m) for every
    size but the largest (which lives in the running product's buffer).  Panels: X and all D_m (V_m), and four
    panels of tile x N_T.

    Args:
        n_train: N, the largest size (sizes[-1]).
        n_test: N_T.
        sizes: the prefix sizes.
        methods: a non-empty subset of ('ntk', 'nngp'), as in `sweep_stats`.
        diag_reg: the diagonal regularization, as in `sweep_stats`.
        tile: the kernel tile size and test-panel height, as in `sweep_stats`.

    Returns:
        The number of float64 numbers held at the peak, a float.
    """
    n, t = float(n_train), float(n_test)
    ntk = "ntk" in methods
    m = 1 + ntk
    work = 12.0 * tile * tile + 4 * tile * t
    stage1 = m * n * n + m * n * t + work
    extra = (2 if diag_reg > 0 else 1) if ntk else 0
    kept = extra * (sum(float(s) for s in sizes) - n) * t
    stage2 = (n * n * (2 if diag_reg > 0 else 1) + (2 + extra) * n * t + kept) if ntk else 0.0
    stage3 = n * t + extra * sum(float(s) for s in sizes) * t + work
    return max(stage1, stage2, stage3)


__all__ = ["sweep_flops", "sweep_peak_words", "sweep_stats", "times_factor_inverse", "train_kernels"]
