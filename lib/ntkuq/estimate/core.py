"""Your own data: the initialization spread of an MLP's test loss, exact at infinite width, from kernels.

`estimate` takes training and test arrays (or `estimate_files` two .npz/.csv files, see `userdata`)
and returns an `Estimate`: mu_L, sigma_L, eps_L of the test loss L = 1/(N_T k) sum (z - y)^2 over the
ensemble of infinitely wide MLPs trained by gradient descent to t = infinity from independent
initializations (dynamics.ntk_prediction, lossstats.loss_stats), the quantiles of L (its exact
generalized chi-square distribution, lossstats.loss_distribution), the statistics at nested training
sizes (sweep.nested_sweep: prefixes of one seeded permutation of the training set) with power-law fits
and the eps_L plateau verdict (scaling, study.fits), and optionally a trained finite-width ensemble
for comparison.  Before computing, a memory and time estimate (`cost_estimate`) is checked against
the machine (`check_budget`), which refuses with a `TooLargeError` saying what would fit.
The command line `ntkuq estimate` (cli.py) is a thin wrapper around `estimate_files`.
"""
from __future__ import annotations

import math
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ntkuq._src.budget import memory_limit_bytes
from ntkuq._src.checks import check_fraction, check_int, check_positive, real_array
from ntkuq.data.userdata import DataError, Table, check_pair, fit_preprocessing, read_table
from ntkuq.errors import InputTypeError
from ntkuq.estimate.cost import QUANTILE_MAX_TEST, auto_sizes, check_budget, cost_estimate
from ntkuq.estimate.ensemble import EnsembleOptions, compare_ensemble
from ntkuq.estimate.report import PLATEAU_TOL, Estimate
from ntkuq.infinite.distribution import loss_distribution
from ntkuq.infinite.lossstats import loss_stats
from ntkuq.infinite.predict import ntk_prediction, train_test_kernels
from ntkuq.infinite.sweep import nested_sweep
from ntkuq.spec import MLPSpec
from ntkuq.study.tables import fit_row, fits

QUANTILE_LEVELS = (0.025, 0.5, 0.975)
"""Default quantiles of L reported: the median and a central 95 % interval."""


def _verdict(fits: Optional[Dict[str, object]]) -> str:
    if fits is None:
        return "not enough sizes (need 3 or more)"
    slope, err = fits["eps_slope"], fits["eps_slope_err"]
    if abs(slope) < max(2 * err if math.isfinite(err) else 0.0, PLATEAU_TOL):
        return "plateau"
    return "still falling" if slope < 0 else "rising"


def _fits(sweep: List[Dict[str, float]]) -> Optional[Dict[str, object]]:

    if len(sweep) < 3:
        return None
    curve = {"n": np.array([r["n_train"] for r in sweep], dtype=float)}
    for name in ("mu", "sigma", "eps"):
        curve[name] = np.array([r[f"{name}_L"] for r in sweep])
    f = fits(curve)
    row = fit_row("", "", f)
    out = {k: row[k] for k in ("alpha", "alpha_err", "beta", "beta_err", "eps_slope", "eps_slope_err",
                               "eps_plateau", "eps_plateau_err")}
    out["decade"] = [f["plateau"].n_lo, f["plateau"].n_hi]
    return out


