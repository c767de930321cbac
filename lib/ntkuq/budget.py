"""Memory (and time) estimates checked before the library's large allocations, with a refusal that says what fits.

Each long entry point (`sweep.nested_sweep`, `convergence.converged_steps`, `ensembles.train_ensemble`,
`widths.width_sweep`, `study.finite_width_study`) calls `require` with an estimate of its peak memory
before allocating.  The budget is `memory_limit_bytes()`: NTKUQ_MEMORY_LIMIT_GIB if set, else
MEMORY_FRACTION of the memory available now (the accelerator's free memory when JAX runs on one, else
MemAvailable).  A refusal is an `estimate.TooLargeError` (a ValueError) naming the sizes, the estimate,
the budget and a smaller size that would fit.  The estimates count the float64 arrays held at the peak,
array by array (see each function), plus OVERHEAD_BYTES.  Measured against the peak resident memory on
CPU (2 cores): nested_sweep, N_D = 3000 / 6000 with N_T = 1000, 20 features: 0.88 / 2.03 GiB measured,
0.95 / 2.31 GiB estimated; train_ensemble, width 1500, M = 16, N_D = 300, momentum: 1.21 GiB measured,
1.34 GiB estimated.  Time is estimated (and quoted in refusals) but never refused on.
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

from .estimate import FLOPS_PER_S, TooLargeError, available_memory_bytes

MEMORY_FRACTION = 0.8
"""Share of the currently available memory a computation may plan to use (the rest: Python, JAX, XLA buffers)."""
GIB = 2**30
WORD = 8
"""Bytes per number: the infinite-width engine works in float64."""
OVERHEAD_BYTES = 384 * 2**20
"""Interpreter, JAX runtime and compiled code, added to every estimate."""
K_SS_LIMIT = 4096
"""Largest N_T for which the test-test kernel is computed once and held whole (sweep, convergence, estimates)."""


def memory_limit_bytes() -> float:
    """The memory budget: NTKUQ_MEMORY_LIMIT_GIB (GiB) if set, else MEMORY_FRACTION of the available memory."""
    env = os.environ.get("NTKUQ_MEMORY_LIMIT_GIB")
    if env:
        try:
            value = float(env)
        except ValueError:
            raise ValueError(f"NTKUQ_MEMORY_LIMIT_GIB: expected a number of GiB, got {env!r}") from None
        if not value > 0:
            raise ValueError(f"NTKUQ_MEMORY_LIMIT_GIB: expected a positive number of GiB, got {env!r}")
        return value * GIB
    return MEMORY_FRACTION * available_memory_bytes()


def largest(fits: Callable[[int], bool], lo: int, hi: int) -> int:
    """The largest n in [lo, hi] with fits(n) for a monotone predicate (lo - 1 if none)."""
    if hi < lo or not fits(lo):
        return lo - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def require(needed: float, what: str, *, fits: str = "", seconds: Optional[float] = None,
            budget: Optional[float] = None) -> None:
    """Raise TooLargeError if `needed` bytes exceed the budget (memory_limit_bytes() by default).

    Args:
      needed: the estimated peak bytes.
      what: the computation and its sizes, e.g. "nested_sweep with N_D = 50000, N_T = 10000".
      fits: what would fit instead (sizes), for the message.
      seconds: the estimated time, quoted in the message when known.
    """
    budget = memory_limit_bytes() if budget is None else budget
    if needed <= budget:
        return
    time = f" and roughly {seconds / 60:.3g} min" if seconds is not None else ""
    source = ("NTKUQ_MEMORY_LIMIT_GIB" if os.environ.get("NTKUQ_MEMORY_LIMIT_GIB") else
              f"{MEMORY_FRACTION:.0%} of the available memory; set NTKUQ_MEMORY_LIMIT_GIB to change it")
    raise TooLargeError(f"{what} needs about {needed / GIB:.3g} GiB of memory{time}, but the budget is "
                        f"{budget / GIB:.3g} GiB ({source}). Would fit: {fits or 'nothing close to this size'}")


# ---------------------------------------------------------------------------------------------
# Estimates (bytes)
# ---------------------------------------------------------------------------------------------

def kernels_bytes(n_train: int, n_test: int) -> float:
    """`dynamics.train_test_kernels`: K and Theta on train x (train + test) and their train-train and
    train-test slices (4 N (N + N_T) numbers)."""
    n, t = float(n_train), float(n_test)
    return WORD * 4 * n * (n + t)


def sweep_bytes(n_train: int, n_test: int, n_methods: int = 2, block_size: int = 1024, *,
                sizes: Optional[Sequence[int]] = None, diag_reg: float = 0.0, n_features: int = 0,
                input_itemsize: int = 8) -> float:
    """`sweep.nested_sweep` (the algorithm of `ntkuq.nested`): the largest of its three stages, counted array by
    array in `nested.sweep_peak_words` (kernels: K, Theta N^2 each and both cross kernels; accumulation: one
    N^2 factor product, three N x N_T arrays and D_n for every smaller size; panels: X, every D_n and four
    panels of block x N_T), plus the inputs once at their own precision (the sweep converts them to float64
    tile by tile: four tile x n_features copies) and OVERHEAD_BYTES.  Measured (2 cores, MNIST, 784 features,
    12 sizes, both methods): N_D = 25,000, N_T = 10^4 peak resident 14.31 GiB when the inputs were still
    copied twice (estimated then 14.43 GiB, now 13.99 GiB).

    Args:
      n_train: N, the largest training-set size.
      n_test: N_T.
      n_methods: 2 for NTK and NNGP, 1 for one of them (1 counts the NNGP posterior alone, the smaller case).
      block_size: the kernel tile and test-panel height.
      sizes: every training-set size of the sweep (None: only n_train).
      diag_reg: > 0 keeps L^{-1} and V_n as well (the NTK covariance's -r V^T V term).
      n_features: the input dimension.
      input_itemsize: bytes per input number as given (4: float32 inputs, such as the calorimeter's cells).
    """
    from .nested import sweep_peak_words  # the algorithm's own count (imported here: no import cycle)
    methods = ("ntk", "nngp") if n_methods >= 2 else ("nngp",)
    sizes = [n_train] if sizes is None else list(sizes)
    tile = max(1, min(block_size, max(n_train, n_test)))
    words = sweep_peak_words(n_train, n_test, sizes, methods=methods, diag_reg=diag_reg, tile=tile)
    inputs = (float(n_train) + float(n_test)) * n_features * input_itemsize + 2 * WORD * 2 * tile * n_features
    return WORD * words + inputs + OVERHEAD_BYTES


def direct_sweep_bytes(n_train: int, n_test: int, n_methods: int = 2, block_size: int = 1024) -> float:
    """`sweep.nested_sweep_direct` at its largest size N: the kernels, a Cholesky factor per method and its leading
    block (2 N^2), V, W and the mean (3 N N_T), the test-test kernel (N_T^2, up to K_SS_LIMIT) and a block of
    covariance rows (block x N_T)."""
    n, t = float(n_train), float(n_test)
    k_ss = t * t if t <= K_SS_LIMIT else 0.0
    return (kernels_bytes(n_train, n_test) + WORD * (2 * n * n + 3 * n * t + k_ss + 2 * min(block_size, t) * t)
            + OVERHEAD_BYTES)


def convergence_bytes(n_train: int, n_test: int, block_size: int = 1024) -> float:
    """`convergence.converged_steps` beyond the kernels it is given: the eigendecomposition of Theta (U and
    workspace, 3 N^2), B = U^T Theta_Xs, V, W and K_XX V (4 N N_T), the t = infinity solve (N^2 + 2 N N_T), the
    test-test kernel (N_T^2, up to K_SS_LIMIT) and a block of covariance rows."""
    n, t = float(n_train), float(n_test)
    k_ss = t * t if t <= K_SS_LIMIT else 0.0
    return WORD * (4 * n * n + 6 * n * t + k_ss + 2 * min(block_size, t) * t) + OVERHEAD_BYTES


def ensemble_member_bytes(layer_sizes: Sequence[int], n_train: int, n_test: int, itemsize: int = 4,
                          optimizer: str = "gd") -> float:
    """One member of `ensembles.train_ensemble`: parameters, gradients and optimizer state (3 to 5 copies)
    and the activations of the training and test inputs (3 (N_D + N_T) sum of widths); one copy more than the
    chunking rule of `ensembles._auto_chunk` counts (the optimizer's update is a temporary of its own).

    Args:
      layer_sizes: the network's layer widths, input dimension first and output dimension last.
      n_train: N_D, the number of training inputs whose activations are held.
      n_test: N_T, the number of test inputs whose activations are held.
      itemsize: bytes per number of the trained networks (4 for float32, the default; 8 for float64).
      optimizer: "gd" (default; 4 copies of the parameters), "momentum"/"nesterov" (5) or "adam" (6).

    Returns:
      The estimated bytes of one member.
    """
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    copies = {"adam": 6, "momentum": 5, "nesterov": 5}.get(optimizer, 4)
    return float(itemsize) * (n_params * copies + 3 * (n_train + n_test) * sum(layer_sizes[1:]))


def ensemble_bytes(layer_sizes: Sequence[int], n_train: int, n_test: int, n_members: int, *, itemsize: int = 4,
                   optimizer: str = "gd", chunk: int = 1, keep_outputs: bool = False, n_record: int = 20) -> float:
    """`ensembles.train_ensemble`: one chunk of members, the analytic NTK on the training inputs for the
    stable rate (float64 N_D^2, twice for the eigenvalues), the loss histories and optionally the outputs.

    Args:
      layer_sizes: the network's layer widths, input dimension first and output dimension last.
      n_train: N_D, the number of training points.
      n_test: N_T, the number of test points.
      n_members: M, the number of networks in the ensemble.
      itemsize: bytes per number of the trained networks (4 for float32, the default; 8 for float64).
      optimizer: "gd" (default), "momentum", "nesterov" or "adam"; sets the copies of optimizer state.
      chunk: members trained at once (default 1); at most n_members are counted.
      keep_outputs: True counts the float64 test outputs of every member (M x N_T x outputs); default False.
      n_record: the number of recorded points of each member's loss history (default 20).

    Returns:
      The estimated peak bytes, OVERHEAD_BYTES included.
    """
    n, t = float(n_train), float(n_test)
    member = ensemble_member_bytes(layer_sizes, n_train, n_test, itemsize, optimizer)
    outputs = WORD * n_members * t * layer_sizes[-1] if keep_outputs else 0.0
    return (min(chunk, n_members) * member + WORD * 3 * n * n + 2 * WORD * n_members * n_record + outputs
            + WORD * (n + t) * (layer_sizes[0] + layer_sizes[-1]) + OVERHEAD_BYTES)


def ensemble_seconds(layer_sizes: Sequence[int], n_train: int, n_members: int, steps: int) -> float:
    """Rough training time: forward and backward passes, about 6 operations per parameter and training
    point per step, at estimate.FLOPS_PER_S (a GPU is much faster)."""
    n_params = sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    return 6.0 * n_params * n_train * n_members * steps / FLOPS_PER_S


def require_ensemble(sizes_of: Callable[[int], Sequence[int]], width: int, n_train: int, n_test: int,
                     n_members: int, *, steps: int, itemsize: int, optimizer: str, chunk: int,
                     keep_outputs: bool = False, n_record: int = 20, what: str = "train_ensemble") -> None:
    """require() for a trained ensemble; sizes_of(width) gives the layer sizes.  Suggests a smaller chunk of
    members trained at once if one member fits, else the largest width that does.

    Args:
      sizes_of: maps a hidden width to the network's layer sizes (input first, output last).
      width: the hidden width n of the members.
      n_train: N_D, the number of training points.
      n_test: N_T, the number of test points.
      n_members: M, the number of networks in the ensemble.
      steps: the number of training steps; only for the time quoted in the message.
      itemsize: bytes per number of the trained networks (4 for float32, 8 for float64).
      optimizer: "gd", "momentum", "nesterov" or "adam"; sets the copies of optimizer state.
      chunk: members trained at once.
      keep_outputs: True counts the test outputs of every member (default False).
      n_record: the number of recorded points of each member's loss history (default 20).
      what: the name of the computation in the message (default "train_ensemble").

    Raises:
      TooLargeError: if the estimate exceeds memory_limit_bytes().
    """
    budget = memory_limit_bytes()

    def est(w: int, c: int) -> float:
        return ensemble_bytes(sizes_of(w), n_train, n_test, n_members, itemsize=itemsize, optimizer=optimizer,
                              chunk=c, keep_outputs=keep_outputs, n_record=n_record)

    needed = est(width, chunk)
    if needed <= budget:
        return
    if est(width, 1) <= budget:
        fits = f"chunk = {largest(lambda c: est(width, c) <= budget, 1, chunk)} members trained at once"
    else:
        w = largest(lambda v: est(v, 1) <= budget, 1, width)
        fits = f"width {w} (M = {n_members}, N_D = {n_train})" if w >= 1 else ""
    require(needed, f"{what} with M = {n_members} members of width {width}, N_D = {n_train}, N_T = {n_test} "
            f"({min(chunk, n_members)} at once)", fits=fits,
            seconds=ensemble_seconds(sizes_of(width), n_train, n_members, steps), budget=budget)


def require_infinite(kind: str, n_train: int, n_test: int, estimate: Callable[[int, int], float]) -> None:
    """require() for an infinite-width computation on N_D x N_T, suggesting the largest N_D (keeping N_T)
    and the largest N_T (keeping N_D) that fit."""
    budget = memory_limit_bytes()
    needed = estimate(n_train, n_test)
    if needed <= budget:
        return
    n_fit = largest(lambda m: estimate(m, n_test) <= budget, 1, n_train)
    t_fit = largest(lambda m: estimate(n_train, m) <= budget, 1, n_test)
    ways = [f"N_D = {n_fit} training points with N_T = {n_test}" if n_fit >= 1 else "",
            f"N_T = {t_fit} test points with N_D = {n_train}" if t_fit >= 1 else ""]
    require(needed, f"{kind} with N_D = {n_train}, N_T = {n_test}", fits="; or ".join(w for w in ways if w),
            budget=budget)


def kernel_matrices_bytes(n1: int, n2: int) -> float:
    """`kernels.kernels` on n1 x n2 pairs: K and Theta (2 n1 n2), the padded block results before slicing
    (2 n1 n2 more at most), plus OVERHEAD_BYTES."""
    return WORD * 4 * float(n1) * float(n2) + OVERHEAD_BYTES


def require_kernel_matrices(what: str, n1: int, n2: int, names: Sequence[str] = ("x1", "x2")) -> None:
    """Refuse (TooLargeError) kernels on n1 x n2 pairs that would not fit, naming the sizes and what fits."""
    budget = memory_limit_bytes()
    needed = kernel_matrices_bytes(n1, n2)
    if needed <= budget:
        return
    square = largest(lambda m: kernel_matrices_bytes(m, m) <= budget, 1, max(n1, n2))
    rows = largest(lambda m: kernel_matrices_bytes(m, n2) <= budget, 1, n1)
    fits = f"{names[0]} with {rows} rows against {n2} rows of {names[1]}" if rows >= 1 else ""
    fits = "; or ".join(f for f in (fits, f"{square} rows in both" if square >= 1 else "") if f)
    require(needed, f"{what} with {names[0]} of {n1} rows and {names[1]} of {n2} rows ({n1} x {n2} kernel matrices)",
            fits=fits, budget=budget)


__all__ = ["MEMORY_FRACTION", "kernel_matrices_bytes", "require_kernel_matrices", "convergence_bytes", "ensemble_bytes", "ensemble_member_bytes", "ensemble_seconds",
           "direct_sweep_bytes", "kernels_bytes", "largest", "memory_limit_bytes", "require", "require_infinite", "sweep_bytes"]
