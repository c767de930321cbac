"""The infinite-width trained ensemble against independent computations of the same linear dynamics."""
import math

import numpy as np
import pytest
import scipy.linalg

from ntkuq import MLPSpec
from ntkuq.infinite import (
    loss_stats,
    max_stable_eta,
    nested_sweep,
    nngp_posterior,
    ntk_prediction,
    predict,
    train_test_kernels,
)

RNG = np.random.default_rng(1)
X, XS = RNG.normal(size=(20, 4)), RNG.normal(size=(9, 4))
Y, YS = np.sin(X[:, :2]), np.sin(XS[:, :2])
SPEC = MLPSpec(depth=3, activation="relu", C_b=0.1, C_W=2.0, lambda_b=4.0, lambda_W=1.0)
KERN = train_test_kernels(SPEC, X, XS)
KXX, THXX, KXS, THXS = (np.asarray(a) for a in (KERN.K_XX, KERN.Th_XX, KERN.K_Xs, KERN.Th_Xs))
KSS = np.asarray(train_test_kernels(SPEC, XS, XS).K_XX)
N = X.shape[0]


def joint_prior():
    """Covariance of the initial outputs on (train, test): the NNGP kernel on both sets."""
    return np.block([[KXX, KXS], [KXS.T, KSS]])


def test_discrete_steps_match_iterated_recursion():
    """Iterate z <- z - (eta/N) Theta_(.)X (z_X - y) as an affine map on the joint outputs: no inversion."""
    eta, steps = 0.5 * max_stable_eta(KERN.Th_XX), 37
    n, m = N, XS.shape[0]
    step = np.eye(n + m)
    step[:, :n] -= eta / N * np.vstack([THXX, THXS.T])
    M, c = np.eye(n + m), np.zeros((n + m, Y.shape[1]))
    for _ in range(steps):  # z_{t+1} = step z_t + (eta/N) Theta_(.)X y
        M, c = step @ M, step @ c + eta / N * np.vstack([THXX, THXS.T]) @ Y
    cov = (M @ joint_prior() @ M.T)[n:, n:]
    pred = ntk_prediction(KERN, Y, steps=steps, eta=eta)
    np.testing.assert_allclose(pred.mean, c[n:], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pred.cov(), cov, rtol=1e-8, atol=1e-11)


def test_gradient_flow_matches_matrix_exponential():
    """d/dt (z_X - y, z_s) = -(eta/N) [Theta_XX; Theta_sX] (z_X - y): solved with scipy's expm."""
    eta, t = 0.7, 3.3
    n, m = N, XS.shape[0]
    gen = np.zeros((n + m, n + m))
    gen[:, :n] = -eta / N * np.vstack([THXX, THXS.T])
    M = scipy.linalg.expm(gen * t)
    # z(t) = M (z_0 - [y; 0]) + [y; 0]
    shift = np.vstack([Y, np.zeros((m, Y.shape[1]))])
    mean = (M @ (-shift) + shift)[n:]
    cov = (M @ joint_prior() @ M.T)[n:, n:]
    pred = ntk_prediction(KERN, Y, time=t, eta=eta)
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pred.cov(), cov, rtol=1e-8, atol=1e-11)


def test_infinite_time_limit():
    inf = ntk_prediction(KERN, Y)
    a = np.linalg.solve(THXX, THXS).T
    np.testing.assert_allclose(inf.mean, a @ Y, rtol=1e-9)
    np.testing.assert_allclose(inf.cov(), KSS + a @ KXX @ a.T - a @ KXS - KXS.T @ a.T, rtol=1e-8, atol=1e-10)
    late = ntk_prediction(KERN, Y, time=1e7)
    np.testing.assert_allclose(late.mean, inf.mean, rtol=1e-6)
    # time=inf is the t = infinity prediction itself (the same Cholesky solve), not a long flow
    at_inf = ntk_prediction(KERN, Y, time=math.inf)
    np.testing.assert_array_equal(at_inf.mean, inf.mean)
    np.testing.assert_array_equal(at_inf.cov(), inf.cov())


