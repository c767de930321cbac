"""ntkuq.finite: the finite MLP's initialization, forward pass, learning-rate groups and empirical kernels."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.finite import (
    alive_fraction,
    apply_mlp,
    empirical_nngp,
    empirical_ntk,
    init_mlp,
    layer_sizes,
    learning_rate_scales,
)
from ntkuq.infinite import kernels

SPEC = MLPSpec(depth=3, activation="relu", C_b=0.3, C_W=1.7, lambda_b=4.0, lambda_W=0.5, width=400)
X = np.random.default_rng(0).normal(size=(5, 20))


def test_layer_sizes():
    assert layer_sizes(SPEC, 20, 2) == (20, 400, 400, 2)
    assert layer_sizes(MLPSpec(depth=1, width=7), 3, 1) == (3, 1)
    with pytest.raises(ValueError, match="width"):
        layer_sizes(MLPSpec(), 3, 1)


def test_init_statistics_follow_C_b_and_C_W():
    """W ~ N(0, C_W / fan_in) and b ~ N(0, C_b) in every layer (pooled over 4 draws)."""
    draws = [init_mlp(SPEC, 200, 3, jax.random.PRNGKey(k), jnp.float64) for k in range(4)]
    assert [w.shape for w, _ in draws[0]] == [(200, 400), (400, 400), (400, 3)]
    for layer, fan_in in enumerate((200, 400, 400)):
        w = np.concatenate([np.ravel(d[layer][0]) for d in draws])
        b = np.concatenate([np.ravel(d[layer][1]) for d in draws])
        assert abs(w.mean()) < 5 * np.sqrt(SPEC.C_W / fan_in / w.size)
        assert w.var() * fan_in == pytest.approx(SPEC.C_W, rel=0.03)
        if layer < 2:  # 1600 biases per hidden layer (4 sigma: 14 %); the 12 output biases are too few
            assert b.var() == pytest.approx(SPEC.C_b, rel=0.14)
    assert draws[0][0][0].dtype == jnp.float64
    assert init_mlp(SPEC, 200, 3, jax.random.PRNGKey(0))[0][0].dtype == jnp.float32
    zero_bias = init_mlp(MLPSpec(depth=2, C_b=0.0, width=8), 4, 1, jax.random.PRNGKey(1))
    assert all(float(jnp.abs(b).max()) == 0.0 for _, b in zero_bias)


def test_forward_pass_is_the_recursion():
    params = init_mlp(SPEC.with_width(6), 20, 2, jax.random.PRNGKey(3), jnp.float64)
    z = np.asarray(X) @ np.asarray(params[0][0]) + np.asarray(params[0][1])
    for w, b in params[1:]:
        z = np.maximum(z, 0.0) @ np.asarray(w) + np.asarray(b)
    np.testing.assert_allclose(apply_mlp(SPEC.with_width(6), params, X), z, rtol=1e-12)


def test_alive_fraction_counts_units_positive_on_some_input():
    """Counted directly with numpy: a ReLU unit is alive if its preactivation is > 0 on at least one input."""
    spec = SPEC.with_width(12)
    params = init_mlp(spec, 20, 2, jax.random.PRNGKey(5), jnp.float64)
    # kill units 0..3 of layer 1 (bias -100) and units 0..6 of layer 2
    (w1, b1), (w2, b2), last = params
    params = ((w1, b1.at[:4].set(-100.0)), (w2, b2.at[:7].set(-100.0)), last)
    got = np.asarray(alive_fraction(spec, params, X))
    z1 = np.asarray(X) @ np.asarray(params[0][0]) + np.asarray(params[0][1])
    z2 = np.maximum(z1, 0) @ np.asarray(params[1][0]) + np.asarray(params[1][1])
    want = [np.mean((z1 > 0).any(axis=0)), np.mean((z2 > 0).any(axis=0))]
    np.testing.assert_allclose(got, want)
    assert got[0] <= 8 / 12 and got[1] <= 5 / 12
    smooth = MLPSpec(depth=3, activation="tanh", width=12)
    p_smooth = init_mlp(smooth, 20, 2, jax.random.PRNGKey(5), jnp.float64)
    np.testing.assert_array_equal(np.asarray(alive_fraction(smooth, p_smooth, X)), [1.0, 1.0])


def test_learning_rate_scales():
    params = init_mlp(SPEC, 20, 2, jax.random.PRNGKey(0))
    scales = learning_rate_scales(SPEC, params)
    got = [float(s) for pair in scales for s in pair]
    assert got == pytest.approx([0.5 / 20, 4.0, 0.5 / 400, 4.0, 0.5 / 400, 4.0], rel=1e-6)
    assert scales[0][0].dtype == params[0][0].dtype


def test_empirical_kernels_of_a_linear_model_are_exact():
    """Depth 1 (z = b + x W): Theta = lambda_b + lambda_W x.x'/n_0 for any draw; K = C_b + C_W x.x'/n_0 on average."""
    spec = MLPSpec(depth=1, C_b=0.3, C_W=1.7, lambda_b=4.0, lambda_W=0.5, width=1)
    x = jnp.asarray(X)
    gram = X @ X.T / X.shape[1]
    params = init_mlp(spec, 20, 1, jax.random.PRNGKey(0), jnp.float64)
    np.testing.assert_allclose(empirical_ntk(spec, params, x, x), 4.0 + 0.5 * gram, rtol=1e-12)
    keys = jax.random.split(jax.random.PRNGKey(1), 8192)
    k = empirical_nngp(spec, keys, x, x, n_out=2)
    np.testing.assert_allclose(k, 0.3 + 1.7 * gram, atol=0.06 * float(np.max(0.3 + 1.7 * gram)))


def test_empirical_ntk_approaches_the_analytic_kernel_at_large_width():
    """One hidden layer of 16384 units: two draws' empirical NTK within 5 % of the analytic Theta
    (observed ~1-2 %; a wrong rate group or missing 1/n_0 is off by far more)."""
    spec = MLPSpec(depth=2, activation="relu", C_b=0.1, C_W=2.0, lambda_b=1.0, lambda_W=1.0, width=16384)
    x = jnp.asarray(X)
    exact = np.asarray(kernels(spec.with_width(None), x).ntk)
    got = np.mean([np.asarray(empirical_ntk(spec, init_mlp(spec, 20, 1, jax.random.PRNGKey(k), jnp.float64), x, x))
                   for k in range(2)], axis=0)
    np.testing.assert_allclose(got, exact, rtol=0.05)
