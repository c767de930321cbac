"""Scaling-law analysis: power-law fits in N_D, the eps_L plateau, and their bootstrap uncertainties.

    mu_L ~ A N_D^(-alpha),   sigma_L ~ B N_D^(-beta),   eps_L = sigma_L / mu_L ~ N_D^(alpha - beta)

A plateau of eps_L means alpha = beta over the largest decade of N_D.  Uncertainties come from
resampled curves: bootstrap over ensemble members (finite width) or over training-set draws
(infinite width, where each draw's statistics are exact).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ntkuq._src.checks import check_int, check_positive, real_array


@dataclass(frozen=True)
class PowerLaw:
    """y = amplitude * n^(-exponent), with standard errors."""

    amplitude: float
    exponent: float
    exponent_err: float
    amplitude_err: float

    def __call__(self, n) -> np.ndarray:
        """Evaluate the fitted law at n.

        Args:
            n: the sizes.

        Returns:
            amplitude * n^(-exponent).
        """
        return self.amplitude * np.asarray(n, dtype=float) ** (-self.exponent)


@dataclass(frozen=True)
class Plateau:
    """The log-log slope of eps_L over the largest decade of N_D and its mean value there."""

    slope: float
    slope_err: float
    value: float
    value_err: float
    n_lo: float
    n_hi: float


def _check_curve(n, y, name: str):
    n, y = real_array(n, "n"), real_array(y, name)
    if n.ndim != 1 or n.shape != y.shape[-1:] or n.size < 2:
        raise ValueError(f"{name}: expected at least two points with matching n_train, got shapes {n.shape}, {y.shape}")
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise ValueError(f"n: expected positive finite training-set sizes for a log-log fit, got {n}")
    if np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise ValueError(f"{name}: expected positive finite values for a log-log fit")
    return n, y


def _loglog(n: np.ndarray, y: np.ndarray):
    """Slope and intercept of log y against log n (y may hold many curves along its first axis)."""
    coef = np.polyfit(np.log(n), np.log(y).T, 1)
    return coef[0], coef[1]


def fit_power_law(n, y, resamples: Optional[np.ndarray] = None) -> PowerLaw:
    """Least-squares fit of log y on log n; errors from resampled curves (rows) or else the fit residuals.

    Args:
        n: the sizes, at least two, positive and finite.
        y: positive finite values at those sizes.
        resamples: resampled curves, one per row (n_resamples, len(n)); None (default): errors from the fit
            residuals (NaN with only two sizes).

    Returns:
        PowerLaw: y = amplitude * n^(-exponent), with standard errors.

    Raises:
        ValueError: fewer than two points, mismatched shapes, or values that are not positive and finite.
    """
    n, y = _check_curve(n, y, "y")
    slope, icept = _loglog(n, y)
    if resamples is not None:
        _, r = _check_curve(n, resamples, "resamples")
        s, i = _loglog(n, r)
        s_err, a_err = float(np.std(s, ddof=1)), float(np.exp(icept) * np.std(i, ddof=1))
    elif n.size > 2:
        resid = np.log(y) - (slope * np.log(n) + icept)
        x = np.log(n) - np.log(n).mean()
        s_err = float(np.sqrt(np.sum(resid**2) / (n.size - 2) / np.sum(x**2)))
        a_err = float(np.exp(icept) * np.sqrt(np.sum(resid**2) / (n.size - 2)
                                              * (1 / n.size + np.log(n).mean() ** 2 / np.sum(x**2))))
    else:
        s_err = a_err = float("nan")
    return PowerLaw(float(np.exp(icept)), float(-slope), s_err, a_err)


def plateau(n, eps, resamples: Optional[np.ndarray] = None, decades: float = 1.0) -> Plateau:
    """Slope of log eps against log n over the last `decades` of n, and the mean eps there.

    Args:
        n: the sizes, at least two, positive and finite.
        eps: positive finite values of eps_L at those sizes.
        resamples: resampled curves of eps, one per row (n_resamples, len(n)); None (default): errors from the
            fit residuals and the spread of eps over the decade.
        decades: how many decades of n, counted down from the largest, are used (> 0, default 1.0); at least
            two sizes are always used.

    Returns:
        Plateau: the slope and the mean value over the selected sizes, with standard errors, and their range.

    Raises:
        ValueError: fewer than two points, mismatched shapes, or values that are not positive and finite.
    """
    n, eps = _check_curve(n, eps, "eps")
    decades = check_positive(decades, "decades")
    sel = n >= n.max() / 10**decades
    if sel.sum() < 2:
        sel[-2:] = True
    law = fit_power_law(n[sel], eps[sel], None if resamples is None else np.asarray(resamples)[:, sel])
    value = float(np.mean(eps[sel]))
    if resamples is not None:
        value_err = float(np.std(np.mean(np.asarray(resamples)[:, sel], axis=1), ddof=1))
    else:
        value_err = float(np.std(eps[sel], ddof=1) / np.sqrt(sel.sum()))
    return Plateau(-law.exponent, law.exponent_err, value, value_err, float(n[sel].min()), float(n[sel].max()))


PLATEAU_SLOPE = 0.05
"""A log-log slope of eps_L smaller than this in size counts as a plateau (a 12 % change per decade)."""


def plateau_verdict(slope: float, slope_err: float, tol: float = PLATEAU_SLOPE) -> str:
    """The verdict on a log-log slope of eps_L over the largest decade: 'plateau', 'still falling' or 'rising'.

    'plateau' when the slope (`Plateau.slope`, with its standard error) is within two standard errors of zero
    or smaller than `tol` in size; otherwise 'still falling' or 'rising'.

    Args:
        slope: the log-log slope of eps_L.
        slope_err: its standard error.
        tol: the size of slope below which it counts as a plateau (default PLATEAU_SLOPE).

    Returns:
        'plateau', 'still falling' or 'rising'.
    """
    if abs(slope) < max(2 * slope_err, tol):
        return "plateau"
    return "still falling" if slope < 0 else "rising"


def local_exponents(n, y):
    """The local power-law exponent -d ln y / d ln n between consecutive sizes.

    Args:
        n: increasing sizes (at least two, positive).
        y: positive values at those sizes.

    Returns:
        (n_mid, exponent): the geometric midpoints sqrt(n_i n_{i+1}) and the exponents there; a pure power law
        y = A n^-alpha gives alpha everywhere.
    """
    n, y = _check_curve(n, y, "y")
    ln, ly = np.log(n), np.log(y)
    return np.exp(0.5 * (ln[1:] + ln[:-1])), -np.diff(ly) / np.diff(ln)


def bootstrap_curves(samples: Sequence[np.ndarray], stat: Callable[[np.ndarray], float],
                     n_boot: int = 500, seed: int = 0) -> np.ndarray:
    """(n_boot, n_points): stat of each point's samples (members or draws) resampled with replacement.

    Args:
        samples: per point an array of samples (members or draws), at least two each.
        stat: the statistic of a 1-D array of samples.
        n_boot: the number of resamples (>= 2, default 500).
        seed: the resampling's seed (default 0).

    Returns:
        The statistic of every resample at every point, shape (n_boot, len(samples)).

    Raises:
        ValueError: samples is empty, or a point has fewer than two samples.
    """
    n_boot = check_int(n_boot, "n_boot", minimum=2)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    if isinstance(samples, (str, bytes)) or not len(samples):
        raise ValueError(f"samples: expected a non-empty list of sample arrays, got {samples!r}"[:200])
    out = np.empty((n_boot, len(samples)))
    for j, s in enumerate(samples):
        s = real_array(s, "samples")
        if s.size < 2:
            raise ValueError(f"samples: expected at least two samples per point to bootstrap, got {s.size} at "
                             f"point {j}")
        idx = rng.integers(0, s.size, size=(n_boot, s.size))
        out[:, j] = [stat(s[i]) for i in idx]
    return out


def eps_of(losses: np.ndarray) -> float:
    """Coefficient of variation of member losses: sample std (ddof=1) over mean.

    Args:
        losses: the members' losses.

    Returns:
        eps = std / mean.
    """
    return float(np.std(losses, ddof=1) / np.mean(losses))


__all__ = ["PLATEAU_SLOPE", "Plateau", "PowerLaw", "bootstrap_curves", "eps_of", "fit_power_law",
           "local_exponents", "plateau", "plateau_verdict"]
