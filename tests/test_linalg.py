"""Condition estimates against eigenvalues, the ill-conditioning refusal against extended-precision solves,
the Cholesky solve and the stable learning rate."""

import numpy as np
import pytest
import scipy.linalg

from ntkuq import MLPSpec
from ntkuq._src.linalg import (
    MAX_COND,
    checked_cholesky,
    cho_solve,
    cond_estimate,
    extreme_eigenvalues,
    largest_eigenvalue,
)
from ntkuq.infinite import (
    kernels,
    max_stable_eta,
    nested_sweep,
    nngp_posterior,
    ntk_prediction,
    predict,
    stable_eta,
    train_test_kernels,
)

LD = np.longdouble


@pytest.mark.parametrize("log_cond", [2, 6, 10, 14])
@pytest.mark.parametrize("lower", [True, False])
def test_condition_estimate_matches_eigenvalues(log_cond, lower):
    """Random SPD matrices with a prescribed spectrum (log-uniform, clustered at the small end)."""
    rng = np.random.default_rng(log_cond)
    n = 300
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.sort(np.concatenate([np.logspace(-log_cond, 0, n - 20), np.full(20, 10.0**-log_cond)]))
    a = (q * lam) @ q.T
    a = 0.5 * (a + a.T)
    exact = np.linalg.eigvalsh(a)
    factor = np.asfortranarray(scipy.linalg.cholesky(a, lower=lower))
    lam_max, lam_min = extreme_eigenvalues(factor, lower=lower)
    # Rayleigh quotients: lambda_max from below, lambda_min from above; a few steps get within a factor 2.
    assert 0.5 * exact[-1] < lam_max <= exact[-1] * (1 + 1e-12)
    if log_cond <= 10:  # beyond, float64 eigenvalues themselves are inaccurate
        assert exact[0] * (1 - 1e-6) <= lam_min < 2 * exact[0]
        assert exact[-1] / exact[0] / 2 < cond_estimate(factor, lower=lower) <= exact[-1] / exact[0] * (1 + 1e-6)
    else:
        assert cond_estimate(factor, lower=lower) > 1e12


def _chol_ld(a):
    """Cholesky factor in extended precision (numpy longdouble, 64-bit mantissa): the reference."""
    a = a.astype(LD)
    n = a.shape[0]
    low = np.zeros_like(a)
    for j in range(n):
        low[j, j] = np.sqrt(a[j, j] - low[j, :j] @ low[j, :j])
        low[j + 1:, j] = (a[j + 1:, j] - low[j + 1:, :j] @ low[j, :j]) / low[j, j]
    return low


def _solve_ld(a, b):
    low = _chol_ld(a)
    n = a.shape[0]
    x = b.astype(LD).copy()
    for i in range(n):  # forward: L y = b
        x[i] = (x[i] - low[i, :i] @ x[:i]) / low[i, i]
    for i in range(n - 1, -1, -1):  # backward: L^T x = y
        x[i] = (x[i] - low[i + 1:, i] @ x[i + 1:]) / low[i, i]
    return x


def _mu_reference(kern, kss, y, ys, r, method):
    """mu_L from the same float64 kernels, solved and assembled in extended precision."""
    kxx, thxx, kxs, thxs = (np.asarray(m).astype(LD) for m in (kern.K_XX, kern.Th_XX, kern.K_Xs, kern.Th_Xs))
    full, cross = (thxx, thxs) if method == "ntk" else (kxx, kxs)
    v = _solve_ld(np.asarray(full, dtype=np.float64) + r * np.eye(full.shape[0]), cross)
    kss, y, ys = kss.astype(LD), y.astype(LD), ys.astype(LD)
    s = kss - kxs.T @ v - (v.T @ (kxs - kxx @ v) if method == "ntk" else 0)
    res = v.T @ y - ys
    return float((np.sum(res**2) + y.shape[1] * np.trace(s)) / res.size)


ERF = MLPSpec(depth=3, activation="erf", C_b=0.1, C_W=1.5, lambda_b=0.1, lambda_W=1.5)
RNG = np.random.default_rng(0)
X2, XS2 = RNG.standard_normal((300, 2)), RNG.standard_normal((50, 2))
Y2, YS2 = np.sin(X2), np.sin(XS2)


@pytest.fixture(scope="module")
def erf_kernels():
    return train_test_kernels(ERF, X2, XS2), np.asarray(kernels(ERF, XS2).nngp)


