"""ntkuq._src.checks: the shared input validation, and the float64 switch it enforces."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkuq
from ntkuq._src.checks import check_inputs, check_int, check_positive, real_array, require_float64


def test_check_inputs_converts_and_refuses():
    out = check_inputs([[1, 2], [3, 4]], "x")
    assert out.dtype == jnp.float64 and out.shape == (2, 2)
    for bad, match in (([1.0, 2.0], "2-D"), (np.zeros((0, 3)), "at least one"), ([[np.nan]], "finite"),
                       ("abc", "real numbers|2-D")):
        with pytest.raises(ValueError, match=f"^x: .*({match})"):
            check_inputs(bad, "x")
    with pytest.raises(ValueError, match="3 features"):
        check_inputs(np.ones((2, 2)), "x_test", n_features=3)
    with pytest.raises(ValueError, match="5 rows"):
        check_inputs(np.ones((2, 2)), "y", n_rows=5)


def test_check_positive_and_int():
    assert check_positive(np.float32(2.5), "eta") == 2.5
    with pytest.raises(TypeError, match="^eta: expected a real number, got str"):
        check_positive("2.5", "eta")  # strings are not numbers (issue 13)
    assert check_positive(0, "r", allow_zero=True) == 0.0
    assert check_positive(float("inf"), "t", allow_inf=True) == float("inf")
    for bad in (0, -1, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="^eta: expected"):
            check_positive(bad, "eta")
    assert check_int(np.int64(3), "n") == 3
    for bad in (True, 0, 2.0):
        with pytest.raises(ValueError, match="^n: expected an integer"):
            check_int(bad, "n")


def test_float64_is_required_and_named_in_the_error():
    """In JAX's default 32-bit mode the float64 entry points refuse with the fix instead of computing in float32."""
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match=r"x_train: needs 64-bit floats.*ntkuq\.enable_float64\(\)"):
            check_inputs(np.ones((2, 2)), "x_train")
        with pytest.raises(RuntimeError, match="enable_float64"):
            require_float64()
        assert check_inputs(np.ones((2, 2)), "x", dtype=jnp.float32).dtype == jnp.float32  # float32 needs no switch
    finally:
        ntkuq.enable_float64()
    require_float64()  # back on: no error
    assert jnp.asarray(1.0).dtype == jnp.float64


def test_real_array_refuses_other_kinds_and_optionally_non_finite():
    out = real_array([1, 2, 3], "lam")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0, 3.0]
    for bad in (["a", "b"], np.array([1 + 2j]), np.array([True, False]), [object()]):
        with pytest.raises(TypeError, match="^lam: expected an array of real numbers"):
            real_array(bad, "lam")
    assert np.isnan(real_array([np.nan], "lam")[0])
    with pytest.raises(ValueError, match="^lam: expected finite values"):
        real_array([1.0, np.inf], "lam", finite=True)


def test_check_host_inputs_keeps_precision_and_refuses_like_check_inputs(monkeypatch):
    from ntkuq._src import checks
    from ntkuq._src.checks import check_host_inputs
    x32 = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = check_host_inputs(x32, "x")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and np.shares_memory(out, x32)  # no copy
    assert check_host_inputs([[1, 2], [3, 4]], "x").dtype == np.float64
    for bad, match in (([1.0, 2.0], "2-D"), (np.zeros((0, 3)), "at least one"), ([[np.nan]], "finite"),
                       ("abc", "real numbers|2-D"), (np.ones((2, 2), complex), "real numbers")):
        with pytest.raises(ValueError, match=f"^x: .*({match})"):
            check_host_inputs(bad, "x")
    with pytest.raises(ValueError, match="3 features"):
        check_host_inputs(np.ones((2, 2)), "x_test", n_features=3)
    monkeypatch.setattr(checks, "HOST_CHECK_ROWS", 2)  # an infinity in the last block is found too
    late = np.ones((7, 3), np.float32)
    late[6, 1] = np.inf
    with pytest.raises(ValueError, match="^x: expected finite"):
        check_host_inputs(late, "x")
