"""Linear learning-rate warmup: the infinite-width engine's exact ramp against direct iteration, its limits,
and the finite-width trainer's ramp against hand-written steps."""
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkuq  # noqa: F401
from ntkuq.finite import apply_mlp, init_members, make_optimizer, train_ensemble, train_loss
from ntkuq.infinite import (
    converged_steps,
    gain,
    loss_stats,
    max_stable_eta,
    ntk_prediction,
    residual_factor,
    small_a_limit,
    stability_limit,
    train_test_kernels,
)
from ntkuq.spec import MLPSpec

RNG = np.random.default_rng(5)
X, XS = RNG.normal(size=(20, 4)), RNG.normal(size=(9, 4))
Y, YS = np.sin(X[:, :2]), np.sin(XS[:, :2])
SPEC = MLPSpec(depth=3, activation="relu", C_b=0.1, C_W=2.0, lambda_b=5.0, lambda_W=0.5)
KERN = train_test_kernels(SPEC, X, XS)
THXX, KXX, THXS, KXS = (np.asarray(a) for a in (KERN.Th_XX, KERN.K_XX, KERN.Th_Xs, KERN.K_Xs))
KSS = np.asarray(train_test_kernels(SPEC, XS, XS).K_XX)
OPTS = [("gd", None), ("momentum", 0.5), ("momentum", 0.9), ("nesterov", 0.9)]


def ramped(a: Fraction, steps: int, warmup: int, optimizer: str, beta: Fraction) -> Fraction:
    """One residual mode under the optimizer with the rate ramp min(1, (t + 1) / W), in exact arithmetic."""
    e, v = Fraction(1), Fraction(0)
    for t in range(steps):
        a_t = a * min(Fraction(1), Fraction(t + 1, warmup)) if warmup else a
        v = beta * v + e
        e = e - a_t * ((beta * v + e) if optimizer == "nesterov" else v)
    return e


@pytest.mark.parametrize("optimizer,beta", OPTS)
@pytest.mark.parametrize("steps,warmup", [(1, 10), (4, 10), (10, 10), (11, 10), (37, 10), (60, 1), (25, 3)])
def test_warmup_residual_equals_exact_iteration(optimizer, beta, steps, warmup):
    lim = stability_limit(optimizer, beta)
    a = np.array([1e-6, 0.05, 0.3, 0.5 * lim, 0.9 * lim, lim * (1 - 1e-9)] + list(RNG.uniform(0, lim, 4)))
    got = residual_factor(a, steps, optimizer, beta, warmup=warmup)
    b = Fraction(beta or 0)
    exact = np.array([float(ramped(Fraction(x), steps, warmup, optimizer, b)) for x in a])
    np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-12 * np.max(np.abs(exact)))


@pytest.mark.parametrize("optimizer,beta", OPTS)
def test_no_warmup_is_unchanged_and_warmup_one_is_the_full_rate(optimizer, beta):
    a = np.linspace(0.0, 0.99 * stability_limit(optimizer, beta), 7)
    plain = residual_factor(a, 50, optimizer, beta)
    assert np.array_equal(residual_factor(a, 50, optimizer, beta, warmup=0), plain)
    np.testing.assert_allclose(residual_factor(a, 50, optimizer, beta, warmup=1), plain, rtol=1e-10, atol=1e-14)
    assert not np.allclose(residual_factor(a[1:], 50, optimizer, beta, warmup=20), plain[1:])


@pytest.mark.parametrize("optimizer,beta", OPTS)
def test_warmup_small_rate_limit_and_long_training(optimizer, beta):
    """(1 - r_T(a)) / a -> f_T(W) at a = 1e-18 in exact arithmetic; T = 10^7 after a warmup is finite."""
    b = Fraction(beta or 0)
    for T, W in ((5, 8), (30, 8), (300, 40)):
        a = Fraction(1, 10**18)
        exact = float((1 - ramped(a, T, W, optimizer, b)) / a)
        assert small_a_limit(T, optimizer, beta, warmup=W) == pytest.approx(exact, rel=1e-9)
    g = gain(np.array([0.0, 1e-320]), 2.0, 10, steps=50, optimizer=optimizer, momentum=beta, warmup=20)
    assert g == pytest.approx(0.2 * small_a_limit(50, optimizer, beta, warmup=20), rel=1e-12)
    lim = stability_limit(optimizer, beta)
    r = residual_factor(np.array([1e-9, 0.5 * lim, 0.999 * lim]), 10**7, optimizer, beta, warmup=1000)
    assert np.all(np.isfinite(r)) and np.all(np.abs(r[1:]) < 1e-100)


