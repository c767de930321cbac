"""Forecasts past the exact sweeps: mu_L, its bias share, and the two parts of eps_L^2 they imply.

The learning-curve theory (`ntkuq.infinite.learning_curves`) gives mu_L = bias + variance at any N_D, hence the
bias share f. The floor coefficient A of eps_L^2 = A / n_T + B (`plateau_model`) is 2 (1 - f^2) / k for test
points that are all alike, times a heterogeneity factor h for real ones (unequal variances raise it, a bias
largest where the variance is smallest lowers it); h is measured at the largest
exact N_D (`A_exact / (2 (1 - f^2) / k)`) and kept. The population part B is a spread over initializations that
the theory (an average over training sets of a mean error) does not give: it comes from the plateau model's
power law B = B_0 N_D^-gamma, fitted to the exact sweep and extrapolated. Both are marked as what they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ntkuq._src.checks import check_instance, check_int
from ntkuq.infinite.learning_curves import LearningCurve, Spectrum, learning_curve
from ntkuq.infinite.lossstats import uniform_floor
from ntkuq.study.plateau_model import PlateauModel, SplitCurve


@dataclass(frozen=True)
class Forecast:
    """mu_L, the bias share and the two parts of eps_L^2 at training-set sizes n.

    Attributes:
        n: the training-set sizes N_D.
        curve: the theory's LearningCurve at n (mu_L, its parts, f).
        heterogeneity: h, the measured A over its uniform-points value 2 (1 - f^2) / k at the largest exact N_D.
        A: the floor coefficient h 2 (1 - f^2) / k at n (the theory's f).
        B: the population part at n, the plateau model's fitted power law (extrapolated past its fitted decade).
    """

    n: np.ndarray
    curve: LearningCurve
    heterogeneity: float
    A: np.ndarray
    B: np.ndarray

    def floor(self, n_test) -> np.ndarray:
        """The floor sqrt(A / n_T) of eps_L for a test set of n_test points.

        Args:
            n_test: the test-set size n_T (>= 1).

        Returns:
            The floor at every N_D.
        """
        return np.sqrt(self.A / _test_size(n_test))

    def eps(self, n_test) -> np.ndarray:
        """eps_L(n_T) = sqrt(A / n_T + (n_T - 1) / n_T B).

        Args:
            n_test: the test-set size n_T (>= 1).

        Returns:
            eps_L at every N_D.
        """
        n = _test_size(n_test)
        return np.sqrt(self.A / n + (n - 1) / n * self.B)

    def floor_dominates(self, n_test) -> np.ndarray:
        """Where the floor is the larger part of eps_L(n_T)^2 (B < A / n_T).

        There eps_L follows the floor, which moves with N_D only as the bias share does.

        Args:
            n_test: the test-set size n_T (>= 1).

        Returns:
            A boolean array over N_D.
        """
        return self.B < self.A / _test_size(n_test)


def _test_size(n_test) -> float:
    """n_test as a float, refusing sizes below 1."""
    if isinstance(n_test, bool) or not isinstance(n_test, (int, float, np.integer, np.floating)) or not n_test >= 1:
        raise ValueError(f"n_test: expected a test-set size >= 1, got {n_test!r}")
    return float(n_test)


def forecast(spectrum: Spectrum, curve: SplitCurve, model: PlateauModel, n, *, n_out: int) -> Forecast:
    """Forecast mu_L, f and the two parts of eps_L^2 at training-set sizes n.

    Args:
        spectrum: the population's spectrum for the theory (`extend_spectrum` of a pool; a pool's own spectrum
            is refused: its errors are over the pool, and sizes near P are out of its reach).
        curve: the exact split per N_D (`split_curve`), whose largest N_D calibrates the heterogeneity h.
        model: the plateau model fitted to `curve` (`fit_plateau`), whose B is extrapolated.
        n: the training-set sizes, each below the spectrum's number of modes.
        n_out: k, the number of outputs.

    Returns:
        Forecast at n.

    Raises:
        ValueError: a pool spectrum, sizes out of range or k below 1.
    """
    check_instance(spectrum, "spectrum", Spectrum)
    check_instance(curve, "curve", SplitCurve)
    check_instance(model, "model", PlateauModel)
    k = check_int(n_out, "n_out")
    if spectrum.is_pool:
        raise ValueError("spectrum: expected an extended spectrum (extend_spectrum), got a pool's")
    theory = learning_curve(spectrum, n)
    last = float(curve.n[-1])
    f_last = float(learning_curve(spectrum, last).bias_share[0])
    h = float(curve.A[-1] / uniform_floor(f_last, k, 1) ** 2)
    a = h * np.asarray(uniform_floor(theory.bias_share, k, 1)) ** 2
    return Forecast(theory.n, theory, h, a, np.asarray(model.population(theory.n), dtype=np.float64))


__all__ = ["Forecast", "forecast"]