def estimate(x_train, y_train, x_test, y_test, *, depth: int = 3, activation: str = "relu",
             lambda_ratio: float = 10.0, sizes: Union[str, Sequence[int]] = "auto", standardize: str = "none",
             quantile_levels: Sequence[float] = QUANTILE_LEVELS, shuffle: bool = True, seed: int = 0,
             diag_reg: float = 0.0, test_points: Optional[int] = None, max_memory_gb: Optional[float] = None,
             max_minutes: float = 60.0, ensemble: Optional[EnsembleOptions] = None, progress: bool = False,
             data_info: Optional[Dict[str, object]] = None) -> Estimate:
    """Exact infinite-width mu_L, sigma_L, eps_L, quantiles and nested-size scaling of the test loss.

    The spec is MLPSpec.critical(activation, depth, lambda_ratio).  The training rows are permuted
    with `seed` (unless shuffle=False) so that the nested sizes are random subsets; the headline
    numbers are at the largest size (all training points for sizes='auto').  `test_points` keeps the
    first test rows only.  The cost estimate is checked against max_memory_gb (default 80 % of the free
    memory) and max_minutes before anything is computed.

    Args:
        x_train: training inputs, shape (N_D, features).
        y_train: training targets, shape (N_D,) or (N_D, k).
        x_test: test inputs, shape (N_T, features), the same features as x_train.
        y_test: test targets, shape (N_T,) or (N_T, k).
        depth: the MLP's depth (default 3).
        activation: the activation, at criticality (default "relu").
        lambda_ratio: lambda_b / lambda_W, the bias-to-weight learning-rate ratio (default 10).
        sizes: the nested training-set sizes N_D, or "auto" (default: `auto_sizes`, up to all training points).
        standardize: preprocessing, "none" (default), "features", "targets" or "both", fitted on the training
            set (`userdata.fit_preprocessing`).
        quantile_levels: probabilities at which the quantiles of L are given (default QUANTILE_LEVELS).
        shuffle: True (default) permutes the training rows with `seed` before the nested subsets are taken.
        seed: the permutation's seed (default 0), an integer >= 0.
        diag_reg: ridge added to the NTK's diagonal in the solves (default 0: none).
        test_points: keep only the first test rows; None (default) for all.
        max_memory_gb: the memory limit in GiB; None (default): `budget.memory_limit_bytes()`
            (NTKUQ_MEMORY_LIMIT_GIB, else 80 % of the free memory).
        max_minutes: the time limit in minutes (default 60).
        ensemble: a finite-width ensemble to train for comparison; None (default) for none.
        progress: True shows progress bars (default False).
        data_info: facts about the data (paths, feature and target names) recorded in Estimate.data.

    Returns:
        Estimate: the headline statistics at the largest size, the sweep, the fits, the verdict and the settings.

    Raises:
        InputTypeError: if quantile_levels is not a list of probabilities.
        ValueError: if the arrays' shapes do not match (x as (points, features), y with as many rows, the same
            features in x_test as in x_train), or sizes is neither 'auto' nor positive sizes up to N_D.
        TooLargeError: before computing, if the cost estimate exceeds max_memory_gb or max_minutes.

    Example:
        >>> import numpy as np
        >>> import ntkuq
        >>> ntkuq.enable_float64()
        >>> from ntkuq.estimate import estimate
        >>> rng = np.random.default_rng(0)
        >>> x_train, x_test = rng.normal(size=(40, 3)), rng.normal(size=(20, 3))
        >>> y_train, y_test = np.sin(x_train).sum(axis=1), np.sin(x_test).sum(axis=1)
        >>> est = estimate(x_train, y_train, x_test, y_test, sizes=[10, 20, 40])
        >>> est.n_train, est.n_test
        (40, 20)
        >>> [row["n_train"] for row in est.sweep]
        [10, 20, 40]
        >>> bool(0 < est.eps_L < 1)
        True
        >>> print(f"{est.eps_L:.2g}")
        0.51
    """
    start = time.perf_counter()
    spec = MLPSpec.critical(activation, depth=depth, lambda_ratio=lambda_ratio)
    x_tr, y_tr, x_te, y_te = (real_array(v, n) for v, n in ((x_train, "x_train"), (y_train, "y_train"),
                                                              (x_test, "x_test"), (y_test, "y_test")))
    if isinstance(quantile_levels, (str, bytes)) or not hasattr(quantile_levels, "__iter__"):
        raise InputTypeError(f"quantile_levels: expected a list of probabilities, got {quantile_levels!r}")
    quantile_levels = [check_fraction(q, "quantile_levels") for q in quantile_levels]
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    y_tr, y_te = (y if y.ndim != 1 else y[:, None] for y in (y_tr, y_te))
    tr, te = Table(x_tr, y_tr, (), (), "train"), Table(x_te, y_te, (), (), "test")
    if x_tr.ndim != 2 or x_te.ndim != 2 or y_tr.shape[0] != x_tr.shape[0] or y_te.shape[0] != x_te.shape[0]:
        raise ValueError(f"x, y: expected x as (points, features) and y with as many rows, got x_train {x_tr.shape}, "
                         f"y_train {y_tr.shape}, x_test {x_te.shape}, y_test {y_te.shape}")
    if x_te.shape[1] != x_tr.shape[1]:
        raise ValueError(f"x_test: expected {x_tr.shape[1]} features (columns) to match x_train, got {x_te.shape[1]}")
    check_pair(tr, te)
    if test_points is not None:
        test_points = check_int(test_points, "test_points", maximum=len(x_te), what="the number of test points")
        x_te, y_te = x_te[:test_points], y_te[:test_points]
    seed = check_int(seed, "seed", minimum=0)
    order = np.random.default_rng(seed).permutation(len(x_tr)) if shuffle else np.arange(len(x_tr))
    x_tr, y_tr = x_tr[order], y_tr[order]
    if isinstance(sizes, str):
        if sizes != "auto":
            raise ValueError(f"sizes: expected 'auto' or a list of training-set sizes, got {sizes!r}")
        sizes = auto_sizes(len(x_tr))
    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 1 or sizes[-1] > len(x_tr):
        raise ValueError(f"sizes: expected 'auto' or positive sizes up to N_D = {len(x_tr)}, got {sizes!r}")
    prep = fit_preprocessing(x_tr, y_tr, standardize)
    x_tr, x_te, y_tr, y_te = prep.apply_x(x_tr), prep.apply_x(x_te), prep.apply_y(y_tr), prep.apply_y(y_te)

    n_max, n_t, k = sizes[-1], len(x_te), y_tr.shape[1]
    cost = cost_estimate(len(x_tr), n_t, x_tr.shape[1], k, sizes, depth, activation)

    limit = (memory_limit_bytes() if max_memory_gb is None
             else check_positive(max_memory_gb, "max_memory_gb") * 2**30)
    check_budget(cost, n_t, sizes, max_memory_bytes=limit,
                 max_seconds=check_positive(max_minutes, "max_minutes") * 60,
                 model=lambda m, t: cost_estimate(m, t, x_tr.shape[1], k, [s for s in sizes if s < m] + [m],
                                                  depth, activation))

    x_n, y_n = x_tr[:n_max], y_tr[:n_max]
    pred = ntk_prediction(train_test_kernels(spec, x_n, x_te), y_n, diag_reg=diag_reg)
    st = loss_stats(pred, y_te)
    dist, quantiles = None, {}
    if n_t <= QUANTILE_MAX_TEST:
        dist = loss_distribution(pred, y_te)
        quantiles = {float(q): dist.quantile(q) for q in quantile_levels}
    del pred
    points = nested_sweep(spec, x_n, y_n, x_te, y_te, sizes, methods=("ntk",), diag_reg=diag_reg, progress=progress)
    sweep = [{"n_train": p.n_train, "mu_L": p.stats.mu, "sigma_L": p.stats.sigma, "eps_L": p.stats.eps,
              "var_diag": p.stats.var_diag, "var_offdiag": p.stats.var_offdiag,
              "eps_population": p.stats.eps_population if n_t >= 2 else math.nan} for p in points]
    fits = _fits(sweep)
    comparison = None
    if ensemble is not None:
        comparison = compare_ensemble(spec, x_n, y_n, x_te, y_te, ensemble, diag_reg=diag_reg, progress=progress)
    info = dict(data_info or {})
    info.update(n_features=int(x_tr.shape[1]), n_train_points=int(len(x_tr)), n_test_points=int(n_t),
                order=f"training rows permuted with seed {seed}" if shuffle else "training rows in file order",
                sizes=[int(s) for s in sizes])
    return Estimate(st.mu, st.sigma, st.eps, int(n_max), int(n_t), int(k), quantiles, st.bias2 / (n_t * k),
                    k * st.trace_S / (n_t * k), sweep, fits, _verdict(fits), spec, prep, info, cost, float(diag_reg),
                    seed, comparison, time.perf_counter() - start, dist, st.var_diag, st.var_offdiag)


