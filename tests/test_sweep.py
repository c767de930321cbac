"""ntkuq.infinite: one Cholesky factor for every nested size gives the same statistics as a fresh prediction
per size."""
import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.infinite import loss_stats, nested_sweep, nngp_posterior, ntk_prediction, train_test_kernels

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


# Every activation, diag_reg and method subset, against one prediction per size.
RNG2 = np.random.default_rng(7)
X2, XS2 = RNG2.normal(size=(23, 5)), RNG2.normal(size=(11, 5))
Y2, YS2 = np.cos(X2[:, :3]), np.cos(XS2[:, :3])


def reference(spec, n, method, diag_reg):
    kern = train_test_kernels(spec, X2[:n], XS2)
    pred = (ntk_prediction(kern, Y2[:n], diag_reg=diag_reg) if method == "ntk"
            else nngp_posterior(kern, Y2[:n], diag_reg=diag_reg))
    return loss_stats(pred, YS2)


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
    points = nested_sweep(spec, X2, Y2, XS2, YS2, sizes, methods=methods, diag_reg=diag_reg, block_size=block)
    assert [(p.method, p.n_train) for p in points] == [(m, n) for m in methods for n in sizes]
    for p in points:
        ref = reference(spec, p.n_train, p.method, diag_reg)
        for name in ("mu", "sigma", "bias2", "trace_S", "fro2_S", "rSr"):
            assert getattr(p.stats, name) == pytest.approx(getattr(ref, name), rel=1e-8, abs=1e-12), (p, name)


def test_sweep_uses_only_the_prefix():
    """Rows beyond the largest size do not matter (they are never read)."""
    spec = MLPSpec(depth=2, activation="relu", C_b=0.1, C_W=2.0, lambda_b=1.0, lambda_W=1.0)
    junk = np.vstack([X2[:10], np.full((13, 5), 1e3)])
    a = nested_sweep(spec, X2, Y2, XS2, YS2, [5, 10])
    b = nested_sweep(spec, junk, Y2, XS2, YS2, [5, 10])
    assert [p.stats.mu for p in a] == pytest.approx([p.stats.mu for p in b], rel=1e-13)


# ---------------------------------------------------------------------------------------------
# The shared-factor sweep (ntkuq.infinite.nested) against the direct method and against a fresh prediction,
# on real data of all three tasks (the earlier in-place sweep failed only there: calorimeter, 1000 features).
# ---------------------------------------------------------------------------------------------

REAL_SIZES = [37, 100, 161, 300]
# task, loader options, activation, diag_reg, block (quadrature activations: the random-data tests above)
REAL_CASES = [
    ("mnist", {}, "relu", 0.0, 128),
    ("mnist", {}, "erf", 1e-3, 1024),
    ("cifar10", {}, "relu", 1e-4, 96),
    ("cifar10", {}, "erf", 0.0, 1024),
    ("calorimeter", {"calorimeter_cells": 10, "calorimeter_layers": 10}, "relu", 0.0, 64),
    ("calorimeter", {"calorimeter_cells": 10, "calorimeter_layers": 10}, "erf", 1e-3, 1024),
]


