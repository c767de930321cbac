"""The two parts of sigma_L^2 (science.md, "The two parts"): the parts, the subset formula and its limits."""
import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.finite import loss_split, train_ensemble
from ntkuq.infinite import (
    EnsemblePrediction,
    eps_floor,
    eps_for_test_size,
    eps_population,
    loss_stats,
    nested_sweep,
    nested_sweep_direct,
    nngp_posterior,
    ntk_prediction,
    sample_test_losses,
    train_test_kernels,
    uniform_floor,
    var_for_test_size,
)

RNG = np.random.default_rng(5)
X, XS = RNG.normal(size=(40, 4)), RNG.normal(size=(12, 4))
Y, YS = np.tanh(X[:, :2]), np.tanh(XS[:, :2])
SPEC = MLPSpec(depth=3, activation="erf", C_b=0.2, C_W=1.5, lambda_b=2.0, lambda_W=1.0)
KERN = train_test_kernels(SPEC, X, XS)
PREDS = {"inf": ntk_prediction(KERN, Y), "t": ntk_prediction(KERN, Y, time=2.0), "post": nngp_posterior(KERN, Y)}


def _dense(pred, ys):
    """The dense double-sum terms C_dd' of sigma_L^2 = sum C / (N_T k)^2."""
    S, R = np.asarray(pred.cov()), np.asarray(pred.mean) - ys
    k = R.shape[1]
    return 2 * k * S**2 + 4 * S * (R @ R.T), S, R


def _subset_stats(S, R, idx):
    """mu_L and sigma_L^2 of the test subset idx, from the dense S and residuals."""
    s, r = S[np.ix_(idx, idx)], R[idx]
    n, k = r.shape
    return (np.sum(r**2) + k * np.trace(s)) / (n * k), (2 * k * np.sum(s**2) + 4 * np.sum(r * (s @ r))) / (n * k) ** 2


@pytest.mark.parametrize("which", PREDS)
def test_parts_sum_and_equal_the_dense_diagonal(which):
    pred = PREDS[which]
    C, _, _ = _dense(pred, YS)
    norm = (YS.shape[0] * YS.shape[1]) ** 2
    for block in (1, 5, 100):
        st = loss_stats(pred, YS, block_size=block)
        assert st.var_diag + st.var_offdiag == pytest.approx(st.var, rel=1e-12)
        assert st.var_diag == pytest.approx(np.trace(C) / norm, rel=1e-12)
        assert st.var_offdiag == pytest.approx((C.sum() - np.trace(C)) / norm, rel=1e-10)


@pytest.mark.parametrize("which", PREDS)
@pytest.mark.parametrize("n", [1, 2, 5, 11])
def test_subset_formula_is_the_exact_average_over_all_subsets(which, n):
    """Averaged over every n-subset of the 12 test points, sigma_L^2 equals the closed form exactly."""
    pred = PREDS[which]
    _, S, R = _dense(pred, YS)
    st = loss_stats(pred, YS)
    avg = np.mean([_subset_stats(S, R, list(idx))[1] for idx in itertools.combinations(range(12), n)])
    assert var_for_test_size(st.var_diag, st.var_offdiag, 12, n) == pytest.approx(avg, rel=1e-11)
    assert var_for_test_size(st.var_diag, st.var_offdiag, 12, 12) == pytest.approx(st.var, rel=1e-12)


def test_subset_formula_against_random_subsets_of_a_sweep():
    """A larger test set: the nested sweep's parts give eps_L of random subsets (mean over 4000 subsets)."""
    xt, yt = RNG.normal(size=(60, 4)), None
    yt = np.tanh(xt[:, :2])
    pt = nested_sweep(SPEC, X, Y, xt, yt, [20, 40], methods=("ntk",), block_size=16)[-1]
    pred = ntk_prediction(train_test_kernels(SPEC, X, xt), Y)
    _, S, R = _dense(pred, yt)
    rng = np.random.default_rng(0)
    for n in (5, 20):
        var = np.array([_subset_stats(S, R, rng.choice(60, n, replace=False))[1] for _ in range(4000)])
        want = var_for_test_size(pt.stats.var_diag, pt.stats.var_offdiag, 60, n)
        assert abs(var.mean() - want) < 4 * var.std(ddof=1) / np.sqrt(var.size)
        assert eps_for_test_size(pt.stats.mu, pt.stats.var_diag, pt.stats.var_offdiag, 60, n) == \
            pytest.approx(np.sqrt(want) / pt.stats.mu)


def test_sweep_parts_equal_the_direct_parts():
    fast = nested_sweep(SPEC, X, Y, XS, YS, [10, 25, 40], block_size=5)
    direct = nested_sweep_direct(SPEC, X, Y, XS, YS, [10, 25, 40])
    for a, b in zip(fast, direct):
        assert a.stats.var_diag == pytest.approx(b.stats.var_diag, rel=1e-9)
        assert a.stats.var_offdiag == pytest.approx(b.stats.var_offdiag, rel=1e-8, abs=1e-14)


