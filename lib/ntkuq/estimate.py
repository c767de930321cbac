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
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .checks import InputTypeError, check_fraction, check_int, check_positive, real_array
from .data import subset_sizes
from .lossstats import eps_floor, eps_population
from .spec import MLPSpec
from .userdata import DataError, Preprocessing, Table, check_pair, fit_preprocessing, read_table

QUANTILE_LEVELS = (0.025, 0.5, 0.975)
"""Default quantiles of L reported: the median and a central 95 % interval."""
QUANTILE_MAX_TEST = 4000
"""Largest N_T for which the distribution of L (an eigendecomposition of the N_T x N_T covariance) is computed."""
FLOPS_PER_S = 5e9
"""Nominal float64 throughput of the time estimate (two CPU cores); a GPU is much faster."""
OVERHEAD_S = 15.0
"""Fixed time for imports and JIT compilation in the time estimate."""
KERNEL_FLOPS = {"relu": 60.0, "erf": 60.0, "tanh": 64 * 64 * 30.0}
"""Operations per kernel entry and layer: closed forms (ReLU, erf) or 64 x 64 Gauss-Hermite nodes (tanh)."""
PLATEAU_TOL = 0.05
"""The eps_L plateau rule (as in the synthesis chapter): |slope| < max(2 standard errors, PLATEAU_TOL)."""


class TooLargeError(ValueError):
    """The requested computation would exceed the memory or time budget; the message says what would fit."""


# ---------------------------------------------------------------------------------------------
# Sizes, cost and budget
# ---------------------------------------------------------------------------------------------

