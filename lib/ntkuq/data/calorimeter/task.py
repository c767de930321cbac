"""The energy-regression task on simulated showers: cell features in, true energy out.

`calorimeter_task` returns the training pool (stream 0 of the seed) and the test set (stream 1),
both through the cache of `load_calorimeter`, with features normalized by training-pool statistics.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ntkuq.data.calorimeter.cache import load_calorimeter
from ntkuq.data.calorimeter.config import CalorimeterConfig
from ntkuq.data.calorimeter.simulator import Showers

_BLOCK = 1024  # rows per block when building features (bounds the temporaries)


def cell_features(showers: Showers, scale_mev: float = 1.0, include_hcal: bool = True,
                  dtype=np.float32) -> np.ndarray:
    """Flattened cells (ECAL, then HCAL if present and include_hcal), signed-log transformed.

    x = sign(E) log1p(abs(E) / scale_mev), E the visible cell energy in MeV (noise makes a few
    cells negative; the sign keeps the noise symmetric).  Built over blocks of rows in float64.

    Args:
        showers: the simulated showers.
        scale_mev: the scale of the signed log1p, in visible MeV (default 1.0).
        include_hcal: append the HCAL's cells when the showers have them (default True).
        dtype: the dtype of the result (default float32).

    Returns:
        The features, (N, n_features) of `dtype`.
    """
    n = len(showers)
    parts = [showers.ecal.reshape(n, -1)]
    if include_hcal and showers.hcal is not None:
        parts.append(showers.hcal.reshape(n, -1))
    widths = [q.shape[1] for q in parts]
    out = np.empty((n, sum(widths)), dtype=dtype)
    f = 1e3 / scale_mev
    for s in range(0, n, _BLOCK):
        col = 0
        for q, w in zip(parts, widths):
            e = q[s:s + _BLOCK].astype(np.float64) * f
            out[s:s + _BLOCK, col:col + w] = np.sign(e) * np.log1p(np.abs(e))
            col += w
    return out


def _column_mean_std(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) std in float64, two passes over row blocks."""
    n = x.shape[0]
    mean = np.zeros(x.shape[1])
    for s in range(0, n, _BLOCK):
        mean += x[s:s + _BLOCK].sum(axis=0, dtype=np.float64)
    mean /= n
    var = np.zeros(x.shape[1])
    for s in range(0, n, _BLOCK):
        var += ((x[s:s + _BLOCK] - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(var / n)


def _standardize_(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std in place, over row blocks; returns x."""
    for s in range(0, x.shape[0], _BLOCK):
        x[s:s + _BLOCK] = (x[s:s + _BLOCK] - mean) / std
    return x


def calorimeter_task(n_train_pool: int, n_test: int, config: Optional[CalorimeterConfig] = None,
                     seed: int = 0, *, cache_dir=None, use_cache: bool = True,
                     feature_scale_mev: float = 1.0, include_hcal: bool = True,
                     normalization: str = "global", dtype=np.float32, progress: bool = False):
    """The energy-regression task: (x_train, y_train, x_test, y_test, info).

    Args:
        n_train_pool: showers in the training pool (>= 2): stream 0 of `seed`.
        n_test: showers in the test set (>= 1): stream 1 of `seed`, so the test set does not change
            with n_train_pool.
        config: the calorimeter (default ``CalorimeterConfig()``).
        seed: the simulation seed of both sets (default 0).
        cache_dir: the cache folder, passed to `load_calorimeter` (default None: `default_cache_dir()`).
        use_cache: passed to `load_calorimeter`: cached unless use_cache=False (default True).
        feature_scale_mev: the scale of `cell_features`' signed log1p, in visible MeV (default 1.0).
        include_hcal: append the HCAL's cells (when the config has an HCAL; default True).
        normalization: 'global' (default) divides every feature by one number, the pool's root mean square
            feature (so the squared norm of x over n_0 is about 1 and noise-only cells stay near 0: the kernels see the
            shower, not the noise); 'feature' standardizes each feature by its pool mean and standard
            deviation (features that never vary keep std 1), which blows the noise of empty outer
            cells up to unit variance.
        dtype: of the returned arrays (float32 by default: 25,000 showers x 15,625 cells is 1.6 GB).
        progress: a tqdm bar while simulating, passed to `load_calorimeter` (default False).

    Returns:
        (x_train, y_train, x_test, y_test, info): x_train (n_train_pool, n_features), y_train
        (n_train_pool, 1), x_test, y_test: inputs are `cell_features` normalized with training-pool
        statistics, targets the true energy standardized with the pool's mean and std.  info: y_mean,
        y_std (GeV), x_mean, x_std (per feature), energies_train/test (GeV), calibrated_train/test
        (visible sum / sampling fraction, GeV), config, seed, feature_scale_mev, normalization,
        feature_transform (a description), ecal_shape, hcal_shape (or None).

    Raises:
        ValueError: if `n_train_pool`, `n_test` or `feature_scale_mev` is out of range, `config` is not a
            `CalorimeterConfig`, its energy range is a single energy (E_min = E_max), or `normalization`
            is unknown.
    """
    config = CalorimeterConfig() if config is None else config
    if isinstance(n_train_pool, bool) or not isinstance(n_train_pool, (int, np.integer)) or n_train_pool < 2:
        raise ValueError(f"n_train_pool: expected an integer >= 2, got {n_train_pool!r}")
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) or n_test < 1:
        raise ValueError(f"n_test: expected a positive integer, got {n_test!r}")
    if (isinstance(feature_scale_mev, bool) or not isinstance(feature_scale_mev, (int, float))
            or not feature_scale_mev > 0):
        raise ValueError(f"feature_scale_mev: expected a positive number, got {feature_scale_mev!r}")
    if not isinstance(config, CalorimeterConfig):
        raise ValueError(f"config: expected a CalorimeterConfig, got {type(config).__name__}")
    lo, hi = config.energy_range
    if not hi > lo:  # a fixed energy is a valid configuration for showers, but not for an energy regression
        raise ValueError(f"energy_range: the energy-regression task needs E_min < E_max (the targets are the "
                         f"energies standardized by their spread), got {config.energy_range!r}")
    kw = dict(cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    train = load_calorimeter(int(n_train_pool), config, seed, stream=0, **kw)
    test = load_calorimeter(int(n_test), config, seed, stream=1, **kw)

    if normalization not in ("global", "feature"):
        raise ValueError(f"normalization: expected 'global' or 'feature', got {normalization!r}")
    x_train = cell_features(train, feature_scale_mev, include_hcal, dtype=dtype)
    x_mean, x_std = _column_mean_std(x_train)
    x_std = np.where(x_std > 0, x_std, 1.0)
    if normalization == "global":
        rms = float(np.sqrt(np.mean(np.square(x_train, dtype=np.float64))))
        x_mean, x_std = np.zeros_like(x_mean), np.full_like(x_std, rms if rms > 0 else 1.0)
    x_train = _standardize_(x_train, x_mean, x_std)
    x_test = _standardize_(cell_features(test, feature_scale_mev, include_hcal, dtype=dtype),
                           x_mean, x_std)

    y_mean, y_std = float(train.energies.mean()), float(train.energies.std())
    y_train = ((train.energies - y_mean) / y_std)[:, None].astype(dtype)
    y_test = ((test.energies - y_mean) / y_std)[:, None].astype(dtype)
    info = dict(
        y_mean=y_mean, y_std=y_std, x_mean=x_mean, x_std=x_std,
        energies_train=train.energies, energies_test=test.energies,
        calibrated_train=train.calibrated_energy(include_hcal),
        calibrated_test=test.calibrated_energy(include_hcal),
        config=config, seed=seed, feature_scale_mev=float(feature_scale_mev),
        normalization=normalization,
        feature_transform=("x = sign(E) log1p(|E| / feature_scale_mev), E visible cell energy in MeV; then "
                           + ("divided by the training pool's root mean square feature" if normalization == "global"
                              else "(x - x_mean) / x_std per feature (training pool)")),
        ecal_shape=config.ecal.shape,
        hcal_shape=config.hcal.shape if (config.hcal is not None and include_hcal) else None,
    )
    return x_train, y_train, x_test, y_test, info


__all__ = ["calorimeter_task", "cell_features"]
