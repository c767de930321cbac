"""Test-loss statistics: exact moments against Monte Carlo, the generalized chi-square against scipy."""
import numpy as np
import pytest
from scipy import stats

from ntkuq import MLPSpec
from ntkuq.infinite import (
    GeneralizedChi2,
    loss_distribution,
    loss_stats,
    nngp_posterior,
    ntk_prediction,
    sample_test_losses,
    train_test_kernels,
)

RNG = np.random.default_rng(2)
X, XS = RNG.normal(size=(30, 5)), RNG.normal(size=(25, 5))
Y, YS = np.tanh(X[:, :3]), np.tanh(XS[:, :3])
SPEC = MLPSpec(depth=3, activation="erf", C_b=0.2, C_W=1.5, lambda_b=2.0, lambda_W=1.0)
KERN = train_test_kernels(SPEC, X, XS)
PREDS = {"inf": ntk_prediction(KERN, Y), "t": ntk_prediction(KERN, Y, time=2.0), "post": nngp_posterior(KERN, Y)}


@pytest.mark.parametrize("which", PREDS)
def test_moments_agree_with_monte_carlo(which):
    pred = PREDS[which]
    st = loss_stats(pred, YS, block_size=7)
    n = 20_000
    draws = sample_test_losses(pred, YS, n, seed=3)
    z_mean = (draws.mean() - st.mu) / (draws.std(ddof=1) / np.sqrt(n))
    m4 = np.mean((draws - draws.mean()) ** 4)
    z_var = (draws.var(ddof=1) - st.var) / np.sqrt((m4 - draws.var() ** 2) / n)
    print(f"{which}: mu {st.mu:.5g} (z = {z_mean:.2f}), sigma^2 {st.var:.5g} (z = {z_var:.2f}), eps {st.eps:.4g}")
    assert abs(z_mean) < 4 and abs(z_var) < 4


@pytest.mark.parametrize("which", PREDS)
def test_blocked_statistics_equal_dense_formulas(which):
    pred = PREDS[which]
    S, R = np.asarray(pred.cov()), np.asarray(pred.mean) - YS
    n, k = R.shape
    mu = (np.sum(R**2) + k * np.trace(S)) / (n * k)
    var = (2 * k * np.sum(S**2) + 4 * np.sum(R * (S @ R))) / (n * k) ** 2
    for block in (1, 4, 25, 1000):
        st = loss_stats(pred, YS, block_size=block)
        assert st.mu == pytest.approx(mu, rel=1e-12)
        assert st.var == pytest.approx(var, rel=1e-10)
    dist = loss_distribution(pred, YS)
    assert dist.mean == pytest.approx(mu, rel=1e-9)
    assert dist.std == pytest.approx(np.sqrt(var), rel=1e-8)


@pytest.mark.parametrize("which", PREDS)
def test_cdf_agrees_with_monte_carlo(which):
    pred = PREDS[which]
    dist = loss_distribution(pred, YS)
    draws = sample_test_losses(pred, YS, 4000, seed=5)
    ks = stats.kstest(draws, lambda x: dist.cdf(x))
    assert ks.pvalue > 1e-3, ks
    q = dist.quantile(0.9)
    assert dist.cdf(q)[0] == pytest.approx(0.9, abs=1e-9)


def test_generalized_chi2_special_cases():
    x = np.linspace(0.5, 40, 9)
    one = GeneralizedChi2(np.array([2.0]), np.array([1.5]), dof=10)
    np.testing.assert_allclose(one.cdf(x), stats.ncx2.cdf(x / 2.0, 10, 1.5), atol=1e-9)
    np.testing.assert_allclose(one.pdf(x), stats.ncx2.pdf(x / 2.0, 10, 1.5) / 2.0, atol=1e-9)
    central = GeneralizedChi2(np.full(4, 0.5), np.zeros(4), dof=2, offset=1.0)  # 1 + chi2_8 / 2
    np.testing.assert_allclose(central.cdf(x), stats.chi2.cdf(2 * (x - 1.0), 8), atol=1e-9)
    grid = np.linspace(0, 120, 6001)
    assert np.trapezoid(one.pdf(grid), grid) == pytest.approx(1.0, abs=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="^y_test"):
        loss_stats(PREDS["inf"], YS[:5])
    with pytest.raises(ValueError, match="^block_size"):
        loss_stats(PREDS["inf"], YS, block_size=0)
    with pytest.raises(ValueError, match="^q"):
        loss_distribution(PREDS["inf"], YS).quantile(1.0)
    with pytest.raises(ValueError, match="^n_samples"):
        sample_test_losses(PREDS["inf"], YS, 0)
