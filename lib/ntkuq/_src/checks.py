"""Input validation shared by the library: clear errors at the boundary instead of tracebacks from inside JAX.

Every check raises with a message that starts with the parameter's name and says what was expected and
what was given.  A value of the wrong kind (a string for a number, a bool for an integer) raises
`InputTypeError`, which is both a TypeError and a ValueError (callers catching either keep working); a
value of the right kind outside its range raises ValueError.  numpy scalars (np.int64, np.float32) and
0-d arrays are accepted wherever a Python number is; bools never count as numbers.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ntkuq.errors import InputTypeError


def enable_float64() -> None:
    """Switch JAX to 64-bit floats (``jax_enable_x64``), which the infinite-width computations require.

    Call it once, before creating any JAX array; arrays made earlier keep their 32-bit type.
    """
    jax.config.update("jax_enable_x64", True)


def require_float64(what: str = "ntkuq") -> None:
    """Raise a RuntimeError naming the fix if JAX is in its default 32-bit mode (see `ntkuq.enable_float64`).

    Args:
        what: the caller's name, which starts the error message (default "ntkuq").

    Raises:
        RuntimeError: if JAX is in 32-bit mode (``jax_enable_x64`` off).
    """
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(f"{what}: needs 64-bit floats but JAX is in 32-bit mode; call ntkuq.enable_float64() "
                           "once before any computation (import ntkuq; ntkuq.enable_float64())")


def _scalar(value: Any) -> Any:
    """A 0-d numpy array as its numpy scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "shape", None) == ():  # jax 0-d
        return np.asarray(value)[()]
    return value


def is_int(value: Any) -> bool:
    """True for Python and numpy integers (and 0-d integer arrays), False for bools and everything else.

    Args:
        value: the value to test.

    Returns:
        Whether `value` is an integer (not a bool).
    """
    value = _scalar(value)
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """The same as `is_int` (Python and NumPy integers, 0-d integer arrays; not bool).

    Args:
        value: the value to test.

    Returns:
        Whether `value` is an integer (not a bool).
    """
    return is_int(value)


def is_real(value: Any) -> bool:
    """True for Python and numpy real numbers (and 0-d real arrays), False for bools, complex and strings.

    Args:
        value: the value to test.

    Returns:
        Whether `value` is a real number (not a bool).
    """
    value = _scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_real(value: Any, name: str, *, lower: Optional[float] = None, upper: Optional[float] = None,
               lower_open: bool = False, upper_open: bool = False, allow_inf: bool = False) -> float:
    """A real number (finite unless allow_inf) within [lower, upper] (open ends if *_open), as a float.

    Args:
        value: the number to check (Python or numpy real, or a 0-d real array; bools are refused).
        name: the parameter's name, which starts every error message.
        lower: the smallest allowed value; None (default) for no lower bound.
        upper: the largest allowed value; None (default) for no upper bound.
        lower_open: True excludes `lower` itself (value > lower); default False (value >= lower).
        upper_open: True excludes `upper` itself (value < upper); default False (value <= upper).
        allow_inf: True accepts +-infinity (within the bounds); default False (finite only). NaN is always refused.

    Returns:
        The value as a Python float.

    Raises:
        InputTypeError: if `value` is not a real number.
        ValueError: if it is NaN, infinite (unless allowed) or out of bounds.
    """
    if not is_real(value):
        raise InputTypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    v = float(_scalar(value))
    lo = "" if lower is None else f"{'>' if lower_open else '>='} {lower:g}"
    hi = "" if upper is None else f"{'<' if upper_open else '<='} {upper:g}"
    rng = " and ".join(r for r in (lo, hi) if r)
    want = f"a {'' if allow_inf else 'finite '}number{' ' + rng if rng else ''}"
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name}: expected {want}, got {value!r}")
    if lower is not None and (v < lower or (lower_open and v == lower)):
        raise ValueError(f"{name}: expected {want}, got {value!r}")
    if upper is not None and (v > upper or (upper_open and v == upper)):
        raise ValueError(f"{name}: expected {want}, got {value!r}")
    return v


