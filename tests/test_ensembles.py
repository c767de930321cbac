"""Finite-width ensembles: convergence to the infinite-width engine, vmap/seed/chunk invariance, statistics, errors."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkuq  # noqa: F401
from ntkuq.finite import (
    EnsembleResult,
    apply_mlp,
    bootstrap_stats,
    default_eta,
    init_members,
    init_mlp,
    make_optimizer,
    make_step,
    record_steps,
    run_steps,
    stable_eta_max,
    train_ensemble,
    training,
)
from ntkuq.infinite import kernels, max_stable_eta, ntk_prediction, train_test_kernels
from ntkuq.spec import MLPSpec

N_IN, K = 6, 2
SPEC = MLPSpec.critical("relu", depth=2, width=64)  # lambda_b / lambda_W = 10, as in the paper


def make_data(n_train: int, n_test: int, seed: int = 0):
    """Gaussian inputs, smooth two-component targets."""
    rng = np.random.default_rng(seed)
    x, xs = rng.standard_normal((n_train, N_IN)), rng.standard_normal((n_test, N_IN))

    def target(v):
        return np.sin(v[:, :K] + 0.5 * v[:, K:2 * K])

    return x, target(x), xs, target(xs)


@pytest.fixture(scope="module")
def small():
    """32 training and 8 test points."""
    return make_data(32, 8)


def _fit_slope(widths, values) -> float:
    """Slope of log(value) against log(width); zero values (bias below the noise) are floored at 1e-12."""
    return float(np.polyfit(np.log(widths), np.log(np.maximum(values, 1e-12)), 1)[0])


# ---------------------------------------------------------------------------------------------
# Convergence to the infinite-width prediction
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_ensemble_converges_to_infinite_width_discrete_gd_prediction():
    """Mean and covariance of the trained test outputs approach ntk_prediction(steps=T) as the width grows.

    Noise removal (the ensemble of M = 256 members alone has a statistical floor far above the
    finite-width bias): each member's own infinite-width linear prediction from its initial outputs,
    h_m = f0_m(s) - V^T f0_m(X), is a control variate with EXACTLY known moments at depth 2: E[h] = 0
    (sign symmetry of the last layer) and E[h h^T] = S (the depth-2 NNGP kernel is exact at any
    width, the first-layer preactivations being exactly Gaussian).  So with r_m = z_m - m - h_m,
      mean bias  E[z] - m          = E[r]                 (estimated by mean_m r_m),
      cov bias   E[(z-m)(z-m)^T] - S = E[h r^T + r h^T + r r^T]  (estimated by its member mean),
    both without the O(1) Gaussian noise of z; the residual noise is O(1/sqrt(n M)).  The squared
    bias is then estimated without the noise as ||mean||^2 - sum of squared standard errors
    (unbiased), clipped at 0 (= bias below the noise).
    Honest numbers (seeds 0, 1, 2): slopes about -0.75..-0.87 (mean) and -0.90..-0.94 (covariance)
    over widths 64..1024 at T = 10.  Perturbation theory predicts -1 asymptotically; the mean is
    still pre-asymptotic here, and more so for longer training (T = 100 gives about -0.55 over the
    same widths; T = 1 gives -0.97 for the covariance, the mean bias then being below the noise).
    """
    widths, n_members, steps = (64, 256, 1024), 256, 10
    x, y, xs, ys = make_data(128, 64)
    spec0 = SPEC.with_width(None)
    eta = default_eta(spec0, x)
    pred = ntk_prediction(train_test_kernels(spec0, x, xs), y, steps=steps, eta=eta)
    m, S, V = np.asarray(pred.mean), np.asarray(pred.cov()), np.asarray(pred.V)
    b_mean, b_cov, cv_mean, cv_cov = [], [], [], []
    for w in widths:
        spec = SPEC.with_width(w)
        res = train_ensemble(spec, x, y, xs, ys, n_members=n_members, steps=steps, eta=eta, n_record=2,
                             keep_outputs=True, progress=False)
        p0 = init_members(spec, N_IN, K, range(n_members), seed=0)
        f0 = [np.asarray(jax.vmap(lambda p: apply_mlp(spec, p, jnp.asarray(a, jnp.float32)))(p0), np.float64)
              for a in (x, xs)]
        z = res.outputs
        h = f0[1] - np.einsum("as,mak->msk", V, f0[0])
        r = z - m - h
        q = (np.einsum("msk,mtk->mst", h, r) + np.einsum("msk,mtk->mst", r, h) + np.einsum("msk,mtk->mst", r, r)) / K
        for samples, scale, bias_out, cv_out in ((r, np.linalg.norm(m), b_mean, cv_mean),
                                                 (q, np.linalg.norm(S), b_cov, cv_cov)):
            avg = samples.mean(axis=0)
            se2 = np.sum(samples.var(axis=0, ddof=1)) / n_members
            cv_out.append(np.linalg.norm(avg) / scale)
            bias_out.append(math.sqrt(max(np.sum(avg**2) - se2, 0.0)) / scale)
        if w == widths[-1]:
            # Without the control variate: the raw ensemble mean is within its standard errors of m.
            zscore2 = np.mean((z.mean(axis=0) - m) ** 2 / (z.var(axis=0, ddof=1) / n_members))
    slope_mean, slope_cov = _fit_slope(widths, b_mean), _fit_slope(widths, b_cov)
    print(f"\nwidths {widths}: relative bias of the mean {np.round(b_mean, 4)} (slope {slope_mean:.2f}), "
          f"of the covariance {np.round(b_cov, 4)} (slope {slope_cov:.2f}); with noise: mean {np.round(cv_mean, 4)} "
          f"(slope {_fit_slope(widths, cv_mean):.2f}), cov {np.round(cv_cov, 4)} "
          f"(slope {_fit_slope(widths, cv_cov):.2f}); "
          f"raw mean z-score^2 at n={widths[-1]}: {zscore2:.2f}")
    assert slope_mean < -0.5 and slope_cov < -0.5
    assert cv_mean[-1] < 0.05 and cv_cov[-1] < 0.05
    assert b_mean[0] > 0.05 and b_cov[0] > 0.05  # the finite-width effect is really measured at n = 64
    assert zscore2 < 2.0


# ---------------------------------------------------------------------------------------------
# Trainer mechanics
# ---------------------------------------------------------------------------------------------

def test_vmapped_training_equals_training_each_member_alone(small):
    x, y, xs, ys = small
    seed, steps, n_members = 3, 25, 4
    eta = default_eta(SPEC, x)
    res = train_ensemble(SPEC, x, y, xs, ys, n_members=n_members, steps=steps, eta=eta, seed=seed,
                         keep_outputs=True, progress=False)
    run = run_steps(make_step(SPEC, N_IN, K))
    tx = make_optimizer(SPEC, N_IN, K, eta)
    f32 = [jnp.asarray(a, jnp.float32) for a in (x, y, xs)]
    for m in range(n_members):
        params = init_mlp(SPEC, N_IN, K, jax.random.fold_in(jax.random.PRNGKey(seed), m), jnp.float32)
        params, _ = run(params, tx.init(params), f32[0], f32[1], jnp.int32(0), jnp.int32(steps),
                        jnp.float32(eta), jax.random.PRNGKey(0))
        z = np.asarray(apply_mlp(SPEC, params, f32[2]))
        np.testing.assert_allclose(res.outputs[m], z, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(res.test_losses[m], np.mean((z - ys) ** 2), rtol=1e-4)


def test_same_seed_identical_other_seed_different_chunking_invariant(small):
    x, y, xs, ys = small
    kw = dict(n_members=8, steps=30, eta=default_eta(SPEC, x), keep_outputs=True, progress=False)
    a = train_ensemble(SPEC, x, y, xs, ys, seed=1, **kw)
    b = train_ensemble(SPEC, x, y, xs, ys, seed=1, **kw)
    c = train_ensemble(SPEC, x, y, xs, ys, seed=1, chunk=4, **kw)
    d = train_ensemble(SPEC, x, y, xs, ys, seed=2, **kw)
    for other in (b, c):
        np.testing.assert_array_equal(a.steps, other.steps)
        np.testing.assert_allclose(other.outputs, a.outputs, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(other.train_history, a.train_history, rtol=1e-6)
        np.testing.assert_allclose(other.test_history, a.test_history, rtol=1e-6)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert np.min(np.abs(d.test_losses - a.test_losses)) > 1e-6


def test_training_lowers_training_loss_and_records_log_spaced_steps(small):
    x, y, xs, ys = small
    res = train_ensemble(SPEC, x, y, xs, ys, n_members=4, steps=200, n_record=12, progress=False)
    assert res.steps[0] == 0 and res.steps[-1] == 200 and np.all(np.diff(res.steps) > 0)
    np.testing.assert_array_equal(res.steps, record_steps(200, 12))
    assert res.train_history.shape == res.test_history.shape == (4, res.steps.size)
    assert np.all(np.diff(res.train_history, axis=1) <= 1e-6)  # GD below the stable rate: monotone
    assert np.all(res.train_losses < 0.3 * res.train_history[:, 0])
    np.testing.assert_array_equal(res.test_losses, res.test_history[:, -1])
    assert res.outputs is None and np.all(res.stopped_at == 200)
    assert res.eta == pytest.approx(default_eta(SPEC, x))
    assert res.alive_history.shape == (4, res.steps.size, SPEC.depth - 1)
    assert np.all((res.alive_history >= 0) & (res.alive_history <= 1))


def test_alive_history_matches_the_members_trained_to_each_step(small):
    """The recorded alive fraction at step T equals alive_fraction of members trained for exactly T steps."""
    from ntkuq.finite import alive_fraction

    x, y, xs, ys = small
    res = train_ensemble(SPEC, x, y, xs, ys, n_members=2, steps=0, n_record=2, progress=False)
    for m in range(2):
        p = init_mlp(SPEC, x.shape[1], y.shape[1], jax.random.fold_in(jax.random.PRNGKey(0), m))
        want = np.asarray(alive_fraction(SPEC, p, np.asarray(x, np.float32)))
        np.testing.assert_allclose(res.alive_history[m, 0], want)



def test_tolerance_stops_early(small):
    x, y, xs, ys = small
    full = train_ensemble(SPEC, x, y, xs, ys, n_members=4, steps=200, n_record=12, progress=False)
    tol = float(np.max(full.train_history[:, 6])) * 1.0001
    res = train_ensemble(SPEC, x, y, xs, ys, n_members=4, steps=200, n_record=12, tol=tol, chunk=2, progress=False)
    assert np.all(res.stopped_at < 200) and np.all(res.stopped_at <= full.steps[6])
    for m in range(4):  # identical up to the stop, then frozen
        j = int(np.searchsorted(res.steps, res.stopped_at[m]))
        np.testing.assert_allclose(res.train_history[m, :j + 1], full.train_history[m, :j + 1], rtol=1e-6)
        assert np.all(res.train_history[m, j:] == res.train_losses[m]) and res.train_losses[m] < tol
        assert np.all(res.test_history[m, j:] == res.test_losses[m])


def test_sgd_full_batch_equals_gd_and_adam_trains(small):
    x, y, xs, ys = small
    kw = dict(n_members=3, steps=40, n_record=5, keep_outputs=True, progress=False)
    gd = train_ensemble(SPEC, x, y, xs, ys, **kw)
    full = train_ensemble(SPEC, x, y, xs, ys, optimizer="sgd", batch_size=x.shape[0], **kw)
    np.testing.assert_allclose(full.outputs, gd.outputs, rtol=1e-4, atol=1e-5)  # same loss normalization
    mini = train_ensemble(SPEC, x, y, xs, ys, optimizer="sgd", batch_size=8, **kw)
    again = train_ensemble(SPEC, x, y, xs, ys, optimizer="sgd", batch_size=8, **kw)
    np.testing.assert_array_equal(mini.outputs, again.outputs)
    assert np.all(mini.train_losses < 0.5 * mini.train_history[:, 0])
    assert np.max(np.abs(mini.outputs - gd.outputs)) > 1e-4
    adam = train_ensemble(SPEC, x, y, xs, ys, optimizer="adam", eta=1e-2, **kw)
    assert np.all(adam.train_losses < 0.5 * adam.train_history[:, 0])


def test_float64_on_request(small):
    x, y, xs, ys = small
    a = train_ensemble(SPEC, x, y, xs, ys, n_members=2, steps=20, dtype=jnp.float64, keep_outputs=True, progress=False)
    params = init_members(SPEC, N_IN, K, [1], dtype=jnp.float64)
    assert params[0][0].dtype == jnp.float64 and init_members(SPEC, N_IN, K, [1])[0][0].dtype == jnp.float32
    alone = init_mlp(SPEC, N_IN, K, jax.random.fold_in(jax.random.PRNGKey(0), 1), jnp.float64)
    np.testing.assert_allclose(params[0][0][0], alone[0][0], rtol=1e-14)  # jit vs eager: 1 ulp
    assert np.all(a.train_losses < a.train_history[:, 0])


# ---------------------------------------------------------------------------------------------
# Learning rate and statistics
# ---------------------------------------------------------------------------------------------

def test_default_eta_is_half_the_stable_maximum(small, monkeypatch):
    x = small[0]
    eta_max = max_stable_eta(kernels(SPEC.with_width(None), x).ntk)
    assert stable_eta_max(SPEC, x) == pytest.approx(eta_max, rel=1e-12)
    assert default_eta(SPEC, x) == pytest.approx(0.5 * eta_max, rel=1e-12)
    assert default_eta(SPEC, x, fraction=0.9) == pytest.approx(0.9 * eta_max, rel=1e-12)
    monkeypatch.setattr(training, "EXACT_EIGEN_MAX", 16)  # N_D = 32 now takes the Lanczos path
    assert stable_eta_max(SPEC, x) == pytest.approx(eta_max, rel=1e-10)


def test_unstable_eta_rejected_unless_allowed(small):
    x, y, xs, ys = small
    eta = 1.05 * stable_eta_max(SPEC, x)
    with pytest.raises(ValueError, match="^eta:.*stable maximum"):
        train_ensemble(SPEC, x, y, xs, ys, n_members=2, steps=5, eta=eta, progress=False)
    res = train_ensemble(SPEC, x, y, xs, ys, n_members=2, steps=5, eta=eta, allow_unstable=True, progress=False)
    assert res.eta == eta


def test_bootstrap_stats():
    losses = np.random.default_rng(0).gamma(4.0, 0.25, size=400)
    st = bootstrap_stats(losses, n_boot=2000, seed=1)
    assert st.mu == pytest.approx(losses.mean()) and st.sigma == pytest.approx(losses.std(ddof=1))
    assert st.eps == pytest.approx(st.sigma / st.mu) and st.n_members == 400
    assert st.mu_err == pytest.approx(st.sigma / math.sqrt(400), rel=0.15)
    # Gamma(4): sd of the sample sd ~ sigma sqrt((kurtosis - 1) / (4 M)), excess kurtosis 6 / 4.
    assert st.sigma_err == pytest.approx(st.sigma * math.sqrt((3 + 1.5 - 1) / 1600), rel=0.3)
    assert 0 < st.eps_err < st.eps
    assert bootstrap_stats(losses, n_boot=2000, seed=1) == st
    assert bootstrap_stats(losses, n_boot=2000, seed=2).mu_err != st.mu_err
    res = EnsembleResult(losses, losses, np.array([0]), losses[:, None], losses[:, None], np.zeros(400, int), 0.1)
    assert res.stats(n_boot=2000, seed=1) == st


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

def _bad_calls(x, y, xs, ys):
    """(parameter name, zero-argument call) pairs that must raise ValueError naming the parameter."""
    nan, y_nan = x.copy(), y.copy()
    nan[3, 2] = y_nan[5, 1] = np.nan

    def call(**over):
        kw = dict(spec=SPEC, x_train=x, y_train=y, x_test=xs, y_test=ys, n_members=2, steps=5, progress=False)
        kw.update(over)
        return lambda: train_ensemble(kw.pop("spec"), kw.pop("x_train"), kw.pop("y_train"), kw.pop("x_test"),
                                      kw.pop("y_test"), **kw)

    return [
        ("width", call(spec=SPEC.with_width(None))),
        ("width", lambda: MLPSpec.critical("relu", depth=2, width=0)),
        ("eta", call(eta=0.0)),
        ("eta", call(eta=-0.1)),
        ("eta", call(eta=float("nan"))),
        ("eta", call(optimizer="adam")),
        ("y_train", call(y_train=y[:-1])),
        ("x_test", call(x_test=xs[:, :-1])),
        ("y_test", call(y_test=ys[:-1])),
        ("y_test", call(y_test=ys[:, :1])),
        ("x_train", call(x_train=nan)),
        ("y_train", call(y_train=y_nan)),
        ("x_test", call(x_test=np.full_like(xs, np.inf))),
        ("y_test", call(y_test=np.full_like(ys, np.nan))),
        ("x_train", call(x_train=x[:, 0])),
        ("n_members", call(n_members=0)),
        ("steps", call(steps=-1)),
        ("optimizer", call(optimizer="rmsprop")),
        ("batch_size", call(optimizer="sgd")),
        ("batch_size", call(optimizer="sgd", batch_size=x.shape[0] + 1)),
        ("batch_size", call(batch_size=4)),
        ("tol", call(tol=0.0)),
        ("chunk", call(chunk=0)),
        ("n_record", call(n_record=1)),
        ("dtype", call(dtype=jnp.int32)),
        ("fraction", lambda: default_eta(SPEC, x, fraction=1.0)),
        ("fraction", lambda: default_eta(SPEC, x, fraction=0.0)),
        ("losses", lambda: bootstrap_stats([0.3])),
        ("losses", lambda: bootstrap_stats([0.3, np.nan, 0.2])),
        ("n_boot", lambda: bootstrap_stats([0.3, 0.2], n_boot=1)),
    ]


def test_bad_input_raises_value_error_naming_the_parameter(small):
    for name, bad in _bad_calls(*small):
        with pytest.raises(ValueError, match=f"^{name}:"):
            bad()


def test_statistics_need_two_members(small):
    x, y, xs, ys = small
    res = train_ensemble(SPEC, x, y, xs, ys, n_members=1, steps=3, progress=False)
    assert res.n_members == 1 and np.isfinite(res.test_losses[0])
    with pytest.raises(ValueError, match="^losses:.*M >= 2"):
        res.stats()
