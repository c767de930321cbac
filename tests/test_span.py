"""Training in the span of the training inputs (ntkuq.finite.span) equals the plain trainer."""
import jax.numpy as jnp
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.errors import InputTypeError
from ntkuq.finite import train_ensemble
from ntkuq.finite.span import reduce_inputs, span_basis, use_span
from ntkuq.finite.stopping import StopRule


def _data(n=24, n_in=90, n_test=10, k=2, seed=0, rank=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in))
    if rank is not None:  # rank-deficient training inputs (repeated and combined rows)
        x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, n_in)) / np.sqrt(rank)
    return x, rng.normal(size=(n, k)), rng.normal(size=(n_test, n_in)), rng.normal(size=(n_test, k))


def _train(span, x, y, xt, yt, **kw):
    kw = {"n_members": 3, "steps": 120, "dtype": jnp.float64, "progress": False, "keep_outputs": True, **kw}
    return train_ensemble(MLPSpec.critical("relu", depth=3, width=12, lambda_ratio=10.0), x, y, xt, yt, span=span,
                          **kw)


@pytest.mark.parametrize("kw", [dict(optimizer="gd"), dict(optimizer="momentum"), dict(optimizer="nesterov"),
                                dict(optimizer="sgd", batch_size=8), dict(optimizer="momentum", warmup=30),
                                dict(optimizer="gd", steps=2000, stop=StopRule(0.01, 20))])
def test_span_equals_plain_in_float64(kw):
    x, y, xt, yt = _data()
    plain, span = _train(False, x, y, xt, yt, **kw), _train(True, x, y, xt, yt, **kw)
    np.testing.assert_allclose(span.outputs, plain.outputs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(span.train_history, plain.train_history, rtol=1e-10)
    np.testing.assert_allclose(span.point_losses, plain.point_losses, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(span.alive_history, plain.alive_history)
    np.testing.assert_array_equal(span.stopped_at, plain.stopped_at)


def test_rank_deficient_inputs():
    x, y, xt, yt = _data(rank=7)
    assert span_basis(x).rank == 7
    plain, span = _train(False, x, y, xt, yt), _train(True, x, y, xt, yt)
    np.testing.assert_allclose(span.outputs, plain.outputs, rtol=1e-9, atol=1e-11)


def test_auto_uses_the_span_only_with_more_features_than_points():
    wide = _data(n=24, n_in=90)
    narrow = _data(n=40, n_in=30)
    auto_w, true_w = _train("auto", *wide), _train(True, *wide)
    np.testing.assert_array_equal(auto_w.outputs, true_w.outputs)
    auto_n, false_n = _train("auto", *narrow), _train(False, *narrow)
    np.testing.assert_array_equal(auto_n.outputs, false_n.outputs)
    # Adam is not rotation-invariant: auto falls back to the plain trainer, True is refused
    adam = dict(optimizer="adam", eta=1e-3)
    np.testing.assert_array_equal(_train("auto", *wide, **adam).outputs, _train(False, *wide, **adam).outputs)
    with pytest.raises(ValueError, match="span"):
        _train(True, *wide, **adam)


@pytest.mark.parametrize("bad", ["yes", 1, None, 0.5, [True]])
def test_bad_span_values_are_refused(bad):
    x, y, xt, yt = _data()
    with pytest.raises((ValueError, InputTypeError), match="^span"):
        _train(bad, x, y, xt, yt)


def test_numpy_bools_are_bools():
    assert use_span(np.True_, 50, 20, "gd") and not use_span(np.False_, 50, 20, "gd")


def test_basis_and_split():
    x, _, xt, _ = _data(n=20, n_in=50)
    b = span_basis(x)
    assert span_basis(x.copy()) is b and span_basis(xt) is not b  # memoized on the inputs' contents
    assert b.rank == 20 and b.scale == pytest.approx(np.sqrt(50 / 20))
    np.testing.assert_allclose(b.q.T @ b.q, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(b.train_coef @ b.q.T, x, atol=1e-12)
    red, perp = reduce_inputs(b, xt, jnp.float64)
    np.testing.assert_allclose(np.asarray(red) * b.scale @ b.q.T + perp, xt, atol=1e-12)
    np.testing.assert_allclose(perp @ b.q, 0.0, atol=1e-12)
    assert use_span("auto", 50, 20, "gd") and not use_span("auto", 20, 50, "gd") and not use_span("auto", 50, 20,
                                                                                                     "adam")
