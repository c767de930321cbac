"""Memory (and time) estimates checked before the library's large allocations, with a refusal that says what fits.

Each long entry point (`nested_sweep`, `converged_steps`, `train_ensemble`, `width_sweep`,
`finite_width_study`) calls `require` (or `require_infinite`) with an estimate of its peak memory before
allocating; each estimate lives beside the algorithm whose memory it counts (`sweep_bytes` in
`ntkuq.infinite.sweep`, `ensemble_bytes` in `ntkuq.finite.ensembles`, ...), and this module only decides
whether it fits.  The budget is `memory_limit_bytes()`: NTKUQ_MEMORY_LIMIT_GIB if set, else
MEMORY_FRACTION of the memory available now (the accelerator's free memory when JAX runs on one, else
MemAvailable).  A refusal is an `ntkuq.errors.TooLargeError` (a ValueError) naming the sizes, the estimate,
the budget and a smaller size that would fit.  The estimates count the float64 arrays held at the peak,
array by array (see each function), plus OVERHEAD_BYTES.  Measured against the peak resident memory on
CPU (2 cores): nested_sweep, N_D = 3000 / 6000 with N_T = 1000, 20 features: 0.88 / 2.03 GiB measured,
0.95 / 2.31 GiB estimated; train_ensemble, width 1500, M = 16, N_D = 300, momentum: 1.21 GiB measured,
1.34 GiB estimated.  Time is estimated (and quoted in refusals) but never refused on.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import jax

from ntkuq.errors import TooLargeError

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
    """The memory budget: NTKUQ_MEMORY_LIMIT_GIB (GiB) if set, else MEMORY_FRACTION of the available memory.

    Returns:
        The budget in bytes.

    Raises:
        ValueError: if NTKUQ_MEMORY_LIMIT_GIB is set but is not a positive number.
    """
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
    """The largest n in [lo, hi] with fits(n) for a monotone predicate, by bisection.

    Args:
        fits: a predicate that is True up to some n and False above it.
        lo: the smallest candidate.
        hi: the largest candidate.

    Returns:
        The largest n in [lo, hi] with fits(n), or lo - 1 if none.
    """
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
        fits: what would fit instead (sizes), for the message (default "": nothing close is named).
        seconds: the estimated time, quoted in the message when known (default None).
        budget: the budget in bytes; None (default) for `memory_limit_bytes()`.

    Raises:
        TooLargeError: if `needed` exceeds the budget; the message names the sizes, the estimate, the
            budget and what would fit.
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


def require_infinite(kind: str, n_train: int, n_test: int, estimate: Callable[[int, int], float]) -> None:
    """`require` for an infinite-width computation on N_D x N_T, suggesting sizes that fit.

    The refusal suggests the largest N_D (keeping N_T) and the largest N_T (keeping N_D) that fit.

    Args:
        kind: the computation's name in the message, e.g. "nested_sweep".
        n_train: the number of training points N_D.
        n_test: the number of test points N_T.
        estimate: the peak bytes as a function of (N_D, N_T).

    Raises:
        TooLargeError: if the estimate exceeds `memory_limit_bytes()` (raised by `require`).
    """
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


FLOPS_PER_S = 5e9
"""Nominal float64 throughput of the time estimate (two CPU cores); a GPU is much faster."""


def available_memory_bytes() -> float:
    """Memory free for this run: the accelerator's limit if JAX runs on one, else MemAvailable (Linux).

    Where /proc/meminfo cannot be read, the physical memory size is used.

    Returns:
        The available memory in bytes.
    """
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh)
        return float(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


__all__ = ["FLOPS_PER_S", "GIB", "K_SS_LIMIT", "MEMORY_FRACTION", "OVERHEAD_BYTES", "WORD",
           "available_memory_bytes", "largest", "memory_limit_bytes", "require", "require_infinite"]
