"""Test-loss statistics at every size of a nested training set from one kernel and one Cholesky factor.

For training sets that are prefixes of one permutation, the kernel of the first n points is the
leading n x n block of the largest kernel, and the Cholesky factor of a leading block is the
leading block of the factor.  So one O(N_max^3) factorization serves every size; each size then
costs two triangular solves.  (This needs a constant diagonal regularization, as used here.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

from tqdm import tqdm

from .budget import K_SS_LIMIT, require_infinite, sweep_bytes
from .checks import check_inputs, check_int, check_positive, check_sizes
from .dynamics import assemble_prediction, train_test_kernels
from .linalg import checked_cholesky, cho_solve
from .kernels import kernels
from .lossstats import LossStats, loss_stats
from .spec import MLPSpec

@dataclass(frozen=True)
class SweepPoint:
    """The statistics at one training-set size."""

    n_train: int
    method: str
    stats: LossStats


def nested_sweep(spec: MLPSpec, x_train, y_train, x_test, y_test, sizes: Sequence[int], *,
                 methods: Sequence[str] = ("ntk", "nngp"), diag_reg: float = 0.0,
                 block_size: int = 1024, progress: bool = False) -> List[SweepPoint]:
    """mu_L, sigma_L, eps_L of the t = infinity NTK ensemble and/or NNGP posterior for each prefix size.

    Args:
      spec: the architecture (infinite width).
      x_train, y_train: the largest training set; the set of size n is its first n rows.
      x_test, y_test: the test set.
      sizes: strictly increasing training-set sizes, at most len(x_train).
      methods: a non-empty subset of ('ntk', 'nngp').
      diag_reg: added to the diagonal of each train-train kernel (constant, so one factor serves all sizes).
      block_size: test rows per block of the covariance in `loss_stats`.
      progress: show a progress bar per method.
    """
    x_train = check_inputs(x_train, "x_train")
    y_train = check_inputs(y_train, "y_train", n_rows=x_train.shape[0])
    x_test = check_inputs(x_test, "x_test", n_features=x_train.shape[1])
    y_test = check_inputs(y_test, "y_test", n_rows=x_test.shape[0])
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    sizes = check_sizes(sizes, "sizes", maximum=x_train.shape[0], what="the number of training points")
    block_size = check_int(block_size, "block_size")
    unknown = set(methods) - {"ntk", "nngp"} if not isinstance(methods, str) else {methods}
    if unknown or not methods:
        raise ValueError(f"methods: expected a non-empty subset of ('ntk', 'nngp'), got {tuple(methods)}")
    n_max = sizes[-1]
    require_infinite("nested_sweep", n_max, x_test.shape[0],  # before any kernel is allocated (ntkuq.budget)
                     lambda n, t: sweep_bytes(n, t, len(methods), block_size))
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