def check_fraction(value: Any, name: str) -> float:
    """A number strictly between 0 and 1 (a tolerance, a fraction of a maximum).

    Args:
        value: the number to check.
        name: the parameter's name, which starts every error message.

    Returns:
        The value as a Python float.

    Raises:
        InputTypeError: if `value` is not a real number.
        ValueError: if it is not strictly between 0 and 1.
    """
    return check_real(value, name, lower=0.0, upper=1.0, lower_open=True, upper_open=True)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """One of `choices` (compared by equality; unhashable or other kinds refused with the list).

    A value matches a choice when it is an instance of the choice's type and equal to it.

    Args:
        value: the value to check.
        name: the parameter's name, which starts the error message.
        choices: the accepted values.

    Returns:
        `value`, unchanged.

    Raises:
        ValueError: if `value` is not one of `choices`.
    """
    try:
        ok = any(isinstance(value, type(c)) and value == c for c in choices)
    except Exception:  # noqa: BLE001 - arrays and odd objects compare badly: not a choice
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_sizes(sizes: Any, name: str, *, maximum: Optional[int] = None, what: str = "the pool size",
                minimum: int = 1, increasing: bool = True) -> list:
    """A non-empty sequence of integers >= minimum, strictly increasing (if asked) and <= maximum, as ints.

    Args:
        sizes: the sequence to check (a list, tuple or array of integers; a string or a number is refused).
        name: the parameter's name, which starts every error message.
        maximum: the largest allowed size; None (default) for no upper bound.
        what: what the maximum is, quoted in the message (default "the pool size").
        minimum: the smallest allowed size (default 1).
        increasing: True (default) requires strictly increasing sizes.

    Returns:
        The sizes as a list of Python ints.

    Raises:
        InputTypeError: if `sizes` is not a sequence of integers.
        ValueError: if it is empty, out of bounds or not increasing when asked.
    """
    if isinstance(sizes, (str, bytes)) or is_real(sizes):
        raise InputTypeError(f"{name}: expected a list of integers, got {type(sizes).__name__} {sizes!r}")
    try:
        items = list(sizes)
    except TypeError:
        raise InputTypeError(f"{name}: expected a list of integers, got {type(sizes).__name__} {sizes!r}") from None
    if not items:
        raise ValueError(f"{name}: expected at least one size, got an empty list")
    bad = [s for s in items if not is_int(s)]
    if bad:
        raise InputTypeError(f"{name}: expected integers, got {bad[0]!r} in {items!r}")
    out = [int(_scalar(s)) for s in items]
    if min(out) < minimum:
        raise ValueError(f"{name}: expected integers >= {minimum}, got {out}")
    if increasing and any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"{name}: expected strictly increasing sizes, got {out}")
    if maximum is not None and max(out) > maximum:
        raise ValueError(f"{name}: expected sizes up to {maximum} ({what}), got {max(out)}")
    return out


def check_instance(value: Any, name: str, cls: type, what: str = "") -> Any:
    """`value` if it is an instance of `cls`, else InputTypeError naming what was expected.

    Args:
        value: the value to check.
        name: the parameter's name, which starts the error message.
        cls: the required type (or anything `isinstance` accepts).
        what: what was expected, for the message (default "": "a <cls name>").

    Returns:
        `value`, unchanged.

    Raises:
        InputTypeError: if `value` is not an instance of `cls`.
    """
    if not isinstance(value, cls):
        raise InputTypeError(
            f"{name}: expected {what or 'a ' + cls.__name__}, got {type(value).__name__} {value!r}"[:300])
    return value


def check_bool(value: Any, name: str) -> bool:
    """True or False (numpy bools included), nothing else.

    Args:
        value: the value to check.
        name: the parameter's name, which starts the error message.

    Returns:
        The value as a Python bool.

    Raises:
        InputTypeError: if `value` is not a Python or numpy bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _input_array(x, name: str, n_features: Optional[int], n_rows: Optional[int]):
    """The shape and kind checks of `check_inputs` and `check_host_inputs`; returns x as an array (unconverted)."""
    if x is None or isinstance(x, (str, bytes)) or is_real(x):
        raise InputTypeError(f"{name}: expected a 2-D array of real numbers, got {type(x).__name__} {x!r}"[:200])
    try:
        arr = x if isinstance(x, jnp.ndarray) else np.asarray(x)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: expected a 2-D array of real numbers, got {type(x).__name__}") from None
    if np.dtype(arr.dtype).kind not in "iuf":
        raise InputTypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (points x features), got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one point and one feature, got shape {tuple(arr.shape)}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name}: expected {n_features} features (columns) to match, got {arr.shape[1]}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows to match, got {arr.shape[0]}")
    return arr


def check_inputs(x, name: str, *, n_features: Optional[int] = None, n_rows: Optional[int] = None,
                 dtype=jnp.float64) -> jnp.ndarray:
    """A finite, non-empty 2-D array of inputs (rows = points), converted to `dtype`.

    A float64 `dtype` first checks that JAX is in 64-bit mode (`require_float64`).

    Args:
        x: the inputs, shape (points, features), integer or float numbers.
        name: the parameter's name, which starts every error message.
        n_features: the required number of columns (features); None (default) for any.
        n_rows: the required number of rows (points); None (default) for any.
        dtype: the dtype of the returned JAX array (default float64).

    Returns:
        The inputs as a JAX array of `dtype`.

    Raises:
        InputTypeError: if `x` is not an array of real numbers.
        ValueError: if it is not 2-D, empty, of the wrong shape or not finite.
        RuntimeError: if `dtype` is float64 and JAX is in 32-bit mode.
    """
    if jnp.dtype(dtype) == jnp.float64:
        require_float64(name)
    out = jnp.asarray(_input_array(x, name, n_features, n_rows), dtype=dtype)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return out


HOST_CHECK_ROWS = 4096
"""Rows per block of `check_host_inputs`' finiteness check."""


