"""NNGP and NTK kernels of deep MLPs at infinite width: float64, jit-compiled, computed in row blocks.

Recursion (science.md, Roberts-Yaida-Hanin notation), with <.>_K the Gaussian expectation over
(u, v) ~ N(0, [[K_aa, K_ab], [K_ab, K_bb]]) of the previous layer's kernel:

    K^(1)_ab     = C_b + C_W x_a.x_b / n_0
    Theta^(1)_ab = lambda_b + lambda_W x_a.x_b / n_0
    K^(l+1)_ab     = C_b + C_W <s(u) s(v)>
    Theta^(l+1)_ab = lambda_b + lambda_W <s(u) s(v)> + C_W <s'(u) s'(v)> Theta^(l)_ab

ReLU (arc-cosine kernel) and erf have closed forms; tanh and GELU use 2-D Gauss-Hermite quadrature.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import erf

from ._checks import check_inputs
from .spec import MLPSpec

Array = jax.Array
N_QUAD = 64
"""Gauss-Hermite nodes per dimension for activations without a closed form.  For tanh, whose poles at
+-i pi/2 limit the convergence, the error grows with the variance: about 1e-9 at K_aa ~ 1, 1e-5 at 10."""


@dataclass(frozen=True)
class Kernels:
    """The NNGP kernel K and the NTK Theta evaluated on the same pairs of inputs."""

    nngp: Array
    ntk: Array


# ---------------------------------------------------------------------------------------------
# Gaussian expectations <s(u)s(v)> and <s'(u)s'(v)> for one activation, elementwise on arrays.
# ---------------------------------------------------------------------------------------------

def _relu_moments(kab: Array, kaa: Array, kbb: Array) -> Tuple[Array, Array]:
    """Arc-cosine closed forms: <relu relu> and <step step>."""
    norm = jnp.sqrt(kaa * kbb)
    safe = jnp.where(norm > 0, norm, 1.0)
    c = jnp.clip(jnp.where(norm > 0, kab / safe, 0.0), -1.0, 1.0)
    # arccos has a square-root singularity at c = 1: round-off of 1e-16 in c would become 1e-8 in
    # theta on the diagonal, so cosines within 1e-14 of 1 (identical inputs) are snapped to 1.
    c = jnp.where(c > 1.0 - 1e-14, 1.0, c)
    th = jnp.arccos(c)
    ss = norm * (jnp.sin(th) + (jnp.pi - th) * c) / (2 * jnp.pi)
    dd = (jnp.pi - th) / (2 * jnp.pi)
    return ss, dd


def _erf_moments(kab: Array, kaa: Array, kbb: Array) -> Tuple[Array, Array]:
    """Williams' closed forms: <erf erf> = 2/pi asin(2K_ab/sqrt((1+2K_aa)(1+2K_bb))) and <erf' erf'>."""
    prod = (1 + 2 * kaa) * (1 + 2 * kbb)
    ss = (2 / jnp.pi) * jnp.arcsin(jnp.clip(2 * kab / jnp.sqrt(prod), -1.0, 1.0))
    dd = (4 / jnp.pi) / jnp.sqrt(prod - 4 * kab**2)
    return ss, dd


def _gelu(x: Array) -> Array:
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _gelu_prime(x: Array) -> Array:
    return 0.5 * (1 + erf(x / math.sqrt(2))) + x * jnp.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


POINTWISE: dict = {
    "relu": (jax.nn.relu, lambda x: (x > 0).astype(x.dtype)),
    "erf": (erf, lambda x: 2 / math.sqrt(math.pi) * jnp.exp(-(x**2))),
    "tanh": (jnp.tanh, lambda x: 1 - jnp.tanh(x) ** 2),
    "gelu": (_gelu, _gelu_prime),
}
"""Each activation and its derivative, used by quadrature and by finite networks."""


def _quadrature_moments(fn: Callable, dfn: Callable, n_quad: int,
                        kab: Array, kaa: Array, kbb: Array) -> Tuple[Array, Array]:
    """<s s> and <s' s'> by 2-D Gauss-Hermite quadrature, u = sa (p z1 + q z2), v = sb (p z1 - q z2).

    p = sqrt((1 + c) / 2), q = sqrt((1 - c) / 2) reproduce the correlation c; swapping a and b maps
    z2 -> -z2, which the symmetric nodes respect, so the kernel comes out exactly symmetric."""
    z, w = np.polynomial.hermite_e.hermegauss(n_quad)
    z, w = jnp.asarray(z), jnp.asarray(w / math.sqrt(2 * math.pi))
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


def moments(activation: str, n_quad: int = N_QUAD) -> Callable[[Array, Array, Array], Tuple[Array, Array]]:
    """The function (K_ab, K_aa, K_bb) -> (<s(u)s(v)>, <s'(u)s'(v)>) for an activation."""
    if activation == "relu":
        return _relu_moments
    if activation == "erf":
        return _erf_moments
    if activation in POINTWISE:
        return partial(_quadrature_moments, *POINTWISE[activation], n_quad)
    raise ValueError(f"activation: expected one of {tuple(POINTWISE)}, got {activation!r}")


# ---------------------------------------------------------------------------------------------
# The layer recursion.
# ---------------------------------------------------------------------------------------------

