"""ntkuq.estimate on its own: the text report holds the numbers of an Estimate, the figure has its four panels."""
import dataclasses
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.figure  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ntkuq.estimate import (  # noqa: E402
    estimate,  # noqa: E402
    estimate_figure,
    loss_units,
    summary_text,
)

SIZES = [15, 30, 60]


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] + 0.1 * rng.standard_normal(n)
    return x, y


@pytest.fixture(scope="module")
def est():
    (xa, ya), (xb, yb) = _data(60, 0), _data(20, 1)
    return estimate(xa, ya, xb, yb, sizes=SIZES, standardize="both", seed=0, max_minutes=5)


def test_summary_text_holds_the_estimates_numbers(est):
    text = summary_text(est)
    assert text == est.summary()
    assert f"N_D = {est.n_train} of 60 training points, N_T = {est.n_test} test points, k = 1 output(s)" in text
    assert f"mu_L    = {est.mu_L:.4g}" in text
    assert f"sigma_L = {est.sigma_L:.4g}" in text
    assert f"eps_L   = {est.eps_L:.4g}" in text
    assert f"squared bias {est.bias2:.4g} + ensemble variance {est.variance:.4g}" in text
    for q, v in est.quantiles.items():
        assert f"{100 * q:g} %: {v:.4g}" in text
    for r in est.sweep:  # one line per nested size, in the order of the sweep
        assert f"  {r['n_train']:7d} {r['mu_L']:11.4g} {r['sigma_L']:11.4g} {r['eps_L']:9.4g}" in text
    assert [r["n_train"] for r in est.sweep] == SIZES
    f = est.fits
    assert f is not None and f"alpha = {f['alpha']:.3f} +- {f['alpha_err']:.3f}" in text
    assert f"-> {est.verdict}" in text
    assert "finite-width ensemble" not in text  # none was asked for


def test_summary_text_without_fits_or_quantiles(est):
    bare = dataclasses.replace(est, fits=None, verdict="not enough sizes (need 3 or more)", quantiles={})
    text = summary_text(bare)
    assert "power laws and plateau: not enough sizes (need 3 or more)" in text
    assert "quantiles of L: not computed" in text
    assert "alpha =" not in text


def test_loss_units_follow_the_target_standardization(est):
    assert loss_units(est) == "(standardized target units)$^2$"
    (xa, ya), (xb, yb) = _data(30, 2), _data(10, 3)
    raw = estimate(xa, ya, xb, yb, sizes=[30], standardize="features", max_minutes=5)
    assert loss_units(raw) == "(target units)$^2$"


def test_estimate_figure_has_four_labelled_panels(est):
    fig = estimate_figure(est)
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        axes = fig.get_axes()
        assert len(axes) == 4
        for ax in axes[:3]:  # mu, sigma, eps against N_D on log-log axes
            assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
            assert "N_" in ax.get_xlabel()
            x, y = ax.lines[0].get_data()
            assert list(x) == SIZES
        np.testing.assert_allclose(axes[0].lines[0].get_data()[1], [r["mu_L"] for r in est.sweep])
        np.testing.assert_allclose(axes[2].lines[0].get_data()[1], [r["eps_L"] for r in est.sweep])
        assert "standardized target units" in axes[0].get_ylabel()
        assert "density" in axes[3].get_ylabel() and axes[3].lines  # the exact density of L is drawn
        assert all(ax.get_legend() is not None for ax in axes)
    finally:
        plt.close(fig)
