"""The width-sweep fits recover known laws; the sweep trains and compares like with like."""
import numpy as np
import pytest

import ntkuq  # noqa: F401
from ntkuq.finite import EnsembleStats, WidthSweep, default_eta, fit_widths, mean_deviation_slopes, width_sweep
from ntkuq.infinite import LossStats, loss_stats, ntk_prediction, train_test_kernels
from ntkuq.spec import MLPSpec


def synthetic(widths, a, b, power, noise=1e-4, seed=0):
    """A sweep whose mu follows a + b n^-power exactly, with small bootstrap scatter around it."""
    rng = np.random.default_rng(seed)
    widths = np.asarray(widths)
    mu = a + b * widths.astype(float) ** -power
    stats = {int(n): EnsembleStats(m, 0.1 * m, 0.1, noise, noise, noise, 64) for n, m in zip(widths, mu)}
    boot = {s: (mu if s == "mu" else (0.1 * mu if s == "sigma" else np.full_like(mu, 0.1)))
            + noise * rng.standard_normal((400, widths.size)) for s in ("mu", "sigma", "eps")}
    inf = LossStats(a, 0.1 * a, 10, 1, 0.0, 0.0, 0.0, 0.0)
    steps = np.array([0, 1, 10])
    history = {int(n): np.tile([[1.0, 1.0 + (m - a), m]], (4, 1)) for n, m in zip(widths, mu)}
    return WidthSweep(widths, stats, boot, inf, 10, "momentum", steps, history)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_fit_recovers_slope_and_one_over_n_extrapolation(power):
    sw = synthetic([32, 64, 128, 256, 512], a=0.05, b=2.0, power=power)
    fit = fit_widths(sw, "mu")
    assert fit.slope == pytest.approx(-power, abs=0.01)
    assert fit.slope_err < 0.05
    if power == 1.0:  # a + b/n is then the exact law: the extrapolation hits a
        assert fit.extrapolated == pytest.approx(0.05, abs=3e-4)
        assert abs(fit.pull) < 4
    else:  # a slower law: extrapolating it as a + b/n misses a by many errors
        assert abs(fit.pull) > 10


def test_mean_deviation_slopes_and_bad_arguments():
    sw = synthetic([32, 64, 128], a=0.05, b=2.0, power=1.0)
    slopes = mean_deviation_slopes(sw, np.array([1.0, 1.0, 0.05]))
    assert slopes[-1] == pytest.approx(-1.0, abs=1e-9)
    with pytest.raises(ValueError, match="^mu_infinite"):
        mean_deviation_slopes(sw, np.ones(5))
    with pytest.raises(ValueError, match="^stat"):
        fit_widths(sw, "var")
    with pytest.raises(ValueError, match="^min_width"):
        fit_widths(sw, "mu", min_width=100)


def test_width_sweep_trains_each_width_against_the_same_infinite_prediction():
    rng = np.random.default_rng(2)
    x, xs = rng.standard_normal((24, 3)), rng.standard_normal((8, 3))
    y, ys = np.sin(x[:, :1]), np.sin(xs[:, :1])
    spec = MLPSpec.critical("relu", depth=2)
    eta = default_eta(spec, x, 0.5, "momentum", 0.9)
    inf = loss_stats(ntk_prediction(train_test_kernels(spec, x, xs), y, steps=5, eta=eta, optimizer="momentum",
                                    momentum=0.9), ys)
    sw = width_sweep(spec, x, y, xs, ys, [16, 64], members=8, steps=5, eta=eta, infinite=inf, momentum=0.9,
                     n_boot=50, n_record=3)
    assert list(sw.widths) == [16, 64] and sw.exact("mu") == inf.mu
    assert sw.history[16].shape == (8, sw.history_steps.size) and sw.history_steps[-1] == 5
    np.testing.assert_allclose(sw.values("mu"), [sw.history[n][:, -1].mean() for n in (16, 64)], rtol=1e-12)
    with pytest.raises(ValueError, match="^widths"):
        width_sweep(spec, x, y, xs, ys, [64, 16], members=4, steps=1, eta=eta, infinite=inf)