def test_refuses_nearly_singular_kernels_that_the_pivot_ratio_accepted(erf_kernels):
    """erf with 2-D inputs, N_D = 300, diag_reg = 1e-12: cond ~ 1e14, the squared pivot ratio only ~1e-12
    (the old criterion accepted >= 1e-13), and mu_L from a float64 Cholesky solve is off by more than 1e-6."""
    kern, kss = erf_kernels
    r = 1e-12
    for method, full in (("ntk", kern.Th_XX), ("nngp", kern.K_XX)):
        a = np.asarray(full) + r * np.eye(300)
        c = scipy.linalg.cholesky(a, lower=True)
        assert (np.min(np.diag(c)) / np.max(np.diag(c))) ** 2 > 1e-13  # the old guard would pass it
        v = scipy.linalg.cho_solve((c, True), np.asarray(kern.Th_Xs if method == "ntk" else kern.K_Xs))
        ref = _mu_reference(kern, kss, Y2, YS2, r, method)
        kxx, kxs = np.asarray(kern.K_XX), np.asarray(kern.K_Xs)
        s = kss - kxs.T @ v - (v.T @ (kxs - kxx @ v) if method == "ntk" else 0)
        res = v.T @ Y2 - YS2
        mu64 = (np.sum(res**2) + Y2.shape[1] * np.trace(s)) / res.size
        assert abs(mu64 - ref) / ref > 1e-6, (method, mu64, ref)
    with pytest.raises(ValueError, match="^diag_reg.*condition number"):
        ntk_prediction(kern, Y2, diag_reg=r)
    with pytest.raises(ValueError, match="^diag_reg"):
        nngp_posterior(kern, Y2, diag_reg=r)
    with pytest.raises(ValueError, match="^diag_reg"):
        nested_sweep(ERF, X2, Y2, XS2, YS2, [100, 300], diag_reg=r)
    with pytest.raises(ValueError, match="^diag_reg"):
        predict(ERF, X2, Y2, XS2, diag_reg=0.0)


@pytest.mark.parametrize("r", [3e-8, 1e-7, 1e-6])
def test_accepted_kernels_give_mu_to_six_digits(erf_kernels, r):
    """Just inside and well inside the limit: the sweep's mu_L agrees with the extended-precision solve."""
    kern, kss = erf_kernels
    points = nested_sweep(ERF, X2, Y2, XS2, YS2, [300], diag_reg=r, block_size=64)
    for p in points:
        ref = _mu_reference(kern, kss, Y2, YS2, r, p.method)
        assert abs(p.stats.mu - ref) / ref < 1e-6, (p.method, r, p.stats.mu, ref)
    th = np.asarray(kern.Th_XX) + r * np.eye(300)
    assert np.linalg.cond(th) < MAX_COND


def test_diag_reg_advice_is_enough():
    """The suggested diag_reg makes the same kernel acceptable."""
    with pytest.raises(ValueError) as err:
        nested_sweep(ERF, X2, Y2, XS2, YS2, [300])
    advice = float(str(err.value).rsplit("e.g. ", 1)[1])
    assert advice > 0
    points = nested_sweep(ERF, X2, Y2, XS2, YS2, [300], diag_reg=advice)
    assert all(np.isfinite(p.stats.mu) for p in points)


def test_cho_solve_and_leading_blocks():
    """The factor of a leading block is the leading block of the factor, so one factor solves every prefix."""
    a = RNG.standard_normal((40, 40))
    s = a @ a.T / 40 + 0.5 * np.eye(40)
    b = RNG.standard_normal((40, 3))
    chol = checked_cholesky(s, 0.25, "test")
    for n in (7, 40):
        np.testing.assert_allclose(cho_solve(chol[:n, :n], b[:n]), np.linalg.solve(s[:n, :n] + 0.25 * np.eye(n), b[:n]),
                                   rtol=1e-10)
    with pytest.raises(ValueError, match="^diag_reg: the test train-train kernel"):
        checked_cholesky(np.ones((5, 5)), 0.0, "test")


def test_stable_eta_and_largest_eigenvalue():
    a = RNG.standard_normal((60, 60))
    s = a @ a.T
    lam = np.linalg.eigvalsh(s)[-1]
    assert largest_eigenvalue(s) == pytest.approx(lam, rel=1e-12)
    assert largest_eigenvalue(s, lanczos_above=10) == pytest.approx(lam, rel=1e-10)  # Lanczos
    assert max_stable_eta(s) == pytest.approx(2 * 60 / lam, rel=1e-12)
    assert stable_eta(4.0, 10) == 5.0
    assert stable_eta(4.0, 10, "sgd") == 5.0  # judged by full-batch gradient descent
    assert stable_eta(4.0, 10, "momentum", 0.5) == pytest.approx(7.5)
    assert stable_eta(4.0, 10, "nesterov", 0.5) == pytest.approx(3.75)
    with pytest.raises(ValueError, match="optimizer"):
        stable_eta(4.0, 10, "adam")