def test_uniform_points_give_the_uniform_floor():
    """S = v I (independent points of equal variance) and equal squared bias b per point: no population part,
    and eps_L(n) = sqrt(2 (1 - f^2) / (k n)) with f = b / (b + v)."""
    n_t, k, v, b = 50, 3, 0.3, 0.2
    xs = np.zeros((n_t, 1))
    mean = jnp.full((n_t, k), np.sqrt(b))
    pred = EnsemblePrediction(mean, jnp.zeros((1, n_t)), jnp.zeros((1, n_t)), None, SPEC, xs, v * jnp.eye(n_t))
    st = loss_stats(pred, np.zeros((n_t, k)))
    f = b / (b + v)
    assert st.var_offdiag == pytest.approx(0.0, abs=1e-15)
    for n in (1, 7, 50):
        assert st.eps_at(n) == pytest.approx(uniform_floor(f, k, n), rel=1e-12)
        assert eps_floor(st.mu, st.var_diag, n_t, n) == pytest.approx(uniform_floor(f, k, n), rel=1e-12)
    assert st.eps_population == pytest.approx(0.0, abs=1e-12)


def test_parts_against_monte_carlo_of_the_gaussian_ensemble():
    """Draw the ensemble's outputs, take each draw's per-point losses: their variances give var_diag."""
    pred = PREDS["inf"]
    st = loss_stats(pred, YS)
    S = np.asarray(pred.cov())
    lam, U = np.linalg.eigh(S)
    root = U * np.sqrt(np.maximum(lam, 0))
    rng = np.random.default_rng(1)
    r = np.asarray(pred.mean) - YS
    per_point = np.array([np.mean((r + root @ rng.standard_normal(r.shape)) ** 2, axis=1) for _ in range(20000)])
    split = loss_split(per_point, n_boot=50)
    assert abs(split.var_diag - st.var_diag) < 4 * split.var_diag_err
    assert abs(split.var_offdiag - st.var_offdiag) < 4 * split.var_offdiag_err
    total = sample_test_losses(pred, YS, 2000, seed=2)
    assert np.var(total, ddof=1) == pytest.approx(st.var, rel=0.15)


def test_loss_split_parts_sum_to_the_member_variance():
    rng = np.random.default_rng(3)
    pl = rng.gamma(2.0, size=(16, 30)) + rng.normal(size=(16, 1))
    s = loss_split(pl, n_boot=20)
    assert s.var_diag + s.var_offdiag == pytest.approx(np.var(pl.mean(axis=1), ddof=1), rel=1e-12)
    assert s.var_diag == pytest.approx(np.var(pl, axis=0, ddof=1).sum() / 30**2, rel=1e-12)
    assert s.var_diag_err > 0 and s.var_offdiag_err > 0
    for bad in (pl[:1], pl[:, :1], pl[0], np.full((3, 3), np.nan)):
        with pytest.raises(ValueError, match="point_losses"):
            loss_split(bad)


def test_trained_ensemble_records_per_point_losses():
    spec = MLPSpec(depth=2, activation="relu", C_b=0.0, C_W=2.0, lambda_b=1.0, lambda_W=1.0, width=16)
    res = train_ensemble(spec, X, Y, XS, YS, n_members=4, steps=20, seed=0)
    assert res.point_losses.shape == (4, 12)
    np.testing.assert_allclose(res.point_losses.mean(axis=1), res.test_losses, rtol=1e-5)
    s = res.split(n_boot=10)
    assert s.var_diag + s.var_offdiag == pytest.approx(np.var(res.point_losses.mean(axis=1), ddof=1), rel=1e-10)


@pytest.mark.parametrize("call", [
    lambda: var_for_test_size(1.0, 1.0, 10, 11), lambda: var_for_test_size(1.0, 1.0, 10, 0),
    lambda: var_for_test_size(1.0, 1.0, 1, 1), lambda: eps_for_test_size(0.0, 1.0, 1.0, 10, 5),
    lambda: var_for_test_size(1.0, np.nan, 10, 5), lambda: uniform_floor(1.5, 1, 1),
    lambda: eps_population(-1.0, 1.0, 10), lambda: var_for_test_size(1.0, 1.0, 10, 2.5)])
def test_bad_test_sizes_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_arrays_broadcast():
    n = np.array([10, 100, 1000])
    out = eps_for_test_size(0.1, 1e-6, 1e-6, 1000, n)
    assert out.shape == (3,) and np.all(np.diff(out) < 0)
    assert eps_for_test_size(0.1, 1e-6, 1e-6, 1000, 1000) == pytest.approx(np.sqrt(2e-6) / 0.1)
