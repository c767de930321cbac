"""The cost of an `estimate` run (memory and time, counted before anything is computed) and its refusal.

A run over the limits is refused with a `TooLargeError` that names the sizes and the largest N_T and N_D
that would fit, found with the same search as every other refusal of the library (`ntkuq._src.budget`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

from ntkuq._src.budget import FLOPS_PER_S, largest
from ntkuq._src.checks import check_int
from ntkuq.data.subsets import subset_sizes
from ntkuq.errors import TooLargeError

OVERHEAD_S = 15.0
"""Fixed time for imports and JIT compilation in the time estimate."""


KERNEL_FLOPS = {"relu": 60.0, "erf": 60.0, "tanh": 64 * 64 * 30.0}
"""Operations per kernel entry and layer: closed forms (ReLU, erf) or 64 x 64 Gauss-Hermite nodes (tanh)."""


def auto_sizes(n_train: int, count: int = 8) -> List[int]:
    """Log-spaced nested sizes from max(10, N/100) (at most N) up to N, the full training set.

    Args:
        n_train: N, the number of training points.
        count: the number of sizes (default 8); fewer where log-spacing repeats an integer.

    Returns:
        The nested training-set sizes: unique, increasing, the last one N.
    """
    n_train = check_int(n_train, "n_train")
    return subset_sizes(min(n_train, max(10, n_train // 100)), n_train, count)


@dataclass(frozen=True)
class Cost:
    """Estimated peak memory (bytes) and wall time (seconds) of an `estimate` run.

    Attributes:
        memory_bytes: the estimated peak memory in bytes.
        seconds: the estimated wall time in seconds.
    """

    memory_bytes: float
    seconds: float

    @property
    def memory_gib(self) -> float:
        """Peak memory in GiB."""
        return self.memory_bytes / 2**30


def cost_estimate(n_train: int, n_test: int, n_features: int, n_out: int, sizes: Sequence[int],
                  depth: int = 3, activation: str = "relu") -> Cost:
    """Rough peak memory and time of the kernels, Cholesky solves, sweep and distribution, in float64.

    Memory: the two kernel passes hold K and Theta on train x (train + test) and their copies
    (4 N (N + N_T) numbers), Cholesky factors (2 N^2), V and W (2 N N_T) and the test covariance with
    its eigenvectors (4 N_T^2).  Time: operation counts at FLOPS_PER_S plus OVERHEAD_S.

    Args:
        n_train: all training points held in memory (rows of the training data); the kernels use max(sizes).
        n_test: N_T, the number of test points.
        n_features: the number of input features (columns).
        n_out: k, the number of outputs (targets).
        sizes: the nested training-set sizes N_D of the sweep; the largest is the N of the estimate.
        depth: the MLP's depth (default 3); the kernel recursion costs max(depth - 1, 1) layers.
        activation: the activation (default "relu"); sets the operations per kernel entry (others as "tanh").

    Returns:
        Cost: peak memory in bytes (float64 numbers) and wall time in seconds.
    """
    n, t = float(max(sizes)), float(n_test)
    words = 4 * n * (n + t) + 2 * n**2 + 2 * n * t + 4 * t**2 + (n_train + t) * (n_features + n_out)
    kernel = 2 * n * (n + t) * max(depth - 1, 1) * KERNEL_FLOPS.get(activation, KERNEL_FLOPS["tanh"])
    kernel += 2 * t**2 * max(depth - 1, 1) * KERNEL_FLOPS.get(activation, KERNEL_FLOPS["tanh"])
    algebra = 2 * n**3 / 3 + sum(4 * m**2 * t + 4 * m * t**2 for m in list(sizes) + [n])
    dist = (10 * t**3 + 1e7 * t) if t <= QUANTILE_MAX_TEST else 0.0
    return Cost(8 * words, OVERHEAD_S + (kernel + algebra + dist) / FLOPS_PER_S)


def check_budget(cost: Cost, n_test: int, sizes: Sequence[int], *, max_memory_bytes: float,
                 max_seconds: float, model=None) -> None:
    """Raise TooLargeError if cost exceeds either limit, naming the N_T and the largest size that would fit.

    Args:
        cost: the estimated cost of the run (`cost_estimate`).
        n_test: N_T, the number of test points of the run.
        sizes: the nested training-set sizes of the run; the largest is the N_D checked.
        max_memory_bytes: the memory limit in bytes.
        max_seconds: the wall-time limit in seconds.
        model: model(n_max, n_test) -> Cost, used to find the largest N_T and N_D that would fit; None
            (default) for cost_estimate with one feature, one output and the single size n_max.

    Raises:
        TooLargeError: if cost.memory_bytes > max_memory_bytes or cost.seconds > max_seconds.
    """
    if cost.memory_bytes <= max_memory_bytes and cost.seconds <= max_seconds:
        return
    model = model or (lambda n_max, t: cost_estimate(n_max, t, 1, 1, [n_max]))

    def ok(c: Cost) -> bool:
        return c.memory_bytes <= max_memory_bytes and c.seconds <= max_seconds

    n_max = max(sizes)
    t_fit = max(largest(lambda t: ok(model(n_max, t)), 1, n_test), 0)
    n_fit = max(largest(lambda m: ok(model(m, n_test)), 1, n_max), 0)
    ways = []
    if t_fit >= 1:
        ways.append(f"fewer test points: --test-points {t_fit} (keeping N_D = {n_max})")
    if n_fit >= 1:
        ways.append(f"smaller training sizes: --sizes ending at {n_fit} (keeping N_T = {n_test})")
    hint = "; or ".join(ways) if ways else "nothing close to this size fits; use a machine with more memory"
    raise TooLargeError(
        f"too large for this machine: N_D = {n_max}, N_T = {n_test} needs about {cost.memory_gib:.3g} GiB and "
        f"{cost.seconds / 60:.3g} min, the limits are {max_memory_bytes / 2**30:.3g} GiB and "
        f"{max_seconds / 60:.3g} min "
        f"(raise them with --max-memory-gb / --max-minutes if you know better). Would fit: {hint}")


QUANTILE_MAX_TEST = 4000
"""Largest N_T for which the distribution of L (an eigendecomposition of the N_T x N_T covariance) is computed."""


__all__ = ["Cost", "KERNEL_FLOPS", "OVERHEAD_S", "QUANTILE_MAX_TEST", "auto_sizes", "check_budget",
           "cost_estimate"]
