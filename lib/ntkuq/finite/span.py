"""Training in the span of the training inputs: exact and cheaper when there are more features than points.

The first layer's weight gradient, dL/dW1 = sum_a x_a delta_a^T, lies in the span of the training inputs, and
so does every update of gradient descent, heavy ball, Nesterov and mini-batch SGD (linear in the gradients,
one scalar rate per layer).  With Q (n_0 x r) an orthonormal basis of that span (r <= N_D < n_0 features):

    W1(t) = W1(0) + Q Q^T (W1(t) - W1(0)),   x_a = Q Q^T x_a for every training input,

so training needs only R(t) = Q^T W1(t) (r x n instead of n_0 x n) on the reduced inputs Q^T x_a, and a
test input x splits into its span part and the rest, whose first-layer contribution keeps its initial value:

    x W1(t) = (x - x Q Q^T) W1(0) + (x Q) R(t).

The per-layer rate lambda_W / n_0 of W1 must stay that of the full network: the reduced network sees the
inputs x Q / a and the weights a R with a = sqrt(n_0 / r), so that its own rate lambda_W / r gives R exactly
the update lambda_W / n_0 (the gradient of a R is 1 / a that of R).  Adam scales each coordinate by its own
gradient history, which a rotation Q does not preserve, so it is refused there.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, Tuple, Union

import jax.numpy as jnp
import numpy as np

from ntkuq.errors import InputTypeError

SPAN_OPTIMIZERS = ("gd", "momentum", "nesterov", "sgd")
"""Optimizers whose updates stay in the span of the gradients with one scalar rate per layer."""


@dataclass(frozen=True)
class SpanBasis:
    """An orthonormal basis Q (n_0 x r) of the training inputs' span, and the input scale a = sqrt(n_0 / r).

    Attributes:
        q: the basis, float64, orthonormal columns.
        scale: a = sqrt(n_0 / r).
        train_coef: the training inputs' coordinates x Q (N_D x r), from the decomposition itself.
    """

    q: np.ndarray
    scale: float
    train_coef: np.ndarray

    @property
    def rank(self) -> int:
        """r, the dimension of the span."""
        return int(self.q.shape[1])


_BASIS_MEMO: Dict[tuple, SpanBasis] = {}
"""span_basis results keyed by the inputs' shape and sha1 (a width sweep trains several ensembles on one set)."""


def span_basis(x_train) -> SpanBasis:
    """The orthonormal basis of the span of the training inputs (rows), from an SVD in float64 (memoized).

    Args:
        x_train: the training inputs, shape (N_D, n_0).

    Returns:
        SpanBasis with the right singular vectors whose singular values exceed max(N_D, n_0) * eps * s_max.
    """
    x = np.ascontiguousarray(x_train, dtype=np.float64)
    key = (x.shape, hashlib.sha1(x.tobytes()).hexdigest())
    if key not in _BASIS_MEMO:
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        keep = s > max(x.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
        r = max(int(keep.sum()), 1)
        if len(_BASIS_MEMO) >= 4:
            _BASIS_MEMO.clear()
        _BASIS_MEMO[key] = SpanBasis(vt[:r].T.copy(), float(np.sqrt(x.shape[1] / r)), u[:, :r] * s[:r])
    return _BASIS_MEMO[key]


def use_span(span: Union[bool, str], n_in: int, n_train: int, optimizer: str) -> bool:
    """Whether to train in the span: "auto" when n_0 > N_D and the optimizer allows it; True forces it.

    Args:
        span: "auto", True or False.
        n_in: the number of features n_0.
        n_train: N_D.
        optimizer: the optimizer's name.

    Returns:
        True to train in the span.

    Raises:
        InputTypeError: span is neither a string nor a bool.
        ValueError: span is another string than "auto"; span=True with an optimizer outside SPAN_OPTIMIZERS.
    """
    if isinstance(span, (bool, np.bool_)):
        span = bool(span)
    elif not isinstance(span, str):
        raise InputTypeError(f"span: expected 'auto', True or False, got {type(span).__name__} {span!r}"[:200])
    if span is True:
        if optimizer not in SPAN_OPTIMIZERS:
            raise ValueError(f"span: training in the span of the inputs is exact only for {SPAN_OPTIMIZERS} (Adam's "
                             f"per-coordinate scaling is not rotation-invariant), got optimizer {optimizer!r}")
        return True
    if span is False:
        return False
    if not (isinstance(span, str) and span == "auto"):
        raise ValueError(f"span: expected 'auto', True or False, got {span!r}")
    return optimizer in SPAN_OPTIMIZERS and n_in > n_train


def reduce_inputs(basis: SpanBasis, x, dtype) -> Tuple[jnp.ndarray, np.ndarray]:
    """The reduced inputs x Q / a, and the part of x outside the span, x - x Q Q^T (float64).

    Args:
        basis: the SpanBasis.
        x: inputs, shape (points, n_0).
        dtype: the dtype of the reduced inputs.

    Returns:
        (x Q / a as a jnp array of dtype, shape (points, r); x - x Q Q^T as float64 numpy, shape (points, n_0)).
    """
    x = np.asarray(x, dtype=np.float64)
    coef = x @ basis.q
    return jnp.asarray(coef / basis.scale, dtype), x - coef @ basis.q.T


def reduce_members(basis: SpanBasis, params, x_perp: np.ndarray):
    """Members' parameters in the span, and each member's fixed first-layer offset on the test inputs.

    Args:
        basis: the SpanBasis.
        params: stacked full parameters (leading member axis), W1 of shape (M, n_0, n).
        x_perp: the test inputs' part outside the span, (N_T, n_0).

    Returns:
        (params with W1 replaced by a Q^T W1, shape (M, r, n); offsets x_perp W1(0), shape (M, N_T, n)).
    """
    w1, b1 = params[0]
    q = jnp.asarray(basis.q, w1.dtype)
    reduced = jnp.einsum("ir,min->mrn", q, w1) * jnp.asarray(basis.scale, w1.dtype)
    offset = jnp.einsum("ti,min->mtn", jnp.asarray(x_perp, w1.dtype), w1)
    return ((reduced, b1),) + tuple(params[1:]), offset


__all__ = ["SPAN_OPTIMIZERS", "SpanBasis", "reduce_inputs", "reduce_members", "span_basis", "use_span"]
