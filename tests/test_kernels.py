"""Kernels: closed forms against quadrature and Monte Carlo, and wide finite networks against the limit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.finite import apply_mlp, empirical_ntk, init_mlp
from ntkuq.infinite import kernel_diag, kernels, moments
from ntkuq.infinite.quadrature import _quadrature_moments
from ntkuq.spec import POINTWISE

RNG = np.random.default_rng(0)
KAA = jnp.array([1.0, 0.7, 1.2, 2.5, 0.3])
KBB = jnp.array([0.5, 2.0, 0.9, 2.5, 1.1])
COS = jnp.array([0.3, -0.5, 0.99, 1.0, -0.95])
KAB = COS * jnp.sqrt(KAA * KBB)


def test_erf_closed_form_matches_quadrature():
    # erf(u) grows like exp(|Im u|^2) off the real axis, so Gauss-Hermite converges more slowly as the
    # variance grows (and erf'(u)^2 narrows): 1e-10 at unit variance, about 1e-5 at K = 2.5.
    quad = _quadrature_moments(*POINTWISE["erf"], 64, KAB, KAA, KBB)
    closed = moments("erf")(KAB, KAA, KBB)
    np.testing.assert_allclose(closed[0], quad[0], rtol=1e-4)
    np.testing.assert_allclose(closed[1], quad[1], rtol=1e-4)
    np.testing.assert_allclose(closed[0][:3], quad[0][:3], rtol=1e-9)
    np.testing.assert_allclose(closed[1][:3], quad[1][:3], rtol=1e-9)


def test_relu_closed_form_matches_quadrature():
    # The ReLU kink makes Gauss-Hermite converge slowly: a loose tolerance, but far below any coefficient error.
    quad = _quadrature_moments(*POINTWISE["relu"], 150, KAB, KAA, KBB)
    closed = moments("relu")(KAB, KAA, KBB)
    np.testing.assert_allclose(closed[0], quad[0], rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(closed[1], quad[1], rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "gelu"])
def test_moments_match_monte_carlo(activation):
    n = 400_000
    z = RNG.standard_normal((2, n))
    fn, dfn = POINTWISE[activation]
    for kab, kaa, kbb in zip(KAB[:3], KAA[:3], KBB[:3]):
        c = kab / np.sqrt(kaa * kbb)
        u = np.sqrt(kaa) * z[0]
        v = np.sqrt(kbb) * (c * z[0] + np.sqrt(1 - c**2) * z[1])
        ss, dd = moments(activation)(kab, kaa, kbb)
        for est, samples in ((ss, fn(u) * fn(v)), (dd, dfn(u) * dfn(v))):
            samples = np.asarray(samples)
            assert abs(float(est) - samples.mean()) < 5 * samples.std() / np.sqrt(n)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "gelu"])
def test_kernel_shapes_symmetry_and_diagonal(activation):
    spec = MLPSpec(depth=3, activation=activation, C_b=0.1, C_W=1.5, lambda_b=2.0, lambda_W=0.5)
    x = RNG.normal(size=(9, 4))
    k = kernels(spec, x, block_size=4)
    d = kernel_diag(spec, x)
    assert k.nngp.shape == k.ntk.shape == (9, 9)
    np.testing.assert_allclose(np.diag(k.nngp), d.nngp, rtol=1e-12)
    np.testing.assert_allclose(np.diag(k.ntk), d.ntk, rtol=1e-12)
    np.testing.assert_allclose(k.ntk, k.ntk.T, rtol=1e-12)
    np.testing.assert_allclose(k.nngp, k.nngp.T, rtol=1e-12)
    assert np.linalg.eigvalsh(np.asarray(k.ntk))[0] > 0
    blocked = kernels(spec, x[:5], x[2:], block_size=2)
    np.testing.assert_allclose(blocked.ntk, k.ntk[:5, 2:], rtol=1e-12)


def test_depth_one_is_linear_kernel():
    spec = MLPSpec(depth=1, C_b=0.3, C_W=1.7, lambda_b=2.0, lambda_W=0.4)
    x = RNG.normal(size=(4, 6))
    k = kernels(spec, x)
    np.testing.assert_allclose(k.nngp, 0.3 + 1.7 * x @ x.T / 6, rtol=1e-13)
    np.testing.assert_allclose(k.ntk, 2.0 + 0.4 * x @ x.T / 6, rtol=1e-13)


def _feature_nngp(spec, params, x):
    """C_b + C_W/n sigma(z^(L-1)) . sigma(z^(L-1)): one network's last-layer kernel.

    Its output covariance over W^(L), b^(L).
    """
    hidden = apply_mlp(spec.__class__(**{**spec.__dict__, "depth": spec.depth - 1}), params[:-1], x)
    h = POINTWISE[spec.activation][0](hidden)
    return spec.C_b + spec.C_W * h @ h.T / h.shape[1]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_wide_networks_converge_to_kernels(activation):
    """Per-network empirical NNGP and NTK approach the analytic ones; mean-squared error ~ 1/width.

    lambda_b / lambda_W differ from C_b / C_W here, which neural-tangents cannot express."""
    spec = MLPSpec(depth=3, activation=activation, C_b=0.2, C_W=1.6, lambda_b=3.0, lambda_W=0.7)
    x = jnp.asarray(RNG.normal(size=(5, 3)))
    ref = kernels(spec, x)
    widths, members = [32, 128, 512], 24
    errs = {"nngp": [], "ntk": []}
    for n in widths:
        s = spec.with_width(n)
        e_k, e_t = [], []
        for key in jax.random.split(jax.random.PRNGKey(n), members):
            params = init_mlp(s, x.shape[1], 1, key, jnp.float64)
            e_k.append(jnp.mean((_feature_nngp(s, params, x) - ref.nngp) ** 2))
            e_t.append(jnp.mean((empirical_ntk(s, params, x, x) - ref.ntk) ** 2))
        errs["nngp"].append(float(np.mean(e_k)))
        errs["ntk"].append(float(np.mean(e_t)))
    for name, e in errs.items():
        slope = np.polyfit(np.log(widths), np.log(e), 1)[0]
        print(f"{activation} {name}: mean-squared error {e}, log-log slope {slope:.2f}")
        assert -1.4 < slope < -0.6, (name, slope)
        assert e[-1] / np.mean(np.asarray(getattr(ref, name)) ** 2) < 0.05


def test_inputs_whose_squared_norms_overflow_are_refused_naming_the_row():
    from ntkuq.infinite import check_finite_kernels
    x = np.ones((5, 3))
    x[3, 1] = 1e200  # finite, but |x|^2 overflows float64
    with pytest.raises(ValueError, match=r"x_train: .*row 3 with entries up to 1e\+200.*rescale"):
        check_finite_kernels(MLPSpec.critical("relu", depth=2), x, "x_train", 0)