def check_host_inputs(x, name: str, *, n_features: Optional[int] = None,
                      n_rows: Optional[int] = None) -> np.ndarray:
    """Like `check_inputs`, but a NumPy array kept in its own precision.

    float32 and float64 arrays are not copied (other real dtypes become float64), and finiteness is
    checked over blocks of rows (`HOST_CHECK_ROWS`).  For inputs too large to copy (25,000 x 15,625
    calorimeter cells are 3.1 GB in float64): the caller converts tiles.  JAX must be in 64-bit mode
    (`require_float64`).

    Args:
        x: the inputs, shape (points, features), integer or float numbers.
        name: the parameter's name, which starts every error message.
        n_features: the required number of columns (features); None (default) for any.
        n_rows: the required number of rows (points); None (default) for any.

    Returns:
        The inputs as a float32 or float64 NumPy array.

    Raises:
        InputTypeError: if `x` is not an array of real numbers.
        ValueError: if it is not 2-D, empty, of the wrong shape or not finite.
        RuntimeError: if JAX is in 32-bit mode.
    """
    require_float64(name)
    arr = np.asarray(_input_array(x, name, n_features, n_rows))
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    for a in range(0, arr.shape[0], HOST_CHECK_ROWS):
        if not np.isfinite(arr[a:a + HOST_CHECK_ROWS]).all():
            raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return arr


def check_positive(value, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """A real number > 0 (or >= 0), finite unless allow_inf.

    Args:
        value: the number to check.
        name: the parameter's name, which starts every error message.
        allow_zero: True accepts 0 (value >= 0); default False (value > 0).
        allow_inf: True accepts +infinity; default False (finite only).

    Returns:
        The value as a Python float.

    Raises:
        InputTypeError: if `value` is not a real number.
        ValueError: if it is NaN, infinite (unless allowed) or not positive.
    """
    return check_real(value, name, lower=0.0, lower_open=not allow_zero, allow_inf=allow_inf)


def check_int(value, name: str, *, minimum: int = 1, maximum: Optional[int] = None, what: str = "") -> int:
    """An integer >= minimum (and <= maximum: `what` says what the maximum is), as a Python int.

    Args:
        value: the integer to check (Python or numpy integer; bools and floats are refused).
        name: the parameter's name, which starts every error message.
        minimum: the smallest allowed value (default 1).
        maximum: the largest allowed value; None (default) for no upper bound.
        what: what the maximum is, quoted in the message (default "": not named).

    Returns:
        The value as a Python int.

    Raises:
        InputTypeError: if `value` is not an integer.
        ValueError: if it is out of bounds.
    """
    if not is_int(value):
        raise InputTypeError(f"{name}: expected an integer >= {minimum}, got {type(value).__name__} {value!r}")
    v = int(_scalar(value))
    if v < minimum or (maximum is not None and v > maximum):
        top = "" if maximum is None else f" and <= {maximum}{f' ({what})' if what else ''}"
        raise ValueError(f"{name}: expected an integer >= {minimum}{top}, got {value!r}")
    return v


def real_array(values: Any, name: str, *, finite: bool = False) -> np.ndarray:
    """`values` as a float64 array of real numbers (integer or float dtype).

    Anything else (strings, complex, booleans, objects) raises InputTypeError naming `name`; with
    `finite`, NaN or infinity raise ValueError.

    Args:
        values: the array-like to convert.
        name: the parameter's name, which starts every error message.
        finite: True refuses NaN and infinity; default False.

    Returns:
        The values as a float64 NumPy array.

    Raises:
        InputTypeError: if `values` is not an array of real numbers.
        ValueError: if `finite` and it holds NaN or infinity.
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: expected an array of real numbers, got {type(values).__name__}") from None
    if arr.dtype.kind not in "iuf":
        raise InputTypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return arr


__all__ = ["HOST_CHECK_ROWS", "check_bool", "check_choice", "check_fraction", "check_host_inputs", "check_inputs",
           "check_instance", "check_int", "check_positive", "check_real", "check_sizes", "enable_float64",
           "is_int", "is_integer", "is_real", "real_array", "require_float64"]
