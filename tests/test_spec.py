"""The MLP specification rejects what it cannot describe, naming the parameter."""
import pytest

from ntkuq import MLPSpec


@pytest.mark.parametrize("kwargs, param", [
    (dict(depth=0), "depth"), (dict(depth=2.0), "depth"), (dict(activation="sigmoid"), "activation"),
    (dict(C_W=0.0), "C_W"), (dict(C_b=-0.1), "C_b"), (dict(lambda_W=-1.0), "lambda_W"),
    (dict(lambda_b=float("nan")), "lambda_b"), (dict(width=0), "width"), (dict(width=3.5), "width"),
    (dict(C_W="two"), "C_W"),
])
def test_bad_spec(kwargs, param):
    with pytest.raises(ValueError, match=f"^{param}"):
        MLPSpec(**kwargs)


def test_critical_and_width():
    spec = MLPSpec.critical("relu", depth=3, lambda_ratio=10.0)
    assert (spec.C_b, spec.C_W, spec.lambda_b / spec.lambda_W) == (0.0, 2.0, 10.0)
    assert spec.is_infinite and spec.with_width(30).width == 30
    with pytest.raises(ValueError, match="^activation"):
        MLPSpec.critical("gelu")
