"""ntkuq.sweep: one Cholesky factor for every nested size gives the same statistics as a fresh prediction per size."""
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.dynamics import nngp_posterior, ntk_prediction, train_test_kernels
from ntkuq.lossstats import loss_stats
from ntkuq.sweep import nested_sweep

RNG = np.random.default_rng(7)
X = RNG.normal(size=(40, 6))
Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
XT = RNG.normal(size=(15, 6))
YT = np.stack([np.sin(XT[:, 0]), XT[:, 1] * XT[:, 2]], axis=1)
SIZES = [5, 12, 40]


@pytest.mark.parametrize("spec, diag_reg", [(MLPSpec.critical("relu", depth=3), 0.0),
                                            (MLPSpec.critical("erf", depth=2, lambda_ratio=1.0), 1e-6)])
def test_nested_sweep_equals_a_prediction_per_size(spec, diag_reg):
    points = nested_sweep(spec, X, Y, XT, YT, SIZES, diag_reg=diag_reg)
    assert [(p.method, p.n_train) for p in points] == [(m, n) for m in ("ntk", "nngp") for n in SIZES]
    for p in points:
        kern = train_test_kernels(spec, X[:p.n_train], XT)
        pred = (ntk_prediction(kern, Y[:p.n_train], diag_reg=diag_reg) if p.method == "ntk"
                else nngp_posterior(kern, Y[:p.n_train], diag_reg=diag_reg))
        want = loss_stats(pred, YT)
        assert p.stats.mu == pytest.approx(want.mu, rel=1e-12)
        assert p.stats.sigma == pytest.approx(want.sigma, rel=1e-12)
        assert (p.stats.n_test, p.stats.n_out) == (15, 2)
    ntk = {p.n_train: p.stats.mu for p in points if p.method == "ntk"}
    assert ntk[40] < ntk[5]  # more data, lower loss (a sanity check on the inputs, not the method)


def test_one_method_and_blocked_statistics():
    spec = MLPSpec.critical("relu", depth=2)
    full = nested_sweep(spec, X, Y, XT, YT, [10, 20], methods=("nngp",))
    blocked = nested_sweep(spec, X, Y, XT, YT, [10, 20], methods=("nngp",), block_size=4)
    assert [p.method for p in full] == ["nngp", "nngp"]
    for a, b in zip(full, blocked):
        assert a.stats.mu == pytest.approx(b.stats.mu, rel=1e-12)
        assert a.stats.sigma == pytest.approx(b.stats.sigma, rel=1e-12)


@pytest.mark.parametrize("sizes", [[], [0, 5], [10, 10], [12, 5], [5, 41]])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        nested_sweep(MLPSpec(), X, Y, XT, YT, sizes)


def test_bad_methods():
    for methods in ((), ("ntk", "gp")):
        with pytest.raises(ValueError, match="methods"):
            nested_sweep(MLPSpec(), X, Y, XT, YT, [5], methods=methods)
