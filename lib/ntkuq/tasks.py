"""The paper's three tasks behind one type and one loader: MNIST, CIFAR-10 (classification) and the calorimeter
(regression).

`load` returns every task as a `TaskData`: a training pool, a fixed test set and targets as float64 arrays (the
calorimeter's inputs as the float32 numbers its cell features are; `data.load_task` builds the image tasks'
TaskData, with integer labels).  Training sets are taken by one
function, `TaskData.subset`, built on `nested_subsets`: prefixes of one seeded permutation of the pool, so
the sets of a study are nested.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .checks import check_int, is_integer

TASKS = ("mnist", "cifar10", "calorimeter")
"""Task names accepted by `load`."""


def nested_subsets(n_pool: int, sizes: Sequence[int], *, seed: int = 0,
                   labels: Optional[np.ndarray] = None) -> List[np.ndarray]:
    """Index arrays of the given sizes, all prefixes of one seeded permutation of range(n_pool).

    Args:
      n_pool: the pool size.
      sizes: strictly increasing subset sizes, at most n_pool.
      seed: the permutation (numpy default_rng(seed)).
      labels: integer class labels of the pool; if given, every prefix is class-balanced (each class
        appears floor or ceil of n / classes times until it runs out).
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
    """Up to `count` log-spaced unique integers from n_min to n_max inclusive."""
    if not is_integer(n_min) or not is_integer(n_max) or not 1 <= n_min <= n_max:
        raise ValueError(f"n_min, n_max: expected integers with 1 <= n_min <= n_max, got {n_min!r}, {n_max!r}")
    if not is_integer(count) or count < 1:
        raise ValueError(f"count: expected a positive integer, got {count!r}")
    return sorted({int(round(v)) for v in np.geomspace(n_min, n_max, count)})


@dataclass(frozen=True)
class TaskData:
    """A task's training pool and fixed test set (inputs x, targets y), a description of the preprocessing
    (`info`), and for classification the integer labels of both."""

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
        `balanced`, which needs labels; draw 0 is then seed 0).  The sets of one draw are nested."""
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
        """One-line summary: shapes, outputs and preprocessing."""
        opts = ", ".join(f"{k}={v!r}" for k, v in self.info.items())
        return (f"{self.name}: pool {self.x_train.shape[0]} x {self.x_train.shape[1]}, "
                f"test {self.x_test.shape[0]}, k={self.y_train.shape[1]} ({opts})")


def load(task: str, *, n_pool: int, n_test: int, seed: int = 0, downsample: int = 1, grayscale: bool = False,
         standardize: Optional[str] = None, calorimeter_cells: int = 25, calorimeter_layers: int = 25) -> TaskData:
    """Load a task: a seeded pool of n_pool training points and n_test test points (see the module docstring).

    Args:
      task: 'mnist', 'cifar10' or 'calorimeter'.
      n_pool: training points kept (the first n_pool of a seeded permutation of the training split).
      n_test: test points.
      seed: the permutations of the pool and the test set (and the calorimeter's simulation).
      downsample, grayscale, standardize: image preprocessing (`data.load_task`).
      calorimeter_cells, calorimeter_layers: the calorimeter's read-out granularity.

    Images keep pixels in [0, 1] by default (standardize=None), as the paper's loss magnitudes suggest;
    'image' or 'feature' standardization are options (see ntkuq.data.load_task).  The calorimeter is
    read out with calorimeter_cells^2 x calorimeter_layers cells (25^3 is the full granularity)."""
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    n_pool, n_test = check_int(n_pool, "n_pool"), check_int(n_test, "n_test")
    seed = check_int(seed, "seed", minimum=0)
    calorimeter_cells = check_int(calorimeter_cells, "calorimeter_cells")
    calorimeter_layers = check_int(calorimeter_layers, "calorimeter_layers")
    if task == "calorimeter":
        from .calorimeter import CalorimeterConfig, calorimeter_task

        config = coarse_calorimeter(CalorimeterConfig(), calorimeter_cells, calorimeter_layers)
        x_tr, y_tr, x_te, y_te, info = calorimeter_task(n_pool, n_test, config, seed=seed)
        desc = {"features": int(x_tr.shape[1]), "transform": info["feature_transform"],
                "target": f"true energy standardized (mean {info['y_mean']:.2f} GeV, std {info['y_std']:.2f} GeV)"}
        # the cell features are float32 numbers (calorimeter_task): kept as they are, exactly, at half the
        # memory (25,000 showers x 15,625 cells: 1.6 GB); every computation converts them to float64
        return TaskData(task, np.asarray(x_tr, np.float32), np.asarray(y_tr, np.float64),
                        np.asarray(x_te, np.float32), np.asarray(y_te, np.float64), desc)
    from .data import load_task

    ds = load_task(task, n_test=n_test, grayscale=grayscale, downsample=downsample, standardize=standardize, seed=seed)
    if not 1 <= n_pool <= len(ds.x_train):
        raise ValueError(f"n_pool: expected 1 <= n_pool <= {len(ds.x_train)}, got {n_pool}")
    (order,) = nested_subsets(len(ds.x_train), [n_pool], seed=seed)
    transform = {None: "pixels / 255 in [0, 1]", "image": "pixels / 255, each image to zero mean and unit mean square",
                 "feature": "pixels / 255, standardized per pixel over the training split"}[standardize]
    desc = {"features": int(ds.x_train.shape[1]), "transform": transform, "target": "one-hot (k = 10)",
            "grayscale": grayscale, "downsample": downsample}
    return TaskData(task, ds.x_train[order], ds.y_train[order], ds.x_test, ds.y_test, desc,
                    ds.labels_train[order], ds.labels_test)


def coarse_calorimeter(config, cells: int, layers: int):
    """The same calorimeter read out with cells x cells x layers (merged) ECAL cells covering the same volume."""
    cells, layers = check_int(cells, "cells"), check_int(layers, "layers")
    ecal = config.ecal
    if cells == ecal.n_cells and layers == ecal.n_layers:
        return config
    return config.replace(ecal=ecal.replace(n_cells=cells, cell_size_mm=ecal.cell_size_mm * ecal.n_cells / cells,
                                            n_layers=layers, layer_depth_x0=ecal.layer_depth_x0 * ecal.n_layers / layers))
