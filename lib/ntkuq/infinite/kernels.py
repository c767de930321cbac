"""NNGP and NTK kernels of deep MLPs at infinite width: float64, jit-compiled, computed in row blocks.

Recursion (the book chapter "Infinite-width kernels", Roberts-Yaida-Hanin notation), with <.>_K the Gaussian
expectation over (u, v) ~ N(0, [[K_aa, K_ab], [K_ab, K_bb]]) of the previous layer's kernel:

    K^(1)_ab     = C_b + C_W x_a.x_b / n_0
    Theta^(1)_ab = lambda_b + lambda_W x_a.x_b / n_0
    K^(l+1)_ab     = C_b + C_W <s(u) s(v)>
    Theta^(l+1)_ab = lambda_b + lambda_W <s(u) s(v)> + C_W <s'(u) s'(v)> Theta^(l)_ab

The activations' Gaussian moments, closed forms (ReLU, erf) or quadrature (tanh, GELU), are in
`ntkuq.infinite.quadrature`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ntkuq._src.budget import OVERHEAD_BYTES, WORD, largest, memory_limit_bytes, require
from ntkuq._src.checks import check_inputs, check_instance, check_int
from ntkuq.infinite.quadrature import QUAD_MAX_NODES, QUAD_STEP, _diag_moments, _trapezoid, moments, quad_nodes
from ntkuq.spec import POINTWISE, MLPSpec

Array = jax.Array
N_QUAD = None
"""Default node count per dimension for quadrature activations: None chooses it from the variances."""


@dataclass(frozen=True)
class Kernels:
    """The NNGP kernel K and the NTK Theta evaluated on the same pairs of inputs.

    Attributes:
        nngp: the NNGP kernel K.
        ntk: the NTK Theta, of the same shape as `nngp`.
    """

    nngp: Array
    ntk: Array


# ---------------------------------------------------------------------------------------------
# Gaussian expectations <s(u)s(v)> and <s'(u)s'(v)> for one activation, elementwise on arrays.
# ---------------------------------------------------------------------------------------------


SQ_NORM_ROWS = 2048
"""Rows per block of `sq_norms` (bounds its float64 temporaries)."""


def sq_norms(x) -> np.ndarray:
    """The squared norm of every row x_a, in float64, over blocks of SQ_NORM_ROWS rows.

    A float32 array (the calorimeter's cell features) is never copied whole to float64.

    Args:
        x: the inputs, shape (N, features), a NumPy or JAX array (a float64 JAX array is reduced whole).

    Returns:
        The squared row norms, a float64 NumPy array of shape (N,).
    """
    if isinstance(x, jax.Array) and x.dtype == jnp.float64:
        return np.asarray(_sq_rows(x))
    x = np.asarray(x)
    out = np.empty(x.shape[0])
    for a in range(0, x.shape[0], SQ_NORM_ROWS):  # the same reduction as on a whole array (JAX's)
        out[a:a + SQ_NORM_ROWS] = _sq_rows(jnp.asarray(x[a:a + SQ_NORM_ROWS], dtype=jnp.float64))
    return out


@jax.jit
def _sq_rows(x: Array) -> Array:
    return jnp.sum(x**2, axis=1)


def max_variance(spec: MLPSpec, *xs) -> float:
    """The largest pre-activation variance K^(l)_aa, l = 1..L-1, over the rows of the given inputs.

    <s(u)^2> increases with var(u) for tanh and GELU (s^2 grows with abs(u), or its growing side dominates),
    so the maximum is followed layer by layer with a 1-D trapezoidal rule of QUAD_MAX_NODES nodes.

    Args:
        spec: the architecture (infinite width).
        *xs: one or more input arrays, each of shape (N_i, features).

    Returns:
        The largest variance, a float (0.0 for depth 1, which has no hidden layer).
    """
    if spec.depth == 1:
        return 0.0
    n0 = np.shape(xs[0])[1]
    top = spec.C_b + spec.C_W * max(float(np.max(sq_norms(x))) for x in xs) / n0
    best = top
    if spec.activation in QUAD_STEP:
        fn = POINTWISE[spec.activation][0]
        z, w = _trapezoid(QUAD_MAX_NODES)
        for _ in range(spec.depth - 2):
            top = spec.C_b + spec.C_W * float(np.sum(w * np.asarray(fn(jnp.asarray(math.sqrt(top) * z))) ** 2))
            best = max(best, top)
    return best


def auto_nodes(spec: MLPSpec, *xs) -> int:
    """Quadrature nodes per dimension for this spec on these inputs (0 for closed-form activations).

    Args:
        spec: the architecture (infinite width).
        *xs: one or more input arrays, each of shape (N_i, features).

    Returns:
        `quad_nodes` at the largest pre-activation variance of the inputs (`max_variance`), or 0 when the
        activation has a closed form.
    """
    return quad_nodes(spec.activation, max_variance(spec, *xs)) if spec.activation in QUAD_STEP else 0


# ---------------------------------------------------------------------------------------------
# The layer recursion.
# ---------------------------------------------------------------------------------------------


def _diag_layers(spec: MLPSpec, sq_norm: Array, n0: int, n_quad: int) -> Array:
    """K^(l)_aa for l = 1..L-1 (shape (L-1, N)): the diagonals the off-diagonal recursion needs."""
    k = spec.C_b + spec.C_W * sq_norm / n0
    out = []
    for _ in range(spec.depth - 1):
        out.append(k)
        ss, _ = _diag_moments(spec.activation, n_quad, k)
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


@partial(jax.jit, static_argnames=("spec", "n0", "n_quad"))
def _kernel_diag(spec: MLPSpec, sq: Array, n0: int, n_quad: int) -> Tuple[Array, Array]:
    d = _diag_layers(spec, sq, n0, n_quad)
    k = spec.C_b + spec.C_W * sq / n0
    th = spec.lambda_b + spec.lambda_W * sq / n0
    for l in range(spec.depth - 1):
        ss, dd = _diag_moments(spec.activation, n_quad, d[l])
        th = spec.lambda_b + spec.lambda_W * ss + spec.C_W * dd * th
        k = spec.C_b + spec.C_W * ss
    return k, th


@partial(jax.jit, static_argnames=("spec", "n0", "n_quad"))
def _diag_layers_jit(spec: MLPSpec, sq: Array, n0: int, n_quad: int) -> Array:
    return _diag_layers(spec, sq, n0, n_quad)


def diag_layers(spec: MLPSpec, x: Array, *, n_quad: Optional[int] = N_QUAD, sq: Optional[np.ndarray] = None) -> Array:
    """K^(l)(x_a, x_a) for l = 1..L-1, shape (L-1, N): what `kernel_tile` needs for the rows of x.

    Args:
        spec: the architecture (infinite width).
        x: the inputs, shape (N, features).
        n_quad: quadrature nodes for tanh/GELU (None: `auto_nodes` on x; pass the same value to kernel_tile).
        sq: `sq_norms(x)` if already computed (the inputs are then not read again).

    Returns:
        The layer diagonals, shape (L-1, N).
    """
    n_quad = auto_nodes(spec, x) if n_quad is None else n_quad
    return _diag_layers_jit(spec, jnp.asarray(sq_norms(x) if sq is None else sq), np.shape(x)[1], n_quad)


@partial(jax.jit, static_argnames=("spec", "n_quad"))
def _tile(spec: MLPSpec, x1: Array, x2: Array, d1: Array, d2: Array, n_quad: int) -> Tuple[Array, Array]:
    return _recurse(spec, x1 @ x2.T, d1, d2, x1.shape[1], n_quad)


def kernel_tile(spec: MLPSpec, x1: Array, x2: Array, d1: Array, d2: Array, *,
                n_quad: Optional[int] = N_QUAD) -> Tuple[Array, Array]:
    """(K, Theta) between the rows of x1 and x2, given their layer diagonals d1, d2 from `diag_layers`.

    The building block of blocked kernel computations that place tiles themselves (sweep.py); one
    compilation per tile shape, so callers should pad to a fixed tile size.  n_quad: quadrature nodes
    for tanh/GELU (None: `auto_nodes` on x1 and x2; callers of many tiles should fix it once).

    Args:
        spec: the architecture (infinite width).
        x1: the tile's row inputs, shape (N1, features), float64.
        x2: the tile's column inputs, shape (N2, features), float64.
        d1: `diag_layers(spec, x1)`, shape (L-1, N1), computed with the same n_quad.
        d2: `diag_layers(spec, x2)`, shape (L-1, N2), computed with the same n_quad.
        n_quad: quadrature nodes per dimension for tanh/GELU; None (default N_QUAD) chooses them here.

    Returns:
        (K, Theta): the NNGP and NTK tiles, each of shape (N1, N2).
    """
    n_quad = auto_nodes(spec, x1, x2) if n_quad is None else n_quad
    return _tile(spec, x1, x2, d1, d2, n_quad)


def kernels(spec: MLPSpec, x1, x2=None, *, block_size: int = 256, n_quad: Optional[int] = N_QUAD) -> Kernels:
    """NNGP and NTK between the rows of x1 and x2 (x2 = x1 if omitted); memory: output + one row block.

    n_quad: trapezoidal nodes per dimension for tanh/GELU; None (default) chooses them from the largest
    pre-activation variance of these inputs (`auto_nodes`), for about 1e-11 relative accuracy.

    Args:
        spec: the architecture (infinite width).
        x1: the row inputs, shape (N1, features).
        x2: the column inputs, shape (N2, features); None (default) for x1.
        block_size: rows of x1 computed at once (default 256; at most N1), which bounds the extra memory.
        n_quad: quadrature nodes per dimension for tanh/GELU (at least 3); None (default) chooses them.

    Returns:
        Kernels: the NNGP K and the NTK Theta, each of shape (N1, N2).

    Example:
        >>> import numpy as np
        >>> import ntkuq
        >>> ntkuq.enable_float64()
        >>> from ntkuq import MLPSpec
        >>> from ntkuq.infinite import kernels
        >>> x = np.random.default_rng(0).standard_normal((20, 3))
        >>> kern = kernels(MLPSpec(depth=3), x)
        >>> kern.nngp.shape, kern.ntk.shape
        ((20, 20), (20, 20))
        >>> bool(np.allclose(kern.ntk, kern.ntk.T))
        True
        >>> round(float(kern.nngp[0, 1]), 4), round(float(kern.ntk[0, 0]), 4)
        (0.2331, 3.4434)
    """
    check_instance(spec, "spec", MLPSpec)
    x1 = check_inputs(x1, "x1")
    x2 = x1 if x2 is None else check_inputs(x2, "x2", n_features=x1.shape[1])
    block_size = min(check_int(block_size, "block_size"), x1.shape[0])
    require_kernel_matrices("kernels", x1.shape[0], x2.shape[0], names=("x1", "x2"))
    n_quad = auto_nodes(spec, x1, x2) if n_quad is None else check_int(n_quad, "n_quad", minimum=3)
    check_finite_kernels(spec, x1, "x1", n_quad)
    if x2 is not x1:
        check_finite_kernels(spec, x2, "x2", n_quad)
    k, th = _kernels_blocked(spec, x1, x2, block_size, n_quad)
    return Kernels(k, th)


def check_finite_kernels(spec: MLPSpec, x: Array, name: str, n_quad: int,
                         sq: Optional[np.ndarray] = None) -> Tuple[Array, Array]:
    """Refuse inputs or hyperparameters whose kernels overflow float64 (they would come out NaN).

    Off-diagonal entries are bounded by the diagonal ones (abs(K_ab) <= sqrt(K_aa K_bb), the same for Theta), so
    checking the O(N) diagonal of every layer is enough.

    Args:
        spec: the architecture (infinite width).
        x: the inputs, shape (N, features).
        name: the inputs' name in the error messages.
        n_quad: quadrature nodes per dimension for tanh/GELU.
        sq: `sq_norms(x)` if already computed.

    Returns:
        (K_aa, Theta_aa): the diagonals it computed, each of shape (N,).

    Raises:
        ValueError: a squared input norm does not fit in float64, or the kernels overflow float64.
    """
    sq = sq_norms(x) if sq is None else sq
    if not np.all(np.isfinite(sq)):
        row = int(np.flatnonzero(~np.isfinite(sq))[0])  # no copy of x: it may be large
        big = float(np.max(np.abs(np.asarray(x[row], dtype=np.float64))))
        raise ValueError(f"{name}: expected inputs whose squared norms fit in float64, got row {row} with entries "
                         f"up to {big:.3g} (the kernels would be NaN); rescale the inputs")
    k, th = _kernel_diag(spec, jnp.asarray(sq), np.shape(x)[1], n_quad)
    if not (bool(jnp.all(jnp.isfinite(k))) and bool(jnp.all(jnp.isfinite(th)))):
        raise ValueError(f"C_W, C_b, lambda_W, lambda_b ({name}): the kernels overflow float64 (would be NaN) with "
                         f"C_W = {spec.C_W:g}, C_b = {spec.C_b:g}, lambda_W = {spec.lambda_W:g}, lambda_b = "
                         f"{spec.lambda_b:g}, depth {spec.depth} and largest squared input norm / n_0 = "
                         f"{float(np.max(sq)) / x.shape[1]:.3g}; expected smaller hyperparameters or rescaled inputs")
    return k, th


def kernel_diag(spec: MLPSpec, x, *, n_quad: Optional[int] = N_QUAD) -> Kernels:
    """The diagonals K(x_a, x_a) and Theta(x_a, x_a), without forming any matrix.

    Args:
        spec: the architecture (infinite width).
        x: the inputs, shape (N, features).
        n_quad: quadrature nodes per dimension for tanh/GELU, as in `kernels` (None: chosen from x).

    Returns:
        Kernels whose nngp and ntk are the diagonals, each of shape (N,).
    """
    check_instance(spec, "spec", MLPSpec)
    x = check_inputs(x, "x")
    n_quad = auto_nodes(spec, x) if n_quad is None else check_int(n_quad, "n_quad", minimum=3)
    return Kernels(*check_finite_kernels(spec, x, "x", n_quad))


def kernels_bytes(n_train: int, n_test: int) -> float:
    """Bytes of `predict.train_test_kernels`: 4 N (N + N_T) float64 numbers.

    K and Theta on train x (train + test) and their train-train and train-test slices.

    Args:
        n_train: N, the number of training points.
        n_test: N_T, the number of test points.

    Returns:
        The estimated bytes, a float.
    """
    n, t = float(n_train), float(n_test)
    return WORD * 4 * n * (n + t)


def kernel_matrices_bytes(n1: int, n2: int) -> float:
    """Bytes of `kernels.kernels` on n1 x n2 pairs.

    K and Theta (2 n1 n2), the padded block results before slicing (2 n1 n2 more at most), plus OVERHEAD_BYTES.

    Args:
        n1: the number of rows of x1.
        n2: the number of rows of x2.

    Returns:
        The estimated bytes, a float.
    """
    return WORD * 4 * float(n1) * float(n2) + OVERHEAD_BYTES


def require_kernel_matrices(what: str, n1: int, n2: int, names: Sequence[str] = ("x1", "x2")) -> None:
    """Refuse (TooLargeError) kernels on n1 x n2 pairs that would not fit, naming the sizes and what fits.

    Args:
        what: the computation named in the message.
        n1: the number of rows of the first input.
        n2: the number of rows of the second input.
        names: the names of the two inputs in the message.

    Raises:
        TooLargeError: the kernel matrices would exceed the memory budget (raised by `budget.require`).
    """
    budget = memory_limit_bytes()
    needed = kernel_matrices_bytes(n1, n2)
    if needed <= budget:
        return
    square = largest(lambda m: kernel_matrices_bytes(m, m) <= budget, 1, max(n1, n2))
    rows = largest(lambda m: kernel_matrices_bytes(m, n2) <= budget, 1, n1)
    fits = f"{names[0]} with {rows} rows against {n2} rows of {names[1]}" if rows >= 1 else ""
    fits = "; or ".join(f for f in (fits, f"{square} rows in both" if square >= 1 else "") if f)
    require(needed, f"{what} with {names[0]} of {n1} rows and {names[1]} of {n2} rows ({n1} x {n2} kernel matrices)",
            fits=fits, budget=budget)


__all__ = ["Kernels", "N_QUAD", "SQ_NORM_ROWS", "auto_nodes", "check_finite_kernels", "diag_layers", "kernel_diag",
           "kernel_matrices_bytes", "kernel_tile", "kernels", "kernels_bytes", "max_variance",
           "require_kernel_matrices", "sq_norms"]
