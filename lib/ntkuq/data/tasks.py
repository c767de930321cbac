"""The paper's three tasks behind one type and one loader.

The tasks are MNIST, CIFAR-10 (classification) and the calorimeter (regression).

`load` returns every task as a `TaskData`: a training pool, a fixed test set and targets as float64 arrays (the
calorimeter's inputs as the float32 numbers its cell features are; `data.load_task` builds the image tasks'
TaskData, with integer labels).  Training sets are taken by one
function, `TaskData.subset`, built on `nested_subsets`: prefixes of one seeded permutation of the pool, so
the sets of a study are nested.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ntkuq._src.checks import check_int
from ntkuq.data.calorimeter import CalorimeterConfig, calorimeter_task
from ntkuq.data.images import load_task
from ntkuq.data.subsets import TaskData, nested_subsets

TASKS = ("mnist", "cifar10", "calorimeter")
"""Task names accepted by `load`."""


def load(task: str, *, n_pool: int, n_test: int, seed: int = 0, downsample: int = 1, grayscale: bool = False,
         standardize: Optional[str] = None, calorimeter_cells: int = 25, calorimeter_layers: int = 25) -> TaskData:
    """Load a task: a seeded pool of n_pool training points and n_test test points (see the module docstring).

    Images keep pixels in [0, 1] by default (standardize=None), as the paper's loss magnitudes suggest;
    'image' or 'feature' standardization are options (see ntkuq.data.load_task).  The calorimeter is
    read out with calorimeter_cells^2 x calorimeter_layers cells (25^3 is the full granularity).

    Args:
        task: 'mnist', 'cifar10' or 'calorimeter'.
        n_pool: training points kept (the first n_pool of a seeded permutation of the training split).
        n_test: test points.
        seed: the permutations of the pool and the test set (and the calorimeter's simulation); default 0.
        downsample: images: average-pool by this factor (`ntkuq.data.load_task`; default 1).
        grayscale: images: CIFAR-10 as luminance (`ntkuq.data.load_task`; default False).
        standardize: images: None (default), 'image' or 'feature' (`ntkuq.data.load_task`).
        calorimeter_cells: the calorimeter's read-out granularity: cells per transverse axis (default 25).
        calorimeter_layers: the calorimeter's read-out granularity: layers (default 25).

    Returns:
        The task as a `TaskData` (float64 arrays; the calorimeter's inputs float32), with a description
        of the features, transform and targets in `info`.

    Raises:
        ValueError: if `task` is unknown or `n_pool` exceeds the training split (and, from the checks,
            for sizes, seed or preprocessing options out of range).
    """
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    n_pool, n_test = check_int(n_pool, "n_pool"), check_int(n_test, "n_test")
    seed = check_int(seed, "seed", minimum=0)
    calorimeter_cells = check_int(calorimeter_cells, "calorimeter_cells")
    calorimeter_layers = check_int(calorimeter_layers, "calorimeter_layers")
    if task == "calorimeter":
        config = coarse_calorimeter(CalorimeterConfig(), calorimeter_cells, calorimeter_layers)
        x_tr, y_tr, x_te, y_te, info = calorimeter_task(n_pool, n_test, config, seed=seed)
        desc = {"features": int(x_tr.shape[1]), "transform": info["feature_transform"],
                "target": f"true energy standardized (mean {info['y_mean']:.2f} GeV, std {info['y_std']:.2f} GeV)"}
        # the cell features are float32 numbers (calorimeter_task): kept as they are, exactly, at half the
        # memory (25,000 showers x 15,625 cells: 1.6 GB); every computation converts them to float64
        return TaskData(task, np.asarray(x_tr, np.float32), np.asarray(y_tr, np.float64),
                        np.asarray(x_te, np.float32), np.asarray(y_te, np.float64), desc)
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
    """The same calorimeter read out with cells x cells x layers (merged) ECAL cells covering the same volume.

    Args:
        config: the `CalorimeterConfig` to coarsen.
        cells: ECAL cells per transverse axis.
        layers: ECAL layers.

    Returns:
        `config` itself if its ECAL already has that granularity, else a copy with the ECAL's cell size and
        layer depth scaled so that the cells cover the same volume.
    """
    cells, layers = check_int(cells, "cells"), check_int(layers, "layers")
    ecal = config.ecal
    if cells == ecal.n_cells and layers == ecal.n_layers:
        return config
    return config.replace(ecal=ecal.replace(n_cells=cells, cell_size_mm=ecal.cell_size_mm * ecal.n_cells / cells,
                                            n_layers=layers,
                                            layer_depth_x0=ecal.layer_depth_x0 * ecal.n_layers / layers))


__all__ = ["TASKS", "coarse_calorimeter", "load"]
