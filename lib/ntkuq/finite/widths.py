"""Finite width -> infinite width: ensembles at several widths beside the exact infinite-width ensemble.

Perturbation theory says the finite-width corrections to mu_L, sigma_L and eps_L fall like 1/n.  The
sweep trains one ensemble per width (same members' seeds, same data, same optimizer, rate and steps as
the infinite-width prediction it is compared with), and the fits measure

    the log-log slope of abs(stat(n) / stat(inf) - 1) against n (-1 for a 1/n correction), and
    stat(n) = a + b / n by weighted least squares: a is the extrapolation to n -> infinity,

with uncertainties from the members' bootstrap (each width's bootstrap resamples refitted).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from ntkuq._src.checks import check_inputs, check_instance, check_int, check_positive, check_sizes
from ntkuq.finite.ensembles import train_ensemble
from ntkuq.finite.memory import require_ensemble_memory
from ntkuq.finite.stats import EnsembleStats, LossSplit
from ntkuq.finite.stopping import StopRecord, StopRule
from ntkuq.infinite.lossstats import LossStats
from ntkuq.spec import MLPSpec

STATS = ("mu", "sigma", "eps")


@dataclass(frozen=True)
class WidthSweep:
    """Per width the ensemble's statistics and bootstrap resamples; the infinite-width values after the same T."""

    widths: np.ndarray
    stats: Dict[int, EnsembleStats]
    boot: Dict[str, np.ndarray]
    """(n_boot, n_widths) bootstrap resamples of mu, sigma, eps."""
    infinite: LossStats
    steps: int
    optimizer: str
    history_steps: np.ndarray
    """The recording steps of the members' test losses (log-spaced, 0 and T included)."""
    history: Dict[int, np.ndarray]
    """Per width the members' test losses at history_steps, (M, len(history_steps))."""
    alive: Optional[Dict[int, np.ndarray]] = None
    """Per width the members' mean fraction of alive units per hidden layer at history_steps, (len, depth - 1)."""
    splits: Optional[Dict[int, LossSplit]] = None
    """Per width the two parts of sigma_L^2 (var_diag, var_offdiag) with bootstrap errors (`loss_split`)."""
    stopping: Optional[Dict[int, StopRecord]] = None
    """Per width what the stopping rule did (`ntkuq.finite.stopping`); None when the sweep had no rule."""

    def values(self, stat: str) -> np.ndarray:
        """mu, sigma or eps at every width.

        Args:
            stat: "mu", "sigma" or "eps".

        Returns:
            The statistic per width, in the order of `widths`.
        """
        return np.array([getattr(self.stats[int(n)], stat) for n in self.widths])

    def errors(self, stat: str) -> np.ndarray:
        """Bootstrap standard errors at every width.

        Args:
            stat: "mu", "sigma" or "eps".

        Returns:
            The statistic's standard error per width, in the order of `widths`.
        """
        return np.array([getattr(self.stats[int(n)], f"{stat}_err") for n in self.widths])

    def exact(self, stat: str) -> float:
        """The infinite-width value.

        Args:
            stat: "mu", "sigma" or "eps".

        Returns:
            The statistic of `infinite`.
        """
        return float(getattr(self.infinite, stat))


@dataclass(frozen=True)
class WidthFit:
    """Slope of the relative deviation against n, and the 1/n extrapolation, each with its bootstrap error."""

    slope: float
    slope_err: float
    extrapolated: float
    extrapolated_err: float
    exact: float

    @property
    def pull(self) -> float:
        """(extrapolated - exact) / its error: how many standard errors the extrapolation misses by."""
        return (self.extrapolated - self.exact) / self.extrapolated_err if self.extrapolated_err > 0 else np.inf


