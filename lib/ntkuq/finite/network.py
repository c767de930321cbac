"""Finite-width MLPs in plain JAX: initialization, forward pass, per-group learning rates, empirical kernels.

Parameters are a tuple of (W, b) pairs, W^(l) of shape (n_{l-1}, n_l), drawn as
W ~ N(0, C_W / n_{l-1}) and b ~ N(0, C_b) (Roberts-Yaida-Hanin; depth L = number of weight layers).
Training rates: eta * lambda_b for biases and eta * lambda_W / n_{l-1} for layer-l weights, so that
the empirical NTK sum_params rate * dz/dp dz/dp converges to the analytic Theta as the width grows.
"""
from __future__ import annotations

from functools import partial
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ntkuq.spec import POINTWISE, MLPSpec

Array = jax.Array
Params = Tuple[Tuple[Array, Array], ...]


def layer_sizes(spec: MLPSpec, n_in: int, n_out: int) -> Tuple[int, ...]:
    """The layer sizes (n_0, n, ..., n, k): input, depth - 1 hidden layers of the spec's width, output.

    Args:
        spec: the architecture, with a finite width (its depth and width).
        n_in: the input dimension n_0 (number of features).
        n_out: the output dimension k.

    Returns:
        The tuple (n_in, width, ..., width, n_out), depth + 1 entries.

    Raises:
        ValueError: if spec.width is None (infinite width).
    """
    if spec.width is None:
        raise ValueError("width: expected a finite width for a finite network, got None (infinite)")
    return (n_in,) + (spec.width,) * (spec.depth - 1) + (n_out,)


def init_mlp(spec: MLPSpec, n_in: int, n_out: int, key: Array, dtype=jnp.float32) -> Params:
    """Draw one network's parameters: W ~ N(0, C_W / fan_in), b ~ N(0, C_b).

    Args:
        spec: the architecture, with a finite width (depth, C_W, C_b).
        n_in: the input dimension (number of features).
        n_out: the output dimension.
        key: the JAX PRNG key of this network.
        dtype: the parameters' dtype (default float32).

    Returns:
        A tuple of (W, b) per layer, W of shape (fan_in, fan_out) and b of shape (fan_out,).
    """
    sizes = layer_sizes(spec, n_in, n_out)
    keys = jax.random.split(key, 2 * spec.depth)
    params = []
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(keys[2 * l], (fan_in, fan_out), dtype) * jnp.sqrt(spec.C_W / fan_in).astype(dtype)
        b = jax.random.normal(keys[2 * l + 1], (fan_out,), dtype) * jnp.sqrt(spec.C_b).astype(dtype)
        params.append((w, b))
    return tuple(params)


def apply_mlp(spec: MLPSpec, params: Params, x: Array, offset: Optional[Array] = None) -> Array:
    """Forward pass: z^(1) = b + x W (+ offset), z^(l+1) = b + sigma(z^(l)) W.

    Args:
        spec: the architecture (its activation sigma).
        params: one network's parameters (as from `init_mlp`).
        x: inputs, shape (points, features).
        offset: added to the first preactivation, shape (points, width) (training in the span of the inputs:
            `ntkuq.finite.span`); None (default) for none.

    Returns:
        The last preactivation, the network's outputs, shape (points, n_out).
    """
    act = POINTWISE[spec.activation][0]
    z = x @ params[0][0] + params[0][1]
    if offset is not None:
        z = z + offset
    for w, b in params[1:]:
        z = act(z) @ w + b
    return z