def test_nngp_posterior():
    post = nngp_posterior(KERN, Y)
    np.testing.assert_allclose(post.mean, KXS.T @ np.linalg.solve(KXX, Y), rtol=1e-9)
    np.testing.assert_allclose(post.cov(), KSS - KXS.T @ np.linalg.solve(KXX, KXS), rtol=1e-8, atol=1e-10)
    # Posterior variance is below the prior's, and the NTK ensemble's differs from it.
    assert np.all(np.diag(post.cov()) < np.diag(KSS))


def test_nested_sweep_reuses_the_factor_correctly():
    sizes = [5, 11, 20]
    points = nested_sweep(SPEC, X, Y, XS, YS, sizes, block_size=4)
    for p in points:
        kern = train_test_kernels(SPEC, X[: p.n_train], XS)
        pred = ntk_prediction(kern, Y[: p.n_train]) if p.method == "ntk" else nngp_posterior(kern, Y[: p.n_train])
        ref = loss_stats(pred, YS)
        assert p.stats.mu == pytest.approx(ref.mu, rel=1e-9)
        assert p.stats.sigma == pytest.approx(ref.sigma, rel=1e-8)
    assert [p.n_train for p in points] == sizes * 2


@pytest.mark.parametrize("kwargs, param", [
    (dict(time=-1.0), "time"), (dict(steps=-3), "steps"), (dict(steps=2.5), "steps"),
    (dict(eta=0.0, steps=3), "eta"), (dict(time=1.0, steps=3), "time, steps"), (dict(diag_reg=-1e-3), "diag_reg"),
    (dict(eta=1e6, steps=10), "eta"), (dict(time=float("nan")), "time"),
])
def test_bad_training_parameters(kwargs, param):
    with pytest.raises(ValueError, match=f"^{param}"):
        ntk_prediction(KERN, Y, **kwargs)


@pytest.mark.parametrize("x_train, y_train, x_test, param", [
    (X[:, :3], Y, XS, "x_test"), (X, Y[:5], XS, "y_train"), (X[0], Y, XS, "x_train"),
    (np.where(X > 1, np.nan, X), Y, XS, "x_train"), (X, Y, np.full_like(XS, np.inf), "x_test"),
    (X[:0], Y[:0], XS, "x_train"),
])
def test_bad_arrays(x_train, y_train, x_test, param):
    with pytest.raises(ValueError, match=f"^{param}"):
        predict(SPEC, x_train, y_train, x_test)


def test_ill_conditioned_kernel_names_diag_reg():
    dup = np.vstack([X, X[:3]])
    with pytest.raises(ValueError, match="^diag_reg"):
        predict(SPEC, dup, np.vstack([Y, Y[:3]]), XS)
    ok = predict(SPEC, dup, np.vstack([Y, Y[:3]]), XS, diag_reg=1e-6)
    assert np.all(np.isfinite(ok.mean))


def test_unknown_method_and_mismatched_targets():
    with pytest.raises(ValueError, match="^method"):
        predict(SPEC, X, Y, XS, method="sgd")
    pred = ntk_prediction(KERN, Y)
    with pytest.raises(ValueError, match="^y_test"):
        loss_stats(pred, YS[:, :1])
    with pytest.raises(ValueError, match="^sizes"):
        nested_sweep(SPEC, X, Y, XS, YS, [5, 5, 10])


@pytest.mark.parametrize("fraction", [0.3, 0.51, 0.75, 0.99])
def test_discrete_steps_at_large_stable_learning_rates(fraction):
    """eta lambda / N_D > 1 for the top modes when fraction > 1/2: (1 - eta lambda / N_D)^T alternates in sign."""
    eta, steps = fraction * max_stable_eta(KERN.Th_XX), 7
    step = np.eye(N) - eta / N * THXX
    res = np.linalg.matrix_power(step, steps) @ (-Y) + Y  # train outputs from a zero start: mean dynamics
    pred = ntk_prediction(KERN, Y, steps=steps, eta=eta)
    assert np.all(np.isfinite(pred.mean))
    # The test mean is Theta_sX Theta^-1 (1 - (1 - eta Theta/N)^T) Y = Theta_sX Theta^-1 (train mean).
    np.testing.assert_allclose(pred.mean, THXS.T @ np.linalg.solve(THXX, res), rtol=1e-7, atol=1e-10)
