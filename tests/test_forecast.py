"""Forecasts past the exact sweeps (ntkuq.study.forecast): the floor from the theory's bias share, B from the fit."""
import numpy as np
import pytest

from ntkuq.infinite import uniform_floor
from ntkuq.infinite.learning_curves import Spectrum, extend_spectrum, learning_curve
from ntkuq.study import SplitCurve, fit_plateau, forecast


def _population():
    i = np.arange(1, 3001, dtype=np.float64)
    pool = Spectrum(i ** -1.3, 0.5 * i ** -1.5, 0.3 * i ** -1.2)
    return extend_spectrum(pool, 10, 300, modes=1e7)


def _curve(spectrum, h, k, n_test=1000):
    """A split curve whose A is h times the uniform-points value at the theory's f, and B = 0.5 N^-0.4."""
    n = np.array([100.0, 300.0, 1000.0, 3000.0])
    f = learning_curve(spectrum, n).bias_share
    a = h * uniform_floor(f, k, 1) ** 2
    b = 0.5 * n ** -0.4
    zero = np.zeros_like(n)
    return SplitCurve(n, n_test, learning_curve(spectrum, n).mu, a, b, zero, zero, 1)


@pytest.mark.parametrize("h, k", [(1.0, 1), (1.7, 10)])
def test_forecast_recovers_the_heterogeneity_and_follows_f(h, k):
    sp = _population()
    curve = _curve(sp, h, k)
    fc = forecast(sp, curve, fit_plateau(curve), [1e4, 1e5], n_out=k)
    assert fc.heterogeneity == pytest.approx(h, rel=1e-10)
    f = learning_curve(sp, [1e4, 1e5]).bias_share
    np.testing.assert_allclose(fc.A, h * 2 * (1 - f**2) / k, rtol=1e-10)
    np.testing.assert_allclose(fc.B, 0.5 * np.array([1e4, 1e5]) ** -0.4, rtol=1e-8)  # the fit, extended
    np.testing.assert_allclose(fc.floor(100), np.sqrt(fc.A / 100), rtol=1e-12)
    np.testing.assert_allclose(fc.eps(100), np.sqrt(fc.A / 100 + 0.99 * fc.B), rtol=1e-12)
    np.testing.assert_array_equal(fc.floor_dominates(1), fc.B < fc.A)
    assert fc.floor_dominates(1).all() and not fc.floor_dominates(1e9).any()


def test_forecast_refuses_bad_inputs():
    sp = _population()
    curve = _curve(sp, 1.0, 1)
    model = fit_plateau(curve)
    i = np.arange(1, 101, dtype=np.float64)
    pool = Spectrum(i ** -1.0, i ** -2.0, i ** -2.0)
    with pytest.raises(ValueError, match="^spectrum"):
        forecast(pool, curve, model, [10], n_out=1)
    with pytest.raises(ValueError, match="^n_out"):
        forecast(sp, curve, model, [10], n_out=0)
    with pytest.raises(TypeError, match="^curve"):
        forecast(sp, "curve", model, [10], n_out=1)
    with pytest.raises(ValueError, match="^n"):
        forecast(sp, curve, model, [1e8], n_out=1)
    fc = forecast(sp, curve, model, [1e4], n_out=1)
    for bad in (0, 0.5, -3, True, "10", float("nan")):
        with pytest.raises(ValueError, match="^n_test"):
            fc.floor(bad)