def alive_fraction(spec: MLPSpec, params: Params, x: Array) -> Array:
    """Per hidden layer, the fraction of units that are alive on the inputs x.

    A unit is alive when its activation has a nonzero derivative sigma'(z) on at least one input.

    A dead unit (for ReLU: z <= 0 on every input) receives no gradient and is lost to training; an
    infinite-width network in the NTK regime loses none.  Smooth activations (erf, tanh, GELU) have
    sigma' != 0 almost everywhere, so all their units count as alive.

    Args:
        spec: the architecture (finite width).
        params: one network's parameters (no member axis; vmap over members).
        x: inputs (points x features), e.g. the training set.

    Returns:
        The alive fraction of each hidden layer, shape (depth - 1,).
    """
    act, dact = POINTWISE[spec.activation]
    z = x @ params[0][0] + params[0][1]
    alive = []
    for w, b in params[1:]:
        alive.append(jnp.mean(jnp.any(dact(z) != 0, axis=0)))
        z = act(z) @ w + b
    return jnp.stack(alive)


def learning_rate_scales(spec: MLPSpec, params: Params) -> Params:
    """Per-leaf rate multipliers: (lambda_W / n_{l-1}, lambda_b) for each layer's (W, b).

    Args:
        spec: the architecture (its lambda_W and lambda_b).
        params: one network's parameters (as from `init_mlp`); their shapes give n_{l-1} and their dtypes the
            multipliers' dtype.

    Returns:
        A tuple of (W scale, b scale) scalar pairs, one per layer, with the structure of params.
    """
    return tuple((jnp.full((), spec.lambda_W / w.shape[0], w.dtype), jnp.full((), spec.lambda_b, b.dtype))
                 for w, b in params)


@partial(jax.jit, static_argnames=("spec", "output"))
def empirical_ntk(spec: MLPSpec, params: Params, x1: Array, x2: Array, output: int = 0) -> Array:
    """Sum over parameters p of rate_p dz(x1)/dp dz(x2)/dp for one output component.

    Args:
        spec: the architecture; its lambda_W, lambda_b set the rates (`learning_rate_scales`).
        params: one network's parameters (as from `init_mlp`).
        x1: the row inputs, shape (N1, features).
        x2: the column inputs, shape (N2, features).
        output: the index of the output component (default 0).

    Returns:
        The empirical NTK, shape (N1, N2).
    """
    def f(p, x):
        return apply_mlp(spec, p, x)[:, output]

    j1 = jax.jacrev(f)(params, x1)
    j2 = jax.jacrev(f)(params, x2)
    scales = learning_rate_scales(spec, params)
    total = 0.0
    for (jw1, jb1), (jw2, jb2), (sw, sb) in zip(j1, j2, scales):
        total = total + sw * jnp.einsum("aij,bij->ab", jw1, jw2) + sb * jnp.einsum("ai,bi->ab", jb1, jb2)
    return total


@partial(jax.jit, static_argnames=("spec", "n_out", "chunk"))
def empirical_nngp(spec: MLPSpec, keys: Array, x1: Array, x2: Array, n_out: int = 1, chunk: int = 64) -> Array:
    """Output covariance E[z(x1) z(x2)] over initializations from `keys` (a multiple of chunk; outputs pooled).

    Args:
        spec: the architecture, with a finite width.
        keys: the PRNG keys of the networks, one per initialization; their number a multiple of chunk.
        x1: the row inputs, shape (N1, features).
        x2: the column inputs, shape (N2, features).
        n_out: the number of output components, pooled in the average (default 1).
        chunk: networks evaluated together (vmapped) per step of the map over keys (default 64).

    Returns:
        The Monte Carlo NNGP, shape (N1, N2).
    """
    x = jnp.concatenate([x1, x2])

    def outputs(key):
        return apply_mlp(spec, init_mlp(spec, x.shape[1], n_out, key, x.dtype), x)

    z = lax.map(jax.vmap(outputs), keys.reshape(-1, chunk, *keys.shape[1:])).reshape(-1, x.shape[0], n_out)
    za, zb = z[:, : x1.shape[0]], z[:, x1.shape[0]:]
    return jnp.einsum("mai,mbi->ab", za, zb) / (z.shape[0] * n_out)


__all__ = ["alive_fraction", "apply_mlp", "empirical_nngp", "empirical_ntk", "init_mlp", "layer_sizes",
           "learning_rate_scales"]