def width_sweep(spec: MLPSpec, x_train, y_train, x_test, y_test, widths: Sequence[int], *, members: int,
                steps: int, eta: float, infinite: LossStats, optimizer: str = "momentum",
                momentum: Optional[float] = None, seed: int = 0, n_boot: int = 1000, n_record: int = 10,
                warmup: int = 0, stop: Optional[StopRule] = None, progress: bool = False) -> WidthSweep:
    """Train an ensemble of `members` networks at every width and bootstrap its statistics.

    Args:
        spec: the architecture (its width is replaced by each of `widths`).
        x_train: the training inputs (points x features).
        y_train: the training targets (points x outputs).
        x_test: the test inputs (points x features).
        y_test: the test targets (points x outputs).
        widths: hidden-layer widths n, increasing.
        members: ensemble size M at every width (members' seeds shared across widths).
        steps: optimizer steps T, as in `train_ensemble` (with `stop`, the cap); the same as `infinite`'s.
        eta: the learning rate, as in `train_ensemble`; the same as `infinite`'s.
        infinite: the exact infinite-width statistics after the same steps (ntk_prediction + loss_stats).
        optimizer: the optimizer (default "momentum"), as in `train_ensemble`; the same as `infinite`'s.
        momentum: beta for 'momentum' / 'nesterov', as in `train_ensemble`; the same as `infinite`'s.
        seed: the members' seed.
        n_boot: bootstrap resamples (members) per width.
        n_record: log-spaced steps at which the members' test losses are kept (WidthSweep.history).
        warmup: steps of linear warmup, as in `train_ensemble`; the same as `infinite`'s.
        stop: a StopRule: every width trains until it passes, `steps` being the cap (`train_ensemble`); then
            `infinite` should be the t = infinity statistics. None (default): exactly `steps` steps.
        progress: progress bars.

    Returns:
        WidthSweep: per width the ensemble's statistics, bootstrap resamples, test-loss histories, alive
        fractions, the two parts of sigma_L^2 and (with `stop`) the stopping record, beside `infinite`.

    Raises:
        ValueError: fewer than two widths.
    """
    widths = np.array(check_sizes(widths, "widths"))
    if widths.size < 2:
        raise ValueError(f"widths: expected at least two strictly increasing widths, got {list(widths)}")
    check_instance(spec, "spec", MLPSpec)
    check_instance(infinite, "infinite", LossStats, "the infinite-width LossStats (loss_stats)")
    members = check_int(members, "members", minimum=2)
    steps = check_int(steps, "steps", minimum=0)
    if stop is not None:
        check_instance(stop, "stop", StopRule, "a StopRule (ntkuq.finite.StopRule) or None")
        if steps < 1:
            raise ValueError("steps: expected a cap >= 1 with a stop rule, got 0")
    check_positive(eta, "eta")
    seed = check_int(seed, "seed", minimum=0)
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    n_record = check_int(n_record, "n_record", minimum=2)
    x_tr = check_inputs(x_train, "x_train")
    y_tr = check_inputs(y_train, "y_train", n_rows=x_tr.shape[0])
    x_te = check_inputs(x_test, "x_test", n_features=x_tr.shape[1])
    check_inputs(y_test, "y_test", n_rows=x_te.shape[0], n_features=y_tr.shape[1])
    require_ensemble_memory(spec.with_width(int(widths[-1])), x_tr.shape[1], y_tr.shape[1], x_tr.shape[0],
                            x_te.shape[0], members, steps=steps, optimizer=optimizer, n_record=n_record,
                            what="width_sweep (its widest ensemble)")  # before training any width
    stats, boot, history, alive = {}, {s: np.empty((n_boot, widths.size)) for s in STATS}, {}, {}
    splits, stopping = {}, {}
    rng = np.random.default_rng(seed)
    for j, n in enumerate(widths):
        res = train_ensemble(spec.with_width(int(n)), x_train, y_train, x_test, y_test, n_members=members,
                             steps=steps, eta=eta, seed=seed, optimizer=optimizer, momentum=momentum,
                             n_record=n_record, warmup=warmup, stop=stop, progress=progress)
        stats[int(n)] = res.stats(n_boot=n_boot, seed=seed)
        splits[int(n)] = res.split(seed=seed)
        if stop is not None:
            stopping[int(n)] = res.stopping
        history[int(n)] = res.test_history
        alive[int(n)] = res.alive_history.mean(axis=0)
        draws = res.test_losses[rng.integers(0, members, size=(n_boot, members))]
        mu, sigma = draws.mean(axis=1), draws.std(axis=1, ddof=1)
        boot["mu"][:, j], boot["sigma"][:, j], boot["eps"][:, j] = mu, sigma, sigma / mu
    return WidthSweep(widths, stats, boot, infinite, int(steps), optimizer, res.steps, history, alive, splits,
                      stopping if stop is not None else None)


