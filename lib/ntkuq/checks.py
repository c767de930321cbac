"""Input validation shared by the library: clear ValueErrors instead of tracebacks from inside JAX."""
from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np


def require_float64(what: str = "ntkuq") -> None:
    """Raise a RuntimeError naming the fix if JAX is in its default 32-bit mode (see `ntkuq.enable_float64`)."""
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(f"{what}: needs 64-bit floats but JAX is in 32-bit mode; call ntkuq.enable_float64() "
                           "once before any computation (import ntkuq; ntkuq.enable_float64())")


def check_inputs(x, name: str, *, n_features: Optional[int] = None, n_rows: Optional[int] = None,
                 dtype=jnp.float64) -> jnp.ndarray:
    """A finite, non-empty 2-D array of inputs (rows = points), converted to `dtype`.

    A float64 `dtype` first checks that JAX is in 64-bit mode (`require_float64`)."""
    if jnp.dtype(dtype) == jnp.float64:
        require_float64(name)
    try:
        arr = np.asarray(x, dtype=np.float64) if not hasattr(x, "dtype") else x
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a 2-D array of real numbers, got {type(x).__name__}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (points x features), got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one point and one feature, got shape {tuple(arr.shape)}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name}: expected {n_features} features (columns) to match, got {arr.shape[1]}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows to match, got {arr.shape[0]}")
    out = jnp.asarray(arr, dtype=dtype)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return out


def check_positive(value, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """A real number > 0 (or >= 0), finite unless allow_inf."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a real number, got {value!r}") from None
    if math.isnan(v) or (math.isinf(v) and not allow_inf) or v < 0 or (v == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a {'' if allow_inf else 'finite '}number {rel}, got {value!r}")
    return v


def is_integer(value: object) -> bool:
    """True for Python and NumPy integers other than bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """An integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)
