"""Test-loss statistics at every size of a nested training set, from one set of factors of the largest kernels.

For training sets that are prefixes of one permutation, the kernel of the first n points is the leading n x n
block of the largest kernel, the Cholesky factor of a leading block is the leading block of the factor, and
a forward substitution with it gives the leading rows of the largest one.  `nested_sweep` uses this throughout
(`ntkuq.infinite.nested`: kernels, two factorizations, shared solves and triangular products, and test-row panels that
never hold the N_T x N_T block), estimating its memory first (`budget.sweep_bytes`).  `nested_sweep_direct` is
the plain method it is checked against: one factorization, then per size a Cholesky solve on the leading block,
`predict.assemble_prediction` and `lossstats.loss_stats`.  (Both need a constant diagonal regularization.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ntkuq._src.budget import K_SS_LIMIT, OVERHEAD_BYTES, WORD, require_infinite
from ntkuq._src.checks import check_host_inputs, check_inputs, check_int, check_positive, check_sizes
from ntkuq._src.linalg import checked_cholesky, cho_solve
from ntkuq.errors import NotPositiveDefinite
from ntkuq.infinite.kernels import auto_nodes, check_finite_kernels, kernels, kernels_bytes, sq_norms
from ntkuq.infinite.lossstats import LossStats, loss_stats
from ntkuq.infinite.nested import sweep_peak_words, sweep_stats
from ntkuq.infinite.predict import assemble_prediction, train_test_kernels
from ntkuq.spec import MLPSpec


@dataclass(frozen=True)
class SweepPoint:
    """The statistics at one training-set size.

    Attributes:
        n_train: the training-set size (the first n_train rows of x_train).
        method: 'ntk' (the t = infinity NTK ensemble) or 'nngp' (the NNGP posterior).
        stats: the test-loss statistics there.
    """

    n_train: int
    method: str
    stats: LossStats


def _checked(x_train, y_train, x_test, y_test, sizes, methods, diag_reg, block_size):
    """The validated arguments of both sweeps."""
    x_train = check_host_inputs(x_train, "x_train")  # NumPy, float32 kept: tiles are converted (ntkuq.infinite.nested)
    y_train = check_inputs(y_train, "y_train", n_rows=x_train.shape[0])
    x_test = check_host_inputs(x_test, "x_test", n_features=x_train.shape[1])
    y_test = check_inputs(y_test, "y_test", n_rows=x_test.shape[0])
    if y_test.shape[1] != y_train.shape[1]:
        raise ValueError(f"y_test: expected {y_train.shape[1]} output columns to match y_train, got {y_test.shape[1]}")
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    sizes = check_sizes(sizes, "sizes", maximum=x_train.shape[0], what="the number of training points")
    block_size = check_int(block_size, "block_size")
    unknown = set(methods) - {"ntk", "nngp"} if not isinstance(methods, str) else {methods}
    if unknown or not methods:
        raise ValueError(f"methods: expected a non-empty subset of ('ntk', 'nngp'), got {tuple(methods)}")
    return (x_train, y_train, x_test, y_test, sizes, tuple(m for m in ("ntk", "nngp") if m in methods), diag_reg,
            block_size)


def require_sweep_memory(n_max: int, n_test: int, sizes: Sequence[int], methods: Sequence[str], diag_reg: float,
                         tile: int, n_features: int, input_itemsize: int = 8) -> None:
    """Refuse (budget.TooLargeError, naming the sizes and the largest N_D or N_T that fits) before allocating.

    Args:
        n_max: the largest training-set size.
        n_test: N_T.
        sizes: all sizes (smaller ones kept when N_D shrinks).
        methods: a non-empty subset of ('ntk', 'nngp'), as in `nested_sweep`.
        diag_reg: the diagonal regularization, as in `nested_sweep`.
        tile: the kernel tile size and test-panel height (`block_size` of `nested_sweep`, at most max(N_D, N_T)).
        n_features: the input dimension.
        input_itemsize: bytes per input number (4 for float32 inputs, which are converted tile by tile).

    Raises:
        TooLargeError: the sweep would not fit in memory (raised by `budget.require_infinite`).
    """
    def estimate(n: int, t: int) -> float:
        kept = [s for s in sizes if s < n] + [n]
        return sweep_bytes(n, t, 2 if "ntk" in methods else 1, tile, sizes=kept, diag_reg=diag_reg,
                           n_features=n_features, input_itemsize=input_itemsize)

    require_infinite("nested_sweep", n_max, n_test, estimate)


def nested_sweep(spec: MLPSpec, x_train, y_train, x_test, y_test, sizes: Sequence[int], *,
                 methods: Sequence[str] = ("ntk", "nngp"), diag_reg: float = 0.0,
                 block_size: int = 1024, progress: bool = False,
                 timings: Optional[Dict[str, float]] = None) -> List[SweepPoint]:
    """mu_L, sigma_L, eps_L of the t = infinity NTK ensemble and/or NNGP posterior for each prefix size.

    The algorithm is that of `ntkuq.infinite.nested` (its docstring; operation counts `nested.sweep_flops`).  Before any
    kernel is allocated the peak memory is estimated (`budget.sweep_bytes`) and a run that would not fit is
    refused with a `TooLargeError` naming the sizes and what would fit.  A train-train kernel too ill-conditioned
    for about six correct digits is refused naming diag_reg (`linalg.require_well_conditioned`); for an NTK-only
    sweep the NNGP kernel (used only inside the covariance, where its conditioning does not enter) merely has to
    be factorable, and if it is not, the sweep falls back to `nested_sweep_direct`.

    Args:
        spec: the architecture (infinite width).
        x_train: the inputs of the largest training set, N_D x d; the set of size n is its first n rows.
        y_train: the targets of the largest training set, N_D x k.
        x_test: the test inputs, N_T x d.
        y_test: the test targets, N_T x k.
        sizes: strictly increasing training-set sizes, at most len(x_train).
        methods: a non-empty subset of ('ntk', 'nngp').
        diag_reg: added to the diagonal of each train-train kernel (constant, so one factor serves all sizes).
        block_size: kernel tile size and test rows per panel (at most max(N_D, N_T) is used).
        progress: show progress bars.
        timings: if a dict is given, the seconds of each stage are added to it.

    Returns:
        One SweepPoint per method and size: the methods in the order given, sizes increasing.

    Raises:
        TooLargeError: the estimated peak memory does not fit.
        ValueError: invalid arguments, or a train-train kernel too ill-conditioned for the given diag_reg.

    Example:
        >>> import numpy as np
        >>> import ntkuq
        >>> ntkuq.enable_float64()
        >>> from ntkuq import MLPSpec
        >>> from ntkuq.infinite import nested_sweep
        >>> rng = np.random.default_rng(0)
        >>> x_train, x_test = rng.standard_normal((20, 3)), rng.standard_normal((10, 3))
        >>> y_train, y_test = np.sin(x_train[:, :1]), np.sin(x_test[:, :1])
        >>> points = nested_sweep(MLPSpec(depth=3), x_train, y_train, x_test, y_test, [5, 10, 20])
        >>> [(p.method, p.n_train) for p in points]
        [('ntk', 5), ('ntk', 10), ('ntk', 20), ('nngp', 5), ('nngp', 10), ('nngp', 20)]
        >>> [round(p.stats.mu, 4) for p in points if p.method == "ntk"]
        [1.0612, 0.6633, 0.1992]
    """
    order = tuple(methods) if not isinstance(methods, str) else methods
    x_train, y_train, x_test, y_test, sizes, methods, diag_reg, block_size = _checked(
        x_train, y_train, x_test, y_test, sizes, methods, diag_reg, block_size)
    n_max, n_test = sizes[-1], x_test.shape[0]
    tile = min(block_size, max(n_max, n_test))
    require_sweep_memory(n_max, n_test, sizes, methods, diag_reg, tile, x_train.shape[1], x_train.dtype.itemsize)
    as64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    xs, ys = x_train[:n_max], as64(y_train[:n_max])  # a view: the inputs are never copied whole
    n_quad = auto_nodes(spec, xs, x_test)
    sq = {"train": sq_norms(xs), "test": sq_norms(x_test)}  # one pass over the inputs serves every use below
    check_finite_kernels(spec, xs, "x_train", n_quad, sq["train"])
    check_finite_kernels(spec, x_test, "x_test", n_quad, sq["test"])
    try:
        stats = sweep_stats(spec, xs, ys, x_test, as64(y_test), sizes, methods, diag_reg, tile,
                            progress=progress, timings=timings, sq=sq)
    except NotPositiveDefinite:
        return nested_sweep_direct(spec, x_train, y_train, x_test, y_test, sizes, methods=order, diag_reg=diag_reg,
                                   block_size=block_size, progress=progress)
    return [SweepPoint(n, m, stats[(m, n)]) for m in order for n in sizes]


def nested_sweep_direct(spec: MLPSpec, x_train, y_train, x_test, y_test, sizes: Sequence[int], *,
                        methods: Sequence[str] = ("ntk", "nngp"), diag_reg: float = 0.0,
                        block_size: int = 1024, progress: bool = False) -> List[SweepPoint]:
    """The same statistics as `nested_sweep` by the direct method (the reference it is tested against).

    One Cholesky factor of the largest kernel; per size a Cholesky solve on its leading block, the prediction
    (`predict.assemble_prediction`) and `lossstats.loss_stats`.  It holds K_XX, Theta_XX, the factor, both
    cross kernels and V and W at once (about 23 GiB at N_D = 25,000, N_T = 10^4), so it is for small sizes.

    Args:
        spec: the architecture (infinite width).
        x_train: the inputs of the largest training set, N_D x d; the set of size n is its first n rows.
        y_train: the targets of the largest training set, N_D x k.
        x_test: the test inputs, N_T x d.
        y_test: the test targets, N_T x k.
        sizes: strictly increasing training-set sizes, at most len(x_train).
        methods: a non-empty subset of ('ntk', 'nngp').
        diag_reg: added to the diagonal of each train-train kernel (constant, so one factor serves all sizes).
        block_size: test rows per block of the covariance in `loss_stats`.
        progress: show a progress bar per method.

    Returns:
        One SweepPoint per method and size: the methods in the order given, sizes increasing.
    """
    order = tuple(methods) if not isinstance(methods, str) else methods
    x_train, y_train, x_test, y_test, sizes, _, diag_reg, block_size = _checked(
        x_train, y_train, x_test, y_test, sizes, methods, diag_reg, block_size)
    methods = order
    n_max = sizes[-1]
    # before any kernel is allocated (ntkuq._src.budget)
    require_infinite("nested_sweep_direct", n_max, x_test.shape[0],
                     lambda n, t: direct_sweep_bytes(n, t, len(methods), block_size))
    kern = train_test_kernels(spec, x_train[:n_max], x_test)
    k_ss = kernels(spec, x_test).nngp if x_test.shape[0] <= K_SS_LIMIT else None
    out = []
    for method in methods:
        full = kern.Th_XX if method == "ntk" else kern.K_XX
        cross = kern.Th_Xs if method == "ntk" else kern.K_Xs
        chol = checked_cholesky(full, diag_reg, method.upper())
        for n in tqdm(sizes, desc=f"{method} sweep", disable=not progress):
            V = cho_solve(chol[:n, :n], cross[:n])
            pred = assemble_prediction(V, y_train[:n], kern.K_Xs[:n], kern.K_XX[:n, :n] if method == "ntk" else None,
                                       spec, x_test, k_ss)
            out.append(SweepPoint(n, method, loss_stats(pred, y_test, block_size=block_size)))
    return out


def sweep_bytes(n_train: int, n_test: int, n_methods: int = 2, block_size: int = 1024, *,
                sizes: Optional[Sequence[int]] = None, diag_reg: float = 0.0, n_features: int = 0,
                input_itemsize: int = 8) -> float:
    """Peak bytes of `sweep.nested_sweep` (the algorithm of `ntkuq.infinite.nested`).

    The largest of its three stages, counted array by array in `nested.sweep_peak_words` (kernels: K, Theta
    N^2 each and both cross kernels; accumulation: one N^2 factor product, three N x N_T arrays and D_n for
    every smaller size; panels: X, every D_n and four panels of block x N_T), plus the inputs once at their own
    precision (the sweep converts them to float64 tile by tile: four tile x n_features copies) and
    OVERHEAD_BYTES.  Measured (2 cores, MNIST, 784 features, 12 sizes, both methods): N_D = 25,000,
    N_T = 10^4 peak resident 14.31 GiB when the inputs were still copied twice (estimated then 14.43 GiB,
    now 13.99 GiB).

    Args:
        n_train: N, the largest training-set size.
        n_test: N_T.
        n_methods: 2 for NTK and NNGP, 1 for one of them (1 counts the NNGP posterior alone, the smaller case).
        block_size: the kernel tile and test-panel height.
        sizes: every training-set size of the sweep (None: only n_train).
        diag_reg: > 0 keeps L^{-1} and V_n as well (the NTK covariance's -r V^T V term).
        n_features: the input dimension.
        input_itemsize: bytes per input number as given (4: float32 inputs, such as the calorimeter's cells).

    Returns:
        The estimated peak bytes, a float.
    """
    methods = ("ntk", "nngp") if n_methods >= 2 else ("nngp",)
    sizes = [n_train] if sizes is None else list(sizes)
    tile = max(1, min(block_size, max(n_train, n_test)))
    words = sweep_peak_words(n_train, n_test, sizes, methods=methods, diag_reg=diag_reg, tile=tile)
    inputs = (float(n_train) + float(n_test)) * n_features * input_itemsize + 2 * WORD * 2 * tile * n_features
    return WORD * words + inputs + OVERHEAD_BYTES


def direct_sweep_bytes(n_train: int, n_test: int, n_methods: int = 2, block_size: int = 1024) -> float:
    """Peak bytes of `sweep.nested_sweep_direct` at its largest size N.

    The kernels, a Cholesky factor per method and its leading block (2 N^2), V, W and the mean (3 N N_T), the
    test-test kernel (N_T^2, up to K_SS_LIMIT) and a block of covariance rows (block x N_T), plus OVERHEAD_BYTES.

    Args:
        n_train: N, the largest training-set size.
        n_test: N_T.
        n_methods: the number of methods swept (the estimate does not depend on it).
        block_size: test rows per block of the covariance.

    Returns:
        The estimated peak bytes, a float.
    """
    n, t = float(n_train), float(n_test)
    k_ss = t * t if t <= K_SS_LIMIT else 0.0
    return (kernels_bytes(n_train, n_test) + WORD * (2 * n * n + 3 * n * t + k_ss + 2 * min(block_size, t) * t)
            + OVERHEAD_BYTES)


__all__ = ["SweepPoint", "direct_sweep_bytes", "nested_sweep", "nested_sweep_direct", "require_sweep_memory",
           "sweep_bytes"]
