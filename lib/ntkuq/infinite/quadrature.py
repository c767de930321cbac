"""The Gaussian moments of each activation that the kernel recursion needs: closed forms and quadrature.

For (u, v) ~ N(0, [[K_aa, K_ab], [K_ab, K_bb]]) the recursion of `ntkuq.infinite.kernels` needs
<s(u) s(v)> and <s'(u) s'(v)>.  ReLU (arc-cosine kernel) and erf have closed forms; tanh and GELU use a
2-D trapezoidal rule whose step shrinks with the largest pre-activation variance (`quad_nodes`), accurate
to about 1e-11 relative to sqrt(<s(u)^2><s(v)^2>) for variances up to 30 (tests/test_quadrature.py checks
it against scipy's adaptive quadrature).

Why the trapezoidal rule: for a function analytic in the strip |Im z| < d, the trapezoidal rule with
step h on the Gaussian-weighted real line converges like exp(-2 pi d / h), faster than Gauss-Hermite
with the same number of nodes, and its weights h phi(z_j) cannot overflow (Gauss-Hermite weights
overflow above about 380 nodes).  tanh(sigma z) has poles at z = +-i pi / (2 sigma), so h must shrink
like 1 / sigma; GELU is entire but grows like exp(sigma^2 y^2 / 2) off the real axis, which has the
same effect.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntkuq.spec import POINTWISE

Array = jax.Array


QUAD_HALF_WIDTH = 8.5
"""The trapezoidal rule covers z in [-8.5, 8.5]: the Gaussian mass outside is 2e-17."""


QUAD_STEP = {"tanh": 0.27, "gelu": 0.5}
"""Step h = QUAD_STEP / sigma_max (at most 0.3): calibrated on tanh and GELU against adaptive quadrature,
error <= 1e-11 relative for variances 0.01 to 30 (tests/test_quadrature.py)."""


QUAD_MAX_NODES = 4001


def _acos_factor() -> np.ndarray:
    """Chebyshev coefficients (on a in [0, 1]) of h(a) = arccos(a) / sqrt(1 - a), smooth there (h(1) = sqrt 2).

    Its only singularity is at a = -1, so degree 24 reaches rounding level; fitted here at import from
    numpy's arccos (an interpolant of our own, not a copied approximation).
    """
    def h(a):
        a = np.asarray(a, dtype=np.float64)
        return np.where(a < 1, np.arccos(np.minimum(a, 1.0)) / np.sqrt(np.maximum(1.0 - a, 1e-300)), math.sqrt(2.0))
    return np.polynomial.chebyshev.Chebyshev.interpolate(h, 24, domain=[0.0, 1.0]).coef


_ACOS_COEF = _acos_factor()


def _acos01(a: Array) -> Array:
    """arccos(a) for a in [0, 1] as sqrt(1 - a) h(a), h by Clenshaw's recurrence.

    It vectorizes, unlike arccos (about 3x faster in XLA on CPU); relative error below 1e-14.
    """
    t = 2.0 * a - 1.0
    b1 = jnp.zeros_like(a)
    b2 = jnp.zeros_like(a)
    for ck in _ACOS_COEF[:0:-1]:
        b1, b2 = 2.0 * t * b1 - b2 + ck, b1
    return jnp.sqrt(1.0 - a) * (t * b1 - b2 + _ACOS_COEF[0])


def _relu_moments(kab: Array, kaa: Array, kbb: Array) -> Tuple[Array, Array]:
    """Arc-cosine closed forms: <relu relu> and <step step>.

    With c the correlation and th = arccos(c): sin(th) = sqrt((1 - c)(1 + c)), and pi - th = arccos(-c).
    """
    norm = jnp.sqrt(kaa * kbb)
    safe = jnp.where(norm > 0, norm, 1.0)
    c = jnp.clip(jnp.where(norm > 0, kab / safe, 0.0), -1.0, 1.0)
    # arccos has a square-root singularity at c = 1: round-off of 1e-16 in c would become 1e-8 in
    # theta on the diagonal, so cosines within 1e-14 of 1 (identical inputs) are snapped to 1.
    c = jnp.where(c > 1.0 - 1e-14, 1.0, c)
    a = jnp.abs(c)
    acos_a = _acos01(a)
    pi_minus_th = jnp.where(c >= 0, jnp.pi - acos_a, acos_a)
    sin_th = jnp.sqrt((1.0 - a) * (1.0 + a))
    ss = norm * (sin_th + pi_minus_th * c) / (2 * jnp.pi)
    dd = pi_minus_th / (2 * jnp.pi)
    return ss, dd


def _erf_moments(kab: Array, kaa: Array, kbb: Array) -> Tuple[Array, Array]:
    """Williams' closed forms: <erf erf> = 2/pi asin(2K_ab/sqrt((1+2K_aa)(1+2K_bb))) and <erf' erf'>."""
    prod = (1 + 2 * kaa) * (1 + 2 * kbb)
    ss = (2 / jnp.pi) * jnp.arcsin(jnp.clip(2 * kab / jnp.sqrt(prod), -1.0, 1.0))
    dd = (4 / jnp.pi) / jnp.sqrt(prod - 4 * kab**2)
    return ss, dd


