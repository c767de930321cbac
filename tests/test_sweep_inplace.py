"""The in-place nested sweep (linalg) against the one-size predictions, by activation, diag_reg and method subsets."""
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.dynamics import nngp_posterior, ntk_prediction, train_test_kernels
from ntkuq.linalg import nested_sweep_flops
from ntkuq.lossstats import loss_stats
from ntkuq.sweep import nested_sweep

RNG = np.random.default_rng(7)
X, XS = RNG.normal(size=(23, 5)), RNG.normal(size=(11, 5))
Y, YS = np.cos(X[:, :3]), np.cos(XS[:, :3])


def reference(spec, n, method, diag_reg):
    kern = train_test_kernels(spec, X[:n], XS)
    pred = (ntk_prediction(kern, Y[:n], diag_reg=diag_reg) if method == "ntk"
            else nngp_posterior(kern, Y[:n], diag_reg=diag_reg))
    return loss_stats(pred, YS)


@pytest.mark.parametrize("activation, diag_reg, methods, block", [
    ("relu", 0.0, ("ntk", "nngp"), 4),
    ("relu", 1e-2, ("ntk", "nngp"), 5),   # diag_reg enters the NTK covariance through -r V^T V
    ("erf", 1e-3, ("nngp",), 8),
    ("tanh", 0.0, ("ntk",), 64),          # one tile larger than the data: padding
    ("gelu", 1e-4, ("ntk", "nngp"), 3),
])
def test_sweep_matches_single_predictions(activation, diag_reg, methods, block):
    spec = MLPSpec(depth=3, activation=activation, C_b=0.2, C_W=1.8, lambda_b=3.0, lambda_W=0.6)
    sizes = [4, 9, 17, 23]
    points = nested_sweep(spec, X, Y, XS, YS, sizes, methods=methods, diag_reg=diag_reg, block_size=block)
    assert [(p.method, p.n_train) for p in points] == [(m, n) for m in methods for n in sizes]
    for p in points:
        ref = reference(spec, p.n_train, p.method, diag_reg)
        for name in ("mu", "sigma", "bias2", "trace_S", "fro2_S", "rSr"):
            assert getattr(p.stats, name) == pytest.approx(getattr(ref, name), rel=1e-8, abs=1e-12), (p, name)


def test_sweep_uses_only_the_prefix():
    """Rows beyond the largest size do not matter (they are never read)."""
    spec = MLPSpec(depth=2, activation="relu", C_b=0.1, C_W=2.0, lambda_b=1.0, lambda_W=1.0)
    junk = np.vstack([X[:10], np.full((13, 5), 1e3)])
    a = nested_sweep(spec, X, Y, XS, YS, [5, 10])
    b = nested_sweep(spec, junk, Y, XS, YS, [5, 10])
    assert [p.stats.mu for p in a] == pytest.approx([p.stats.mu for p in b], rel=1e-13)


def test_flop_count_is_dominated_by_the_documented_terms():
    """At N_D = 25,000, N_T = 10^4: two Cholesky factors are about a fifth of the work."""
    sizes = np.unique(np.geomspace(100, 25_000, 12).astype(int)).tolist()
    f = nested_sweep_flops(25_000, 10_000, sizes, n_features=784)
    assert f["cholesky"] == pytest.approx(2 * 25_000**3 / 3)
    assert f["total"] == pytest.approx(sum(v for k, v in f.items() if k != "total"))
    assert 4e13 < f["total"] < 7e13
