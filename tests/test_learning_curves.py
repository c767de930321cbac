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


def _exact_held_out(theta, y, n, reps, rng):
    """The bias part averaged over random training subsets, over the pool points outside each subset."""
    total = 0.0
    for _ in range(reps):
        s = rng.choice(theta.shape[0], n, replace=False)
        rest = np.setdiff1d(np.arange(theta.shape[0]), s)
        a = np.linalg.solve(theta[np.ix_(s, s)], theta[s][:, rest]).T
        total += np.mean((a @ y[s] - y[rest]) ** 2)
    return total / reps


@pytest.mark.parametrize("n", [40, 200])
def test_held_out_error_is_that_of_the_points_not_trained(pool, n):
    """A test set measures the error off the training set: P / (P - N) times the pool's (which counts zeros)."""
    x, y, theta, k = pool
    sp = spectrum_from_kernels(theta, k, y)
    held, over_pool = learning_curve(sp, n, held_out=True), learning_curve(sp, n)
    assert held.bias[0] == pytest.approx(over_pool.bias[0] * P / (P - n), rel=1e-12)
    exact = _exact_held_out(theta, y, n, 40, np.random.default_rng(n + 1))
    assert held.bias[0] == pytest.approx(exact, rel=0.06)
    assert abs(over_pool.bias[0] / exact - 1) > 0.09  # at N = P / 10 already the factor matters


def _power_law_spectrum(modes, a=1.4, b=0.6, c=0.9, population=None):
    """Modes 1..modes of a power-law population; a pool (population given) folds the power of the modes it
    cannot resolve into its last mode, as a real pool's eigenbasis does (its powers sum to the population's)."""
    i = np.arange(1, modes + 1, dtype=np.float64)
    sp = Spectrum(i ** -a, b * i ** -(b + 1), c * i ** -(c + 1))
    if population is not None:
        sp.target_power[-1] += population.target_power[modes:].sum()
        sp.prior_power[-1] += population.prior_power[modes:].sum()
    return sp


def test_extension_recovers_the_population_from_a_pool():
    """A pool that holds the first 3,000 modes of a power-law population, extended from modes 30..300, gives the
    learning curve of the full 2,000,000-mode population, far past the pool."""
    from ntkuq.infinite.learning_curves import extend_spectrum
    population = _power_law_spectrum(2_000_000)
    pool = _power_law_spectrum(3_000, population=population)
    ext = extend_spectrum(pool, 30, 300, modes=2_000_000, bins=3000)
    assert not ext.is_pool and ext.modes == pytest.approx(2_000_000, rel=1e-9)
    assert ext.target_power @ ext.weights == pytest.approx(population.target_power.sum(), rel=1e-3)
    n = [100, 2_000, 50_000]
    want, got = learning_curve(population, n), learning_curve(ext, n)
    tol = [0.01, 0.01, 0.03]  # within 1 % to N = 2,000; 3 % at N = 50,000, 170 times past the fitted modes
    for field in ("bias", "variance", "kappa"):
        assert np.all(np.abs(getattr(got, field) / getattr(want, field) - 1) < tol), field
    cut = learning_curve(Spectrum(*[getattr(ext, f)[:300] for f in ("eigenvalues", "target_power",
                                                                         "prior_power")], np.ones(300)), 100)
    assert cut.bias[0] < 0.9 * want.bias[0]  # without the tail the prediction would be far off
    # a held-out factor does not apply to a population
    np.testing.assert_array_equal(learning_curve(ext, n, held_out=True).bias, got.bias)


def test_extension_and_storage_refuse_bad_inputs(tmp_path):
    from ntkuq.infinite.learning_curves import extend_spectrum
    pool = _power_law_spectrum(1000)
    ext = extend_spectrum(pool, 10, 100, modes=1e5)
    for kwargs in ({"modes": 50}, {"modes": float("inf")}, {"bins": 3}, {"bins": 10.5}):
        with pytest.raises(ValueError, match=f"^{next(iter(kwargs))}"):
            extend_spectrum(pool, 10, 100, **kwargs)
    with pytest.raises(ValueError, match="^spectrum"):
        extend_spectrum(ext, 10, 100)
    with pytest.raises(ValueError, match="^first, last"):
        extend_spectrum(pool, 10, 1000)
    with pytest.raises(ValueError, match="^n"):
        learning_curve(ext, 2e5)
    with pytest.raises(ValueError, match="only a pool"):
        ext.save(tmp_path / "x.npz")
    pool.save(tmp_path / "pool.npz")
    back = Spectrum.load(tmp_path / "pool.npz")
    np.testing.assert_array_equal(back.eigenvalues, pool.eigenvalues)
    np.testing.assert_array_equal(back.prior_power, pool.prior_power)
    np.savez(tmp_path / "bad.npz", eigenvalues=pool.eigenvalues)
    with pytest.raises(ValueError, match="not a saved Spectrum"):
        Spectrum.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", eigenvalues=pool.eigenvalues, target_power=pool.target_power[:5],
             prior_power=pool.prior_power)
    with pytest.raises(ValueError, match="one length"):
        Spectrum.load(tmp_path / "short.npz")


def test_calibration_picks_the_range_that_matches_the_measurements():
    """Measurements of a population whose spectrum bends at mode 200: the ranges past the bend match them."""
    from ntkuq.infinite.learning_curves import calibrate_extension
    i = np.arange(1, 1_000_001, dtype=np.float64)
    lam = np.where(i < 200, i ** -1.0, 200.0 ** 0.5 * i ** -1.5)  # a = 1 up to mode 200, then 1.5
    population = Spectrum(lam, 0.5 * i ** -2.0, 0.2 * i ** -1.8)  # tails i^-1, i^-0.8: hardly cut at 10^6
    pool = Spectrum(lam[:3000].copy(), population.target_power[:3000].copy(), population.prior_power[:3000].copy())
    pool.target_power[-1] += population.target_power[3000:].sum()
    pool.prior_power[-1] += population.prior_power[3000:].sum()
    n = [300, 1000, 3000, 10_000]
    mu = learning_curve(population, n).mu
    cal = calibrate_extension(pool, n, mu, firsts=(10, 300), lasts=(150, 1500), modes=1e6)
    assert (cal.first, cal.last) == (300, 1500) and cal.mismatch < 0.03
    assert {t[:2] for t in cal.tried} == {(10, 150), (10, 1500), (300, 1500)}
    assert cal.tried[0][2] == cal.mismatch and all(t[2] >= cal.mismatch for t in cal.tried)
    worst = max(t[2] for t in cal.tried)
    assert worst > 3 * cal.mismatch  # the ranges across the bend miss: the choice matters
    np.testing.assert_allclose(learning_curve(cal.spectrum, n).mu / mu - 1, 0, atol=cal.mismatch + 1e-12)
    with pytest.raises(ValueError, match="^n, mu"):
        calibrate_extension(pool, n, mu[:2])
    with pytest.raises(ValueError, match="^n, mu"):
        calibrate_extension(pool, n, -mu)
    with pytest.raises(ValueError, match="^firsts, lasts"):
        calibrate_extension(pool, n, mu, firsts=(1000,), lasts=(1500,))