def quad_nodes(activation: str, max_variance: float) -> int:
    """Trapezoidal nodes per dimension for an activation at pre-activation variances up to `max_variance`.

    Odd (z = 0 is a node) and rounded up to 16 k + 1 so that few distinct counts get compiled.

    Args:
        activation: the activation's name; only tanh and GELU (the keys of QUAD_STEP) use quadrature.
        max_variance: the largest pre-activation variance the rule has to integrate.

    Returns:
        The number of nodes per dimension (16 k + 1, at most QUAD_MAX_NODES); 0 for an activation not in
        QUAD_STEP (closed forms).

    Raises:
        ValueError: the variance would need more than QUAD_MAX_NODES nodes.
    """
    if activation not in QUAD_STEP:
        return 0
    sigma = math.sqrt(max(float(max_variance), 1e-12))
    h = min(0.3, QUAD_STEP[activation] / sigma)
    n = 2 * math.ceil(QUAD_HALF_WIDTH / h) + 1
    n = 16 * math.ceil((n - 1) / 16) + 1
    if n > QUAD_MAX_NODES:
        raise ValueError(f"max_variance: pre-activation variance {max_variance:.3g} needs {n} quadrature nodes per "
                         f"dimension for {activation} (more than {QUAD_MAX_NODES}); "
                         "expected smaller inputs or C_W, C_b")
    return n


def _trapezoid(n_quad: int) -> Tuple[np.ndarray, np.ndarray]:
    """Nodes and weights h phi(z_j) of the trapezoidal rule on [-QUAD_HALF_WIDTH, QUAD_HALF_WIDTH]."""
    z = np.linspace(-QUAD_HALF_WIDTH, QUAD_HALF_WIDTH, n_quad)
    return z, (z[1] - z[0]) * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


def _quadrature_moments(fn: Callable, dfn: Callable, n_quad: int,
                        kab: Array, kaa: Array, kbb: Array) -> Tuple[Array, Array]:
    """<s s> and <s' s'> by the 2-D trapezoidal rule, u = sa (p z1 + q z2), v = sb (p z1 - q z2).

    p = sqrt((1 + c) / 2), q = sqrt((1 - c) / 2) reproduce the correlation c; swapping a and b maps
    z2 -> -z2, which the symmetric nodes respect, so the kernel comes out exactly symmetric.
    """
    z, w = (jnp.asarray(a) for a in _trapezoid(n_quad))
    sa, sb = jnp.sqrt(kaa), jnp.sqrt(kbb)
    c = jnp.clip(kab / jnp.where(sa * sb > 0, sa * sb, 1.0), -1.0, 1.0)
    p, q = jnp.sqrt((1 + c) / 2)[..., None], jnp.sqrt((1 - c) / 2)[..., None]
    sa, sb = sa[..., None], sb[..., None]

    def body(carry, zw):
        zi, wi = zw
        u = sa * (p * zi + q * z)
        v = sb * (p * zi - q * z)
        ss = carry[0] + wi * jnp.sum(w * fn(u) * fn(v), axis=-1)
        dd = carry[1] + wi * jnp.sum(w * dfn(u) * dfn(v), axis=-1)
        return (ss, dd), None

    zero = jnp.zeros(jnp.broadcast_shapes(kab.shape, kaa.shape, kbb.shape), kab.dtype)
    (ss, dd), _ = lax.scan(body, (zero, zero), (z, w))
    return ss, dd


def _quadrature_diag(fn: Callable, dfn: Callable, n_quad: int, k: Array) -> Tuple[Array, Array]:
    """<s(u)^2> and <s'(u)^2> for u ~ N(0, k): the 2-D rule at c = 1 reduces exactly to this 1-D one."""
    z, w = (jnp.asarray(a) for a in _trapezoid(n_quad))
    u = jnp.sqrt(k)[..., None] * z
    return jnp.sum(w * fn(u) ** 2, axis=-1), jnp.sum(w * dfn(u) ** 2, axis=-1)


def moments(activation: str, n_quad: Optional[int] = None) -> Callable[[Array, Array, Array], Tuple[Array, Array]]:
    """The function (K_ab, K_aa, K_bb) -> (<s(u)s(v)>, <s'(u)s'(v)>) for an activation.

    Args:
        activation: one of the activations of `ntkuq.spec.POINTWISE` (relu and erf have closed forms).
        n_quad: trapezoidal nodes per dimension for tanh/GELU; None gives `quad_nodes(activation, 30)`, enough
            for variances up to 30 (kernels() instead chooses them from its inputs).

    Returns:
        A function of the arrays (K_ab, K_aa, K_bb), elementwise (broadcasting), returning the pair of Gaussian
        expectations.

    Raises:
        ValueError: an unknown activation.
    """
    if activation == "relu":
        return _relu_moments
    if activation == "erf":
        return _erf_moments
    if activation in POINTWISE:
        return partial(_quadrature_moments, *POINTWISE[activation], n_quad or quad_nodes(activation, 30.0))
    raise ValueError(f"activation: expected one of {tuple(POINTWISE)}, got {activation!r}")


def _diag_moments(activation: str, n_quad: int, k: Array) -> Tuple[Array, Array]:
    if activation in QUAD_STEP:
        return _quadrature_diag(*POINTWISE[activation], n_quad, k)
    return moments(activation)(k, k, k)


__all__ = ["QUAD_HALF_WIDTH", "QUAD_MAX_NODES", "QUAD_STEP", "moments", "quad_nodes"]
