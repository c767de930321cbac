"""Quadrature kernels (tanh, GELU) against scipy's adaptive quadrature in another parametrization."""
import math

import numpy as np
import pytest
from scipy import integrate, special

from ntkuq import MLPSpec
from ntkuq.infinite import QUAD_MAX_NODES, auto_nodes, kernel_diag, kernels, max_variance, moments, quad_nodes

SQ2PI = math.sqrt(2 * math.pi)


def _phi(z):
    return np.exp(-0.5 * z * z) / SQ2PI


REF = {
    "tanh": (np.tanh, lambda x: 1.0 / np.cosh(x) ** 2),
    "gelu": (lambda x: 0.5 * x * (1 + special.erf(x / math.sqrt(2))),
             lambda x: 0.5 * (1 + special.erf(x / math.sqrt(2))) + x * _phi(x)),
}


def reference(activation, kaa, kbb, c, which):
    """E[f(u) f(v)] with u = sa z1, v = sb (c z1 + s z2): nested adaptive Gauss-Kronrod (QUADPACK)."""
    f = REF[activation][which]
    sa, sb, s = math.sqrt(kaa), math.sqrt(kbb), math.sqrt(max(1 - c * c, 0.0))
    opts = dict(epsabs=1e-16, epsrel=1e-14, limit=500)

    def inner(z1):
        if s == 0.0:
            return f(sb * c * z1)
        mid = -c * z1 / s  # where the inner activation's argument crosses zero
        pts = [mid] if abs(mid) < 12 else None
        return integrate.quad(lambda z2: _phi(z2) * f(sb * (c * z1 + s * z2)), -12, 12, points=pts, **opts)[0]

    return integrate.quad(lambda z1: _phi(z1) * f(sa * z1) * inner(z1), -12, 12, points=[0.0], **opts)[0]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("activation", ["tanh", "gelu"])
@pytest.mark.parametrize("var", [0.05, 1.0, 3.0, 10.0, 30.0])
def test_quadrature_moments_match_adaptive_integration(activation, var):
    """Relative to the Cauchy-Schwarz scale sqrt(<s(u)^2><s(v)^2>), error <= 1e-10 for variances up to 30."""
    kaa, kbb = var, 0.7 * var
    n = quad_nodes(activation, var)
    mom = moments(activation, n)
    for c in (-0.8, 0.0, 0.45, 0.995):
        ss, dd = (float(v) for v in mom(np.float64(c * math.sqrt(kaa * kbb)), np.float64(kaa), np.float64(kbb)))
        for which, got in ((0, ss), (1, dd)):
            ref = reference(activation, kaa, kbb, c, which)
            scale = math.sqrt(reference(activation, kaa, kaa, 1.0, which) * reference(activation, kbb, kbb, 1.0, which))
            assert abs(got - ref) <= 1e-10 * scale, (activation, var, c, which, got, ref, (got - ref) / scale)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_the_test_detects_too_few_nodes():
    """The same check fails with 64 nodes at variance 10 (tanh), the former default's node count."""
    var, c = 10.0, 0.45
    ss, _ = moments("tanh", 64)(np.float64(c * var), np.float64(var), np.float64(var))
    ref = reference("tanh", var, var, c, 0)
    scale = reference("tanh", var, var, 1.0, 0)
    assert abs(float(ss) - ref) > 1e-6 * scale


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_kernels_choose_nodes_from_the_inputs(activation):
    """Inputs of squared norm 20 n0 with C_W = 1.5: layer-1 variance 30.1. kernels() with automatic nodes
    agrees with an explicit, finer rule to 1e-11, and the diagonal with the 1-D rule."""
    spec = MLPSpec(depth=3, activation=activation, C_b=0.1, C_W=1.5, lambda_b=1.0, lambda_W=1.0)
    x = np.random.default_rng(3).standard_normal((6, 4))
    x *= math.sqrt(20.0 * 4) / np.linalg.norm(x, axis=1, keepdims=True)
    assert max_variance(spec, x) == pytest.approx(30.1)
    auto = kernels(spec, x)
    fine = kernels(spec, x, n_quad=auto_nodes(spec, x) + 160)
    for name in ("nngp", "ntk"):
        a, b = np.asarray(getattr(auto, name)), np.asarray(getattr(fine, name))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11 * np.max(np.abs(b)))
        np.testing.assert_allclose(np.diag(a), np.asarray(getattr(kernel_diag(spec, x), name)), rtol=1e-12)
        assert np.all(np.isfinite(a))


def test_huge_variance_is_refused_not_nan():
    with pytest.raises(ValueError, match="^max_variance"):
        quad_nodes("tanh", 1e6)
    assert quad_nodes("tanh", 30.0) <= QUAD_MAX_NODES
    assert quad_nodes("relu", 1e6) == 0