@pytest.fixture(scope="module")
def real_tasks():
    import os
    from pathlib import Path

    from ntkuq.data import load
    path = os.environ.get("NTKUQ_DATA_DIR") or str(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    if not Path(path).is_dir():
        pytest.skip("real data not available: set NTKUQ_DATA_DIR")
    os.environ["NTKUQ_DATA_DIR"] = path
    out = {}
    for task, opts, *_ in REAL_CASES:
        key = (task, tuple(sorted(opts.items())))
        if key not in out:
            out[key] = load(task, n_pool=300, n_test=200, **opts)
    return out


def _close(a, b, rel=1e-10):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


@pytest.mark.parametrize("task, opts, activation, diag_reg, block", REAL_CASES)
def test_shared_factor_sweep_matches_direct_on_real_tasks(real_tasks, task, opts, activation, diag_reg, block):
    from ntkuq.infinite import nested_sweep_direct, predict
    data = real_tasks[(task, tuple(sorted(opts.items())))]
    spec = MLPSpec(depth=3, activation=activation, C_b=0.0 if activation == "relu" else 0.1,
                   C_W=2.0 if activation == "relu" else 1.2, lambda_b=10.0, lambda_W=1.0)
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    fast = nested_sweep(spec, x, y, xt, yt, REAL_SIZES, diag_reg=diag_reg, block_size=block)
    slow = nested_sweep_direct(spec, x, y, xt, yt, REAL_SIZES, diag_reg=diag_reg)
    assert [(p.method, p.n_train) for p in fast] == [(p.method, p.n_train) for p in slow]
    for p, q in zip(fast, slow):
        for name in ("mu", "sigma", "eps"):
            assert _close(getattr(p.stats, name), getattr(q.stats, name)), (
                task, p.method, p.n_train, name, getattr(p.stats, name), getattr(q.stats, name))
    for p in fast:
        if p.n_train in (37, 161):  # and against a fresh prediction of that prefix alone (dynamics.predict)
            want = loss_stats(predict(spec, x[:p.n_train], y[:p.n_train], xt, method=p.method, diag_reg=diag_reg), yt)
            for name in ("mu", "sigma", "eps"):
                assert _close(getattr(p.stats, name), getattr(want, name)), (task, p.method, p.n_train, name)


def test_shared_factor_sweep_one_method_each(real_tasks):
    from ntkuq.infinite import nested_sweep_direct
    data = real_tasks[("calorimeter", (("calorimeter_cells", 10), ("calorimeter_layers", 10)))]
    spec = MLPSpec.critical("relu", depth=3)
    for methods in (("ntk",), ("nngp",), ("nngp", "ntk")):
        fast = nested_sweep(spec, data.x_train, data.y_train, data.x_test, data.y_test, [50, 77, 250], methods=methods)
        slow = nested_sweep_direct(spec, data.x_train, data.y_train, data.x_test, data.y_test, [50, 77, 250],
                                   methods=methods)
        assert [(p.method, p.n_train) for p in fast] == [(p.method, p.n_train) for p in slow]
        for p, q in zip(fast, slow):
            assert _close(p.stats.mu, q.stats.mu) and _close(p.stats.sigma, q.stats.sigma), (methods, p, q)


def test_ntk_only_sweep_with_a_singular_nngp_kernel_falls_back():
    """A zero input makes the ReLU NNGP kernel (C_b = 0) singular while the NTK (lambda_b > 0) is not."""
    from ntkuq.infinite import nested_sweep_direct
    spec = MLPSpec(depth=2, activation="relu", C_b=0.0, C_W=2.0, lambda_b=1.0, lambda_W=1.0)
    x = np.vstack([X[:20], np.zeros((1, X.shape[1])), X[20:30]])
    y = np.vstack([Y[:20], np.zeros((1, 2)), Y[20:30]])
    fast = nested_sweep(spec, x, y, XT, YT, [10, 31], methods=("ntk",))
    slow = nested_sweep_direct(spec, x, y, XT, YT, [10, 31], methods=("ntk",))
    for p, q in zip(fast, slow):
        assert _close(p.stats.mu, q.stats.mu) and _close(p.stats.sigma, q.stats.sigma)


def test_float32_inputs_are_converted_exactly_tile_by_tile():
    """The calorimeter's float32 cell features are never copied whole to float64: the sweep converts tiles, so
    it gives bit for bit what the float64 copy of the same numbers gives (tiles smaller than the sets)."""
    x32, xt32 = X.astype(np.float32), XT.astype(np.float32)
    for spec in (MLPSpec.critical("relu", depth=3), MLPSpec.critical("tanh", depth=3)):
        a = nested_sweep(spec, x32, Y, xt32, YT, SIZES, block_size=8)
        b = nested_sweep(spec, x32.astype(np.float64), Y, xt32.astype(np.float64), YT, SIZES, block_size=8)
        assert [(p.method, p.n_train, p.stats) for p in a] == [(p.method, p.n_train, p.stats) for p in b]