def _line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares (intercept, slope) of y = a + b x."""
    A = np.stack([np.ones_like(x), x], axis=1) * np.sqrt(w)[:, None]
    return np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]


def fit_widths(sweep: WidthSweep, stat: str, *, min_width: int = 0) -> WidthFit:
    """Slope of log abs(stat(n)/stat(inf) - 1) against log n, and stat(n) = a + b/n, over widths >= min_width.

    Both fits are weighted by the bootstrap variance of each width's value and repeated on every bootstrap
    resample; their errors are the standard deviations of the refits.

    Args:
        sweep: a width sweep (`width_sweep`).
        stat: "mu", "sigma" or "eps" (one of STATS).
        min_width: the smallest width fitted (default 0: all).

    Returns:
        WidthFit: the slope and the 1/n extrapolation with their bootstrap errors, and the exact value.

    Raises:
        ValueError: stat is not one of STATS, or fewer than two widths are >= min_width.
    """
    check_instance(sweep, "sweep", WidthSweep, "a WidthSweep (width_sweep)")
    if not isinstance(stat, str) or stat not in STATS:
        raise ValueError(f"stat: expected one of {STATS}, got {stat!r}")
    min_width = check_int(min_width, "min_width", minimum=0)
    keep = sweep.widths >= min_width
    if keep.sum() < 2:
        raise ValueError(f"min_width: expected at least two widths >= {min_width}, got {list(sweep.widths)}")
    n = sweep.widths[keep].astype(float)
    exact = sweep.exact(stat)
    vals, boot = sweep.values(stat)[keep], sweep.boot[stat][:, keep]
    var = np.maximum(np.var(boot, axis=0, ddof=1), 1e-300)

    def both(v: np.ndarray):
        dev = np.abs(v / exact - 1)
        # weights for the log fit: var(log dev) ~ var(v) / (exact dev)^2
        wl = np.maximum(dev * exact, 1e-300) ** 2 / var
        slope = _line(np.log(n), np.log(np.maximum(dev, 1e-12)), wl)[1]
        return slope, _line(1.0 / n, v, 1.0 / var)[0]

    slope, extra = both(vals)
    refits = np.array([both(b) for b in boot])
    return WidthFit(float(slope), float(np.std(refits[:, 0], ddof=1)), float(extra),
                    float(np.std(refits[:, 1], ddof=1)), exact)


def mean_deviation_slopes(sweep: WidthSweep, mu_infinite: np.ndarray) -> np.ndarray:
    """At every recorded step T > 0: the log-log slope of abs(mu_n(T) / mu_inf(T) - 1) against n (unweighted).

    Args:
        sweep: a width sweep (its members' test-loss histories).
        mu_infinite: mu_L of the infinite-width ensemble at sweep.history_steps (convergence.deviation_curve).

    Returns:
        The slope at every recorded step, shape (len(sweep.history_steps),).

    Raises:
        ValueError: mu_infinite does not hold one value per recorded step.
    """
    mu_inf = np.asarray(mu_infinite, dtype=float)
    if mu_inf.shape != sweep.history_steps.shape:
        raise ValueError(f"mu_infinite: expected {sweep.history_steps.size} values (one per recorded step), "
                         f"got shape {mu_inf.shape}")
    mu_n = np.array([sweep.history[int(n)].mean(axis=0) for n in sweep.widths])  # (widths, steps)
    dev = np.abs(mu_n / mu_inf - 1)
    logn = np.log(sweep.widths.astype(float))
    return np.array([np.polyfit(logn, np.log(np.maximum(dev[:, j], 1e-12)), 1)[0]
                     for j in range(sweep.history_steps.size)])


__all__ = ["STATS", "WidthFit", "WidthSweep", "fit_widths", "mean_deviation_slopes", "width_sweep"]