def _diag_layers(spec: MLPSpec, sq_norm: Array, n0: int, n_quad: int) -> Array:
    """K^(l)_aa for l = 1..L-1 (shape (L-1, N)): the diagonals the off-diagonal recursion needs."""
    mom = moments(spec.activation, n_quad)
    k = spec.C_b + spec.C_W * sq_norm / n0
    out = []
    for _ in range(spec.depth - 1):
        out.append(k)
        ss, _ = mom(k, k, k)
        k = spec.C_b + spec.C_W * ss
    return jnp.stack(out) if out else jnp.zeros((0,) + sq_norm.shape, sq_norm.dtype)


def _recurse(spec: MLPSpec, gram: Array, d1: Array, d2: Array, n0: int, n_quad: int) -> Tuple[Array, Array]:
    """Run the K and Theta recursion on a block of Gram entries x_a.x_b given the layer diagonals."""
    mom = moments(spec.activation, n_quad)
    k = spec.C_b + spec.C_W * gram / n0
    th = spec.lambda_b + spec.lambda_W * gram / n0
    for l in range(spec.depth - 1):
        ss, dd = mom(k, d1[l][..., :, None], d2[l][..., None, :])
        th = spec.lambda_b + spec.lambda_W * ss + spec.C_W * dd * th
        k = spec.C_b + spec.C_W * ss
    return k, th


@partial(jax.jit, static_argnames=("spec", "block_size", "n_quad"))
def _kernels_blocked(spec: MLPSpec, x1: Array, x2: Array, block_size: int, n_quad: int) -> Tuple[Array, Array]:
    n1, n0 = x1.shape
    n_blocks = -(-n1 // block_size)
    pad = n_blocks * block_size - n1
    x1p = jnp.pad(x1, ((0, pad), (0, 0)))
    d1 = _diag_layers(spec, jnp.sum(x1p**2, axis=1), n0, n_quad)
    d2 = _diag_layers(spec, jnp.sum(x2**2, axis=1), n0, n_quad)
    xb = x1p.reshape(n_blocks, block_size, n0)
    db = d1.reshape(d1.shape[0], n_blocks, block_size).transpose(1, 0, 2)

    def one_block(args):
        xblk, dblk = args
        return _recurse(spec, xblk @ x2.T, dblk, d2, n0, n_quad)

    k, th = lax.map(one_block, (xb, db))
    return k.reshape(-1, x2.shape[0])[:n1], th.reshape(-1, x2.shape[0])[:n1]


@partial(jax.jit, static_argnames=("spec", "n_quad"))
def _kernel_diag(spec: MLPSpec, x: Array, n_quad: int) -> Tuple[Array, Array]:
    sq = jnp.sum(x**2, axis=1)
    n0 = x.shape[1]
    d = _diag_layers(spec, sq, n0, n_quad)
    mom = moments(spec.activation, n_quad)
    k = spec.C_b + spec.C_W * sq / n0
    th = spec.lambda_b + spec.lambda_W * sq / n0
    for l in range(spec.depth - 1):
        ss, dd = mom(k, d[l], d[l])
        th = spec.lambda_b + spec.lambda_W * ss + spec.C_W * dd * th
        k = spec.C_b + spec.C_W * ss
    return k, th


@partial(jax.jit, static_argnames=("spec", "n_quad"))
def _diag_layers_jit(spec: MLPSpec, x: Array, n_quad: int) -> Array:
    return _diag_layers(spec, jnp.sum(x**2, axis=1), x.shape[1], n_quad)


def diag_layers(spec: MLPSpec, x: Array, *, n_quad: int = N_QUAD) -> Array:
    """K^(l)(x_a, x_a) for l = 1..L-1, shape (L-1, N): what `kernel_tile` needs for the rows of x."""
    return _diag_layers_jit(spec, jnp.asarray(x, jnp.float64), n_quad)


@partial(jax.jit, static_argnames=("spec", "n_quad"))
def _tile(spec: MLPSpec, x1: Array, x2: Array, d1: Array, d2: Array, n_quad: int) -> Tuple[Array, Array]:
    return _recurse(spec, x1 @ x2.T, d1, d2, x1.shape[1], n_quad)


def kernel_tile(spec: MLPSpec, x1: Array, x2: Array, d1: Array, d2: Array, *,
                n_quad: int = N_QUAD) -> Tuple[Array, Array]:
    """(K, Theta) between the rows of x1 and x2, given their layer diagonals d1, d2 from `diag_layers`.

    The building block of blocked kernel computations that place tiles themselves (sweep.py); one
    compilation per tile shape, so callers should pad to a fixed tile size."""
    return _tile(spec, x1, x2, d1, d2, n_quad)


def kernels(spec: MLPSpec, x1, x2=None, *, block_size: int = 256, n_quad: int = N_QUAD) -> Kernels:
    """NNGP and NTK between the rows of x1 and x2 (x2 = x1 if omitted); memory: output + one row block."""
    x1 = check_inputs(x1, "x1")
    x2 = x1 if x2 is None else check_inputs(x2, "x2", n_features=x1.shape[1])
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size: expected a positive integer, got {block_size!r}")
    block_size = min(block_size, x1.shape[0])
    k, th = _kernels_blocked(spec, x1, x2, block_size, n_quad)
    return Kernels(k, th)


def kernel_diag(spec: MLPSpec, x, *, n_quad: int = N_QUAD) -> Kernels:
    """The diagonals K(x_a, x_a) and Theta(x_a, x_a), without forming any matrix."""
    x = check_inputs(x, "x")
    k, th = _kernel_diag(spec, x, n_quad)
    return Kernels(k, th)