def auto_sizes(n_train: int, count: int = 8) -> List[int]:
    """Log-spaced nested sizes from max(10, N/100) (at most N) up to N, the full training set."""
    n_train = check_int(n_train, "n_train")
    return subset_sizes(min(n_train, max(10, n_train // 100)), n_train, count)


@dataclass(frozen=True)
class Cost:
    """Estimated peak memory (bytes) and wall time (seconds) of an `estimate` run."""

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


def available_memory_bytes() -> float:
    """Memory free for this run: the accelerator's limit if JAX runs on one, else MemAvailable (Linux)."""
    import jax

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


def _largest(fits, hi: int) -> int:
    """Largest m in [0, hi] with fits(m) (fits is monotone: True up to some m)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


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
    t_fit = _largest(lambda t: t >= 1 and ok(model(n_max, t)), n_test)
    n_fit = _largest(lambda m: m >= 1 and ok(model(m, n_test)), n_max)
    ways = []
    if t_fit >= 1:
        ways.append(f"fewer test points: --test-points {t_fit} (keeping N_D = {n_max})")
    if n_fit >= 1:
        ways.append(f"smaller training sizes: --sizes ending at {n_fit} (keeping N_T = {n_test})")
    hint = "; or ".join(ways) if ways else "nothing close to this size fits; use a machine with more memory"
    raise TooLargeError(
        f"too large for this machine: N_D = {n_max}, N_T = {n_test} needs about {cost.memory_gib:.3g} GiB and "
        f"{cost.seconds / 60:.3g} min, the limits are {max_memory_bytes / 2**30:.3g} GiB and {max_seconds / 60:.3g} min "
        f"(raise them with --max-memory-gb / --max-minutes if you know better). Would fit: {hint}")


# ---------------------------------------------------------------------------------------------
# The finite-width comparison
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnsembleOptions:
    """A trained finite-width ensemble for comparison: `members` nets of `width`, full-batch training.

    optimizer 'momentum' (heavy ball, default), 'nesterov' or 'gd', at eta_fraction of its stable
    maximum; steps None means converged: the number of steps after which the infinite-width ensemble's
    mu_L and sigma_L stay within `tol` of t = infinity (ntkuq.convergence.converged_steps), at least
    min_steps and at most max_steps.  Finite networks may still be training then: the result records the
    fall of their mean train loss over the last recording interval.
    """

    members: int = 16
    width: int = 30
    steps: Optional[int] = None
    optimizer: str = "momentum"
    momentum: Optional[float] = 0.9
    eta_fraction: float = 0.5
    tol: float = 0.01
    max_steps: int = 20000
    min_steps: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        from .gains import check_optimizer

        check_int(self.members, "members", minimum=2)
        check_int(self.width, "width")
        if self.steps is not None:
            check_int(self.steps, "steps")
        if self.optimizer not in ("gd", "momentum", "nesterov"):
            raise ValueError(f"optimizer: expected 'gd', 'momentum' or 'nesterov' (full batch), got {self.optimizer!r}")
        if self.optimizer == "gd":
            object.__setattr__(self, "momentum", None)
        check_optimizer(self.optimizer, self.momentum)
        check_fraction(self.tol, "tol")
        check_int(self.max_steps, "max_steps")
        check_int(self.min_steps, "min_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        if not 0 < check_positive(self.eta_fraction, "eta_fraction") < 1:
            raise ValueError(f"eta_fraction: expected a number in (0, 1), got {self.eta_fraction!r}")


def _train_members(spec: MLPSpec, x, y, x_test, y_test, opts: EnsembleOptions, steps: int, eta: float,
                   progress: bool):
    """The one call of the finite-width trainer."""
    from .ensembles import train_ensemble

    return train_ensemble(spec.with_width(opts.width), x, y, x_test, y_test, n_members=opts.members, steps=steps,
                          eta=eta, seed=opts.seed, optimizer=opts.optimizer, momentum=opts.momentum,
                          progress=progress)


def _drift(res) -> Dict[str, float]:
    """Relative fall of the members' mean train loss over the last recording interval (0: done training)."""
    if res.steps.size < 2:
        return {"from_step": 0, "to_step": 0, "relative_fall": 0.0}
    before, after = float(np.mean(res.train_history[:, -2])), float(np.mean(res.train_history[:, -1]))
    return {"from_step": int(res.steps[-2]), "to_step": int(res.steps[-1]), "relative_fall": 1.0 - after / before}


def compare_ensemble(spec: MLPSpec, x, y, x_test, y_test, opts: EnsembleOptions, *, diag_reg: float = 0.0,
                     progress: bool = False) -> Dict[str, object]:
    """Train the ensemble; return its sample statistics (bootstrap errors) and the infinite-width ones after the same steps.

    Args:
        spec: the architecture (infinite width); the members are spec.with_width(opts.width).
        x: the training inputs, shape (N_D, features), already preprocessed.
        y: the training targets, shape (N_D, k).
        x_test: the test inputs, shape (N_T, features).
        y_test: the test targets, shape (N_T, k).
        opts: the ensemble's size, width, optimizer, learning-rate fraction, steps rule and seed.
        diag_reg: ridge added to the diagonal of the NTK in the infinite-width solves (default 0: none).
        progress: True shows the trainer's progress bar (default False).

    Returns:
        A JSON-ready dict: the settings, the steps and their rule, eta, the members' mu_L, sigma_L, eps_L with
        bootstrap errors, their test and train losses, the train-loss drift and "infinite_same_steps".
    """
    from .convergence import converged_steps
    from .dynamics import ntk_prediction, train_test_kernels
    from .ensembles import default_eta
    from .lossstats import loss_stats

    eta = default_eta(spec, x, opts.eta_fraction, optimizer=opts.optimizer, momentum=opts.momentum)
    kern = train_test_kernels(spec, x, x_test)
    steps, converged = opts.steps, None
    if steps is None:
        conv = converged_steps(kern, y, y_test, eta=eta, optimizer=opts.optimizer, momentum=opts.momentum,
                               tol=opts.tol, max_steps=opts.max_steps, diag_reg=diag_reg)
        steps, converged = max(conv.steps, opts.min_steps), conv.converged
    res = _train_members(spec, x, y, x_test, y_test, opts, steps, eta, progress)
    st = res.stats(seed=opts.seed)
    same = loss_stats(ntk_prediction(kern, y, steps=steps, eta=eta, optimizer=opts.optimizer, momentum=opts.momentum,
                                     diag_reg=diag_reg), y_test)
    return {"optimizer": opts.optimizer, "momentum": opts.momentum, "members": opts.members, "width": opts.width,
            "steps": steps, "steps_rule": "given" if opts.steps is not None else
            f"converged_steps(tol={opts.tol:g}, max_steps={opts.max_steps}), at least {opts.min_steps}",
            "converged": converged,
            "eta": eta, "eta_fraction": opts.eta_fraction, "seed": opts.seed, "mu_L": st.mu,
            "mu_L_err": st.mu_err, "sigma_L": st.sigma, "sigma_L_err": st.sigma_err, "eps_L": st.eps,
            "eps_L_err": st.eps_err, "member_losses": [float(v) for v in res.test_losses],
            "max_train_loss": float(np.max(res.train_losses)), "train_loss": float(np.mean(res.train_losses)),
            "train_loss_drift": _drift(res),
            "infinite_same_steps": {"mu_L": same.mu, "sigma_L": same.sigma, "eps_L": same.eps}}


# ---------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """Everything `estimate` found; `to_dict` is what `ntkuq estimate --json` writes."""

    mu_L: float
    sigma_L: float
    eps_L: float
    n_train: int
    n_test: int
    n_out: int
    quantiles: Dict[float, float]
    bias2: float
    variance: float
    sweep: List[Dict[str, float]]
    fits: Optional[Dict[str, object]]
    verdict: str
    spec: MLPSpec
    preprocessing: Preprocessing
    data: Dict[str, object]
    cost: Cost
    diag_reg: float
    seed: int
    ensemble: Optional[Dict[str, object]] = None
    seconds: float = 0.0
    distribution: object = field(default=None, repr=False, compare=False)
    var_diag: float = math.nan
    """The d = d' part of sigma_L^2 (each test point with itself; `lossstats.LossStats.var_diag`)."""
    var_offdiag: float = math.nan
    """The d != d' part of sigma_L^2 (pairs of test points)."""

    @property
    def eps_population(self) -> float:
        """eps_L of an infinite test set from the same distribution (the spread of the population loss)."""
        return eps_population(self.mu_L, self.var_offdiag, self.n_test) if self.n_test >= 2 else math.nan

    @property
    def eps_floor(self) -> float:
        """The floor that the N_T test points put under eps_L: sqrt(N_T var_diag / N_T) / mu_L."""
        return eps_floor(self.mu_L, self.var_diag, self.n_test, self.n_test) if self.n_test >= 2 else math.nan

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready results, inputs and settings (`distribution` is left out; `seconds` is under timing)."""
        return {"mu_L": self.mu_L, "sigma_L": self.sigma_L, "eps_L": self.eps_L, "n_train": self.n_train,
                "n_test": self.n_test, "n_out": self.n_out,
                "quantiles": {f"{q:g}": v for q, v in self.quantiles.items()},
                "squared_bias": self.bias2, "ensemble_variance": self.variance,
                "var_diag": self.var_diag, "var_offdiag": self.var_offdiag,
                "eps_population": self.eps_population, "eps_floor": self.eps_floor,
                "method": "infinite-width NTK ensemble, full-batch gradient descent to t = infinity",
                "sweep": self.sweep, "fits": self.fits, "plateau_verdict": self.verdict,
                "spec": asdict(self.spec), "preprocessing": self.preprocessing.to_dict(), "data": self.data,
                "diag_reg": self.diag_reg, "seed": self.seed, "ensemble": self.ensemble,
                "cost_estimate": {"memory_gib": self.cost.memory_gib, "seconds": self.cost.seconds},
                "timing": {"seconds": self.seconds}}

    def sweep_csv(self) -> str:
        """The nested-size statistics as CSV text (full float64 precision)."""
        cols = ["n_train", "mu_L", "sigma_L", "eps_L", "var_diag", "var_offdiag", "eps_population"]
        lines = [",".join(cols)]
        lines += [",".join(repr(r[c]) if c != "n_train" else str(r[c]) for c in cols) for r in self.sweep]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """The human-readable report the command line prints."""
        from .report import summary_text

        return summary_text(self)

    def figure(self):
        """mu_L, sigma_L, eps_L against N_D with fits, and the distribution of L at the largest size."""
        from .report import estimate_figure

        return estimate_figure(self)


def _verdict(fits: Optional[Dict[str, object]]) -> str:
    if fits is None:
        return "not enough sizes (need 3 or more)"
    slope, err = fits["eps_slope"], fits["eps_slope_err"]
    if abs(slope) < max(2 * err if math.isfinite(err) else 0.0, PLATEAU_TOL):
        return "plateau"
    return "still falling" if slope < 0 else "rising"


def _fits(sweep: List[Dict[str, float]]) -> Optional[Dict[str, object]]:
    from .study import fit_row, fits

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
    first test rows only.  Raises TooLargeError before computing if the cost estimate exceeds
    max_memory_gb (default 80 % of the free memory) or max_minutes.

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
    """
    from .dynamics import ntk_prediction, train_test_kernels
    from .lossstats import loss_distribution, loss_stats
    from .sweep import nested_sweep

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
    from .budget import memory_limit_bytes  # one budget rule (NTKUQ_MEMORY_LIMIT_GIB or a share of free memory)

    limit = (memory_limit_bytes() if max_memory_gb is None
             else check_positive(max_memory_gb, "max_memory_gb") * 2**30)
    check_budget(cost, n_t, sizes, max_memory_bytes=limit, max_seconds=check_positive(max_minutes, "max_minutes") * 60,
                 model=lambda m, t: cost_estimate(m, t, x_tr.shape[1], k, [s for s in sizes if s < m] + [m], depth, activation))

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
    """Read TRAIN and TEST (.npz or .csv, see userdata.read_table) and run `estimate` with the options."""
    paths = [str(train), str(test)]
    if target and not any(p.lower().endswith(".csv") for p in paths):
        raise DataError(f"{paths[0]}, {paths[1]}: --target/target names CSV columns; .npz files hold their targets in 'y'")
    tr, te = (read_table(p, target if p.lower().endswith(".csv") else None) for p in paths)
    check_pair(tr, te)
    info = {"train": tr.path, "test": te.path, "features": list(tr.features), "targets": list(tr.targets)}
    return estimate(tr.x, tr.y, te.x, te.y, data_info=info, **options)
