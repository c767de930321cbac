"""The paper's three tasks behind one function: MNIST, CIFAR-10 (classification) and the calorimeter (regression).

Every task returns a training pool, a fixed test set and targets as float64 arrays; the study takes
nested training subsets (prefixes of one seeded permutation of the pool) of the sizes it needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ._checks import check_int

TASKS = ("mnist", "cifar10", "calorimeter")
"""Task names accepted by `load`."""


@dataclass(frozen=True)
class TaskData:
    """A task's training pool and fixed test set (inputs x, targets y) with a description of the preprocessing."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict = field(default_factory=dict)

    def subset(self, n: int, draw: int = 0) -> tuple:
        """The first n points of the pool under the permutation numbered `draw` (draw 0: the pool order)."""
        n = check_int(n, "n_train", maximum=len(self.x_train), what="the pool size")
        draw = check_int(draw, "draw", minimum=0)
        order = np.arange(len(self.x_train)) if draw == 0 else np.random.default_rng(draw).permutation(len(self.x_train))
        idx = order[:n]
        return self.x_train[idx], self.y_train[idx]


def load(task: str, *, n_pool: int, n_test: int, seed: int = 0, downsample: int = 1, grayscale: bool = False,
         standardize: Optional[str] = None, calorimeter_cells: int = 25, calorimeter_layers: int = 25) -> TaskData:
    """Load a task: a seeded pool of n_pool training points and n_test test points (see the module docstring).

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

        config = _coarse_calorimeter(CalorimeterConfig(), calorimeter_cells, calorimeter_layers)
        x_tr, y_tr, x_te, y_te, info = calorimeter_task(n_pool, n_test, config, seed=seed)
        desc = {"features": int(x_tr.shape[1]), "transform": info["feature_transform"],
                "target": f"true energy standardized (mean {info['y_mean']:.2f} GeV, std {info['y_std']:.2f} GeV)"}
        return TaskData(task, np.asarray(x_tr, np.float64), np.asarray(y_tr, np.float64),
                        np.asarray(x_te, np.float64), np.asarray(y_te, np.float64), desc)
    from .data import load_task

    ds = load_task(task, n_test=n_test, grayscale=grayscale, downsample=downsample, standardize=standardize, seed=seed)
    if not 1 <= n_pool <= len(ds.x_train):
        raise ValueError(f"n_pool: expected 1 <= n_pool <= {len(ds.x_train)}, got {n_pool}")
    order = np.random.default_rng(seed).permutation(len(ds.x_train))[:n_pool]
    transform = {None: "pixels / 255 in [0, 1]", "image": "pixels / 255, each image to zero mean and unit mean square",
                 "feature": "pixels / 255, standardized per pixel over the training split"}[standardize]
    desc = {"features": int(ds.x_train.shape[1]), "transform": transform, "target": "one-hot (k = 10)",
            "grayscale": grayscale, "downsample": downsample}
    return TaskData(task, ds.x_train[order], ds.y_train[order], ds.x_test, ds.y_test, desc)


def _coarse_calorimeter(config, cells: int, layers: int):
    """The same calorimeter read out with cells x cells x layers (merged) ECAL cells covering the same volume."""
    ecal = config.ecal
    if cells == ecal.n_cells and layers == ecal.n_layers:
        return config
    return config.replace(ecal=ecal.replace(n_cells=cells, cell_size_mm=ecal.cell_size_mm * ecal.n_cells / cells,
                                            n_layers=layers, layer_depth_x0=ecal.layer_depth_x0 * ecal.n_layers / layers))