def joint_iteration(eta: float, steps: int, optimizer: str, beta: float, warmup: int):
    """The linearized network on (train, test) under the optimizer with a ramped rate, as an affine map of the
    initial outputs: the momentum buffer holds raw gradients, the rate multiplies the update (optax)."""
    n, m = X.shape[0], XS.shape[0]
    drive = np.vstack([THXX, THXS.T]) / n  # gradient of L_train in output space, per unit rate
    Mz, cz = np.eye(n + m), np.zeros((n + m, Y.shape[1]))
    Mv, cv = np.zeros((n + m, n + m)), np.zeros_like(cz)
    for t in range(steps):
        rate = eta * (min(1.0, (t + 1) / warmup) if warmup else 1.0)
        gM, gc = drive @ Mz[:n], drive @ cz[:n] - drive @ Y
        Mv, cv = beta * Mv + gM, beta * cv + gc
        uM, uc = (beta * Mv + gM, beta * cv + gc) if optimizer == "nesterov" else (Mv, cv)
        Mz, cz = Mz - rate * uM, cz - rate * uc
    prior = np.block([[KXX, KXS], [KXS.T, KSS]])
    return cz[n:], (Mz @ prior @ Mz.T)[n:, n:]


@pytest.mark.parametrize("optimizer,beta", OPTS)
def test_warmup_ensemble_matches_iterated_mean_and_covariance(optimizer, beta):
    eta = 0.6 * max_stable_eta(KERN.Th_XX, optimizer, beta)
    for steps, warmup in ((7, 12), (31, 12)):
        mean, cov = joint_iteration(eta, steps, optimizer, beta or 0.0, warmup)
        pred = ntk_prediction(KERN, Y, steps=steps, eta=eta, optimizer=optimizer, momentum=beta, warmup=warmup)
        np.testing.assert_allclose(pred.mean, mean, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(pred.cov(), cov, rtol=1e-7, atol=1e-10)


def test_warmup_converges_to_t_infinity_and_its_converged_steps_hold():
    inf = loss_stats(ntk_prediction(KERN, Y), YS)
    eta = 0.5 * max_stable_eta(KERN.Th_XX, "momentum", 0.9)
    long = loss_stats(ntk_prediction(KERN, Y, steps=10**6, eta=eta, optimizer="momentum", warmup=500), YS)
    assert long.mu == pytest.approx(inf.mu, rel=1e-9) and long.sigma == pytest.approx(inf.sigma, rel=1e-9)
    ramp = converged_steps(KERN, Y, YS, eta=eta, optimizer="momentum", momentum=0.9, warmup=200)
    assert ramp.converged
    for T in (ramp.steps, 2 * ramp.steps, 250, 5000):  # inside the ramp, at its end and after it
        st = loss_stats(ntk_prediction(KERN, Y, steps=T, eta=eta, optimizer="momentum", warmup=200), YS)
        assert abs(st.mu / inf.mu - 1) <= 0.01 and abs(st.sigma / inf.sigma - 1) <= 0.01, T


@pytest.mark.parametrize("optimizer,beta", [("gd", None), ("momentum", 0.8), ("nesterov", 0.8)])
def test_trainer_ramp_equals_hand_written_steps(optimizer, beta):
    """train_ensemble(warmup=W) in float64 equals optax steps taken by hand at the rates eta min(1, (t+1)/W)."""
    spec = MLPSpec.critical("relu", depth=2, width=12)
    eta, steps, warmup = 0.05, 9, 5
    res = train_ensemble(spec, X, Y, XS, YS, n_members=1, steps=steps, eta=eta, optimizer=optimizer,
                         momentum=beta, dtype=jnp.float64, keep_outputs=True, warmup=warmup, progress=False)
    params = jax.tree.map(lambda p: p[0], init_members(spec, 4, 2, [0], seed=0, dtype=jnp.float64))
    state = make_optimizer(spec, 4, 2, 1.0, optimizer, jnp.float64, beta).init(params)
    for t in range(steps):
        tx = make_optimizer(spec, 4, 2, eta * min(1.0, (t + 1) / warmup), optimizer, jnp.float64, beta)
        grads = jax.grad(train_loss, argnums=1)(spec, params, jnp.asarray(X), jnp.asarray(Y))
        upd, state = tx.update(grads, state, params)
        params = jax.tree.map(lambda a, b: a + b, params, upd)
    np.testing.assert_allclose(res.outputs[0], np.asarray(apply_mlp(spec, params, jnp.asarray(XS))),
                               rtol=1e-10, atol=1e-12)
    plain = train_ensemble(spec, X, Y, XS, YS, n_members=1, steps=steps, eta=eta, optimizer=optimizer,
                           momentum=beta, dtype=jnp.float64, keep_outputs=True, progress=False)
    assert not np.allclose(plain.outputs, res.outputs)


def test_bad_warmup_is_refused():
    with pytest.raises(ValueError, match="^warmup"):
        residual_factor(np.array([0.1]), 5, "gd", warmup=-1)
    with pytest.raises(ValueError, match="^warmup"):
        ntk_prediction(KERN, Y, warmup=10)
    with pytest.raises(ValueError, match="^warmup"):
        gain(np.array([1.0]), 0.1, 4, time=1.0, warmup=3)
    with pytest.raises(ValueError, match="^warmup"):
        train_ensemble(MLPSpec.critical("relu", depth=2, width=4), X, Y, XS, YS, n_members=2, steps=2, eta=0.01,
                       optimizer="adam", warmup=3, progress=False)
    with pytest.raises((ValueError, TypeError), match="^warmup"):
        train_ensemble(MLPSpec.critical("relu", depth=2, width=4), X, Y, XS, YS, n_members=2, steps=2,
                       warmup=2.5, progress=False)
