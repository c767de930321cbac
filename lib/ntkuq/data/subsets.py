"""A task's data (`TaskData`) and its nested training subsets.

The subsets are prefixes of one seeded permutation of the pool, so that the training sets of a study
are nested.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ntkuq._src.checks import check_int, is_integer


def nested_subsets(n_pool: int, sizes: Sequence[int], *, seed: int = 0,
                   labels: Optional[np.ndarray] = None) -> List[np.ndarray]:
    """Index arrays of the given sizes, all prefixes of one seeded permutation of range(n_pool).

    Args:
        n_pool: the pool size.
        sizes: strictly increasing subset sizes, at most n_pool.
        seed: the permutation (numpy default_rng(seed)); default 0.
        labels: integer class labels of the pool; if given, every prefix is class-balanced (each class
            appears floor or ceil of n / classes times until it runs out).  None (default): a plain
            permutation.

    Returns:
        One index array per size, each a prefix of the same permutation.

    Raises:
        ValueError: if `n_pool` is not a positive integer, `sizes` is empty, not positive integers, not
            strictly increasing or larger than `n_pool`, or `labels` does not have shape (n_pool,).
    """
    if not is_integer(n_pool) or n_pool < 1:
        raise ValueError(f"n_pool: expected a positive integer, got {n_pool!r}")
    sizes = list(sizes)
    if not sizes or not all(is_integer(s) and s >= 1 for s in sizes):
        raise ValueError(f"sizes: expected a non-empty list of positive integers, got {sizes!r}")
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"sizes: expected strictly increasing sizes, got {sizes!r}")
    if sizes[-1] > n_pool:
        raise ValueError(f"sizes: N_D = {sizes[-1]} exceeds the pool size n_pool = {n_pool}")
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n_pool)
    else:
        labels = np.asarray(labels)
        if labels.shape != (n_pool,):
            raise ValueError(f"labels: expected shape ({n_pool},), got {labels.shape}")
        classes, cls = np.unique(labels, return_inverse=True)
        rank = np.empty(n_pool, np.int64)  # position of each item in its class's permuted list
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(cls == c))
            rank[members] = np.arange(len(members))
        tie = rng.random((rank.max() + 1, len(classes)))[rank, cls]  # random class order in each round
        order = np.lexsort((tie, rank))
    return [order[:s].copy() for s in sizes]


def subset_sizes(n_min: int, n_max: int, count: int) -> List[int]:
    """Up to `count` log-spaced unique integers from n_min to n_max inclusive.

    Args:
        n_min: the smallest size (>= 1).
        n_max: the largest size (>= n_min).
        count: the number of log-spaced points (>= 1); rounding may merge some.

    Returns:
        The sorted unique sizes.

    Raises:
        ValueError: if the arguments are not integers with 1 <= n_min <= n_max and count >= 1.
    """
    if not is_integer(n_min) or not is_integer(n_max) or not 1 <= n_min <= n_max:
        raise ValueError(f"n_min, n_max: expected integers with 1 <= n_min <= n_max, got {n_min!r}, {n_max!r}")
    if not is_integer(count) or count < 1:
        raise ValueError(f"count: expected a positive integer, got {count!r}")
    return sorted({int(round(v)) for v in np.geomspace(n_min, n_max, count)})


@dataclass(frozen=True)
class TaskData:
    """A task's training pool and fixed test set, a description of the preprocessing, and labels.

    Attributes:
        name: the task's name.
        x_train: the training pool's inputs (points x features).
        y_train: the training pool's targets (points x outputs).
        x_test: the test set's inputs.
        y_test: the test set's targets.
        info: a description of the preprocessing (default: empty).
        labels_train: for classification, the training pool's integer labels; else None (default).
        labels_test: for classification, the test set's integer labels; else None (default).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict = field(default_factory=dict)
    labels_train: Optional[np.ndarray] = None
    labels_test: Optional[np.ndarray] = None

    def subset(self, n: int, draw: int = 0, *, balanced: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """The first n points (x, y) of the pool under the permutation numbered `draw`.

        Draw 0 is the pool order; draw d > 0 is `nested_subsets` with seed d (class-balanced prefixes if
        `balanced`, which needs labels; draw 0 is then seed 0).  The sets of one draw are nested.

        Args:
            n: the number of training points (1 to the pool size).
            draw: the permutation's number (>= 0; default 0: the pool order).
            balanced: True for class-balanced prefixes (needs labels); default False.

        Returns:
            (x, y): the inputs and targets of the n points.

        Raises:
            ValueError: if `balanced` is asked of a task without class labels (and, from the checks, if
                `n` or `draw` is out of range).
        """
        n = check_int(n, "n_train", maximum=len(self.x_train), what="the pool size")
        draw = check_int(draw, "draw", minimum=0)
        if balanced and self.labels_train is None:
            raise ValueError(f"balanced: task {self.name!r} has no class labels; expected balanced=False")
        if draw == 0 and not balanced:
            idx = np.arange(n)
        else:
            (idx,) = nested_subsets(len(self.x_train), [n], seed=draw, labels=self.labels_train if balanced else None)
        return self.x_train[idx], self.y_train[idx]

    def describe(self) -> str:
        """One-line summary: shapes, outputs and preprocessing.

        Returns:
            The summary.
        """
        opts = ", ".join(f"{k}={v!r}" for k, v in self.info.items())
        return (f"{self.name}: pool {self.x_train.shape[0]} x {self.x_train.shape[1]}, "
                f"test {self.x_test.shape[0]}, k={self.y_train.shape[1]} ({opts})")


__all__ = ["TaskData", "nested_subsets", "subset_sizes"]
