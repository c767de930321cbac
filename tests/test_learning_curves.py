"""Learning curves from the kernel's spectrum (ntkuq.infinite.learning_curves) against exact kernel regression."""
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.errors import TooLargeError
from ntkuq.infinite import kernels
from ntkuq.infinite.learning_curves import (
    Spectrum,
    learning_curve,
    solve_kappa,
    spectrum,
    spectrum_from_kernels,
)

P = 400
SPEC = MLPSpec.critical("relu", depth=3, lambda_ratio=10.0)


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(P, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.stack([np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2], np.cos(x[:, 3] + x[:, 4])], axis=1)
    kern = kernels(SPEC, x)
    return x, y, np.asarray(kern.ntk), np.asarray(kern.nngp)


def _exact(theta, k, y, n, reps, rng):
    """Bias and variance parts of mu_L over the pool, averaged over random training subsets of size n."""
    bias = var = 0.0
    for _ in range(reps):
        s = rng.choice(theta.shape[0], n, replace=False)
        a = np.linalg.solve(theta[np.ix_(s, s)], theta[s, :]).T  # Theta_PS Theta_SS^-1
        bias += np.mean((a @ y[s] - y) ** 2)
        var += np.mean(np.diag(k) - 2 * np.einsum("an,an->a", a, k[:, s])
                       + np.einsum("an,nm,am->a", a, k[np.ix_(s, s)], a))
    return bias / reps, var / reps


@pytest.mark.parametrize("n", [10, 40, 120])
def test_theory_matches_averaged_exact_regression(pool, n):
    x, y, theta, k = pool
    lc = learning_curve(spectrum_from_kernels(theta, k, y), n)
    bias, var = _exact(theta, k, y, n, 60, np.random.default_rng(n))
    assert lc.bias[0] == pytest.approx(bias, rel=0.06)
    assert lc.variance[0] == pytest.approx(var, rel=0.03)
    assert lc.mu[0] == pytest.approx(bias + var, rel=0.04)
    assert lc.bias_share[0] == pytest.approx(bias / (bias + var), abs=0.03)


def test_the_one_over_one_minus_gamma_factor_matters(pool):
    """Without 1 / (1 - gamma) the variance prediction would miss the exact value by far more than the test allows."""
    x, y, theta, k = pool
    lc = learning_curve(spectrum_from_kernels(theta, k, y), 120)
    _, var = _exact(theta, k, y, 120, 60, np.random.default_rng(120))
    assert abs(lc.variance[0] * (1 - lc.gamma[0]) / var - 1) > 0.1


def test_powers_sum_to_the_pool_means(pool):
    x, y, theta, k = pool
    sp = spectrum_from_kernels(theta, k, y)
    assert sp.target_power.sum() == pytest.approx(np.mean(y**2), rel=1e-12)
    assert sp.prior_power.sum() == pytest.approx(np.mean(np.diag(k)), rel=1e-12)
    assert np.all(np.diff(sp.eigenvalues) <= 0) and sp.n_pool == P
    assert sp.eigenvalues.sum() == pytest.approx(np.trace(theta) / P, rel=1e-12)


def test_limits(pool):
    x, y, theta, k = pool
    sp = spectrum_from_kernels(theta, k, y)
    small = learning_curve(sp, 1e-9)  # no data: the prior mean 0 and the full prior variance
    assert small.bias[0] == pytest.approx(np.mean(y**2), rel=1e-6)
    assert small.variance[0] == pytest.approx(np.mean(np.diag(k)), rel=1e-6)
    full = learning_curve(sp, P - 1e-6)  # every pool point trained: no error left on the pool
    assert full.bias[0] < 1e-6 * np.mean(y**2) and full.variance[0] < 1e-6 * np.mean(np.diag(k))
    curve = learning_curve(sp, [5, 20, 80, 320])
    assert np.all(np.diff(curve.mu) < 0) and curve.mu.shape == (4,)


@pytest.mark.parametrize("n", [0.5, 3.0, 77.7, 390.0])
def test_kappa_against_brute_force(pool, n):
    lam = spectrum_from_kernels(*pool[2:], pool[1]).eigenvalues
    kappa = solve_kappa(lam, n)
    assert np.sum(lam / (lam + kappa)) == pytest.approx(n, rel=1e-10)
    grid = np.geomspace(kappa / 2, kappa * 2, 20001)  # brute force: the grid point closest to the root
    best = grid[np.argmin(np.abs([np.sum(lam / (lam + g)) - n for g in grid]))]
    assert best == pytest.approx(kappa, rel=1e-3)


def test_spectrum_of_inputs_equals_that_of_their_kernels(pool):
    x, y, theta, k = pool
    a, b = spectrum(SPEC, x[:50], y[:50]), spectrum_from_kernels(theta[:50, :50], k[:50, :50], y[:50])
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(a.target_power.sum(), b.target_power.sum(), rtol=1e-12)


def test_bad_inputs(pool, monkeypatch):
    x, y, theta, k = pool
    sp = spectrum_from_kernels(theta, k, y)
    for n in (0, -1, P, P + 5):
        with pytest.raises(ValueError, match="^n"):
            learning_curve(sp, n)
    with pytest.raises(ValueError, match="^ntk"):
        spectrum_from_kernels(theta[:, :10], k, y)
    with pytest.raises(ValueError, match="^nngp"):
        spectrum_from_kernels(theta, k[:10], y)
    with pytest.raises(ValueError, match="^y"):
        spectrum_from_kernels(theta, k, y[:10])
    with pytest.raises(TypeError, match="^spectrum"):
        learning_curve("spectrum", 10)
    monkeypatch.setenv("NTKUQ_MEMORY_LIMIT_GIB", "0.001")
    with pytest.raises(TooLargeError, match="P = 400"):
        spectrum(SPEC, x, y)
    assert isinstance(sp, Spectrum)


def test_exponents_of_a_synthetic_power_law_spectrum():
    from ntkuq.infinite.learning_curves import spectral_exponents
    i = np.arange(1, 200_001, dtype=np.float64)  # far more modes than fitted: the tail is hardly truncated
    lam, g2 = i ** -1.5, i ** -1.8  # tail sum_{j > i} j^-1.8 ~ i^-0.8
    sp = Spectrum(lam, g2, 0.1 * g2)
    ex = spectral_exponents(sp, 20, 1000)
    assert ex.a == pytest.approx(1.5, abs=1e-9) and ex.a_err < 1e-9
    assert ex.b == pytest.approx(0.8, abs=0.02) and ex.alpha == ex.b and ex.modes == (20, 1000)
    # the theory's own curve falls like N^-alpha there
    lc = learning_curve(sp, [50, 200])
    assert -np.log(lc.bias[1] / lc.bias[0]) / np.log(4) == pytest.approx(0.8, abs=0.05)
    for first, last in ((0, 100), (10, 12), (10, 200_000), (1.5, 100)):
        with pytest.raises(ValueError, match="^first, last"):
            spectral_exponents(sp, first, last)