def estimate_files(train, test, *, target: Optional[Union[str, Sequence[str]]] = None, **options) -> Estimate:
    """Read TRAIN and TEST (.npz or .csv, see userdata.read_table) and run `estimate` with the options.

    Args:
        train: the training set's path, .npz (arrays x, y) or .csv.
        test: the test set's path, same format rules as train.
        target: the CSV target column name(s), a list or comma-separated (needed for .csv files; .npz files
            hold their targets in 'y'); None (default).
        **options: keyword arguments of `estimate` (depth, activation, sizes, ...).

    Returns:
        Estimate: the result of `estimate` on the two files, with their paths, features and targets in
        Estimate.data.

    Raises:
        DataError: if target is given but neither file is a .csv.
    """
    paths = [str(train), str(test)]
    if target and not any(p.lower().endswith(".csv") for p in paths):
        raise DataError(f"{paths[0]}, {paths[1]}: --target/target names CSV columns; "
                        ".npz files hold their targets in 'y'")
    tr, te = (read_table(p, target if p.lower().endswith(".csv") else None) for p in paths)
    check_pair(tr, te)
    info = {"train": tr.path, "test": te.path, "features": list(tr.features), "targets": list(tr.targets)}
    return estimate(tr.x, tr.y, te.x, te.y, data_info=info, **options)


__all__ = ["QUANTILE_LEVELS", "estimate", "estimate_files"]
