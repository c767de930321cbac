"""Memory estimates before large allocations: a clear refusal naming the sizes and what would fit."""
import re

import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq._src import budget
from ntkuq.errors import TooLargeError
from ntkuq.infinite import sweep_bytes

GIB = 2**30


@pytest.fixture
def limit(monkeypatch):
    """Set the memory budget (GiB) through the documented environment variable."""
    def set_limit(gib):
        monkeypatch.setenv("NTKUQ_MEMORY_LIMIT_GIB", str(gib))
        return gib * GIB
    return set_limit


@pytest.fixture
def no_kernels(monkeypatch):
    """Fail if any kernel is computed: the refusal must come before the allocation."""
    import importlib

    sweep = importlib.import_module("ntkuq.infinite.sweep")
    predict = importlib.import_module("ntkuq.infinite.predict")

    def boom(*a, **k):
        raise AssertionError("kernels were computed before the memory check")
    monkeypatch.setattr(sweep, "train_test_kernels", boom)
    monkeypatch.setattr(sweep, "sweep_stats", boom)
    monkeypatch.setattr(predict, "train_test_kernels", boom)


def test_budget_is_a_documented_fraction_or_the_environment(monkeypatch):
    monkeypatch.delenv("NTKUQ_MEMORY_LIMIT_GIB", raising=False)
    assert 0 < budget.MEMORY_FRACTION < 1
    assert 0 < budget.memory_limit_bytes()
    monkeypatch.setenv("NTKUQ_MEMORY_LIMIT_GIB", "2.5")
    assert budget.memory_limit_bytes() == 2.5 * GIB
    monkeypatch.setenv("NTKUQ_MEMORY_LIMIT_GIB", "lots")
    with pytest.raises(ValueError, match="NTKUQ_MEMORY_LIMIT_GIB"):
        budget.memory_limit_bytes()


def test_nested_sweep_refuses_before_allocating(limit, no_kernels):
    from ntkuq.infinite import nested_sweep

    cap = limit(0.5)
    n, t = 3000, 10
    x = np.random.default_rng(0).standard_normal((n, 2))
    with pytest.raises(TooLargeError) as err:
        nested_sweep(MLPSpec(), x, x[:, :1], x[:t], x[:t, :1], [100, n])
    msg = str(err.value)
    assert "nested_sweep" in msg and f"N_D = {n}" in msg and f"N_T = {t}" in msg and "GiB" in msg
    fit = int(re.search(r"Would fit: N_D = (\d+)", msg).group(1))

    def est(m):  # the sizes below m are kept, the largest becomes m
        return sweep_bytes(m, t, sizes=[s for s in (100, n) if s < m] + [m], n_features=2)
    assert 1 <= fit < n and est(fit) <= cap < est(fit + 1)


def test_calorimeter_paper_sweep_counts_its_float32_inputs_once():
    """25^3 = 15,625 calorimeter cells, N_D = 25,000, N_T = 10^4: the inputs (float32, converted tile by tile) are
    2.2 GB held once; three float64 copies (the former count) would add 11 GB and not fit 20 GiB."""
    from ntkuq.data import subset_sizes

    sizes = subset_sizes(100, 25_000, 12)
    f32 = sweep_bytes(25_000, 10_000, sizes=sizes, n_features=15_625, input_itemsize=4)
    f64 = sweep_bytes(25_000, 10_000, sizes=sizes, n_features=15_625, input_itemsize=8)
    assert f64 - f32 == pytest.approx(35_000 * 15_625 * 4)
    assert f32 < 17 * GIB
    assert f32 + 2 * 35_000 * 15_625 * 8 > 20 * GIB


def test_paper_sweep_fits_20_gib_and_a_smaller_budget_refuses(limit, no_kernels):
    """N_D = 25,000, N_T = 10^4, 12 sizes, 784 features (the paper preset): under 20 GiB; 12 GiB refuses naming
    the sizes and what fits, before any kernel (the test-test block is never counted whole: N_T^2 words = 0.75 GiB)."""
    from ntkuq.data import subset_sizes
    from ntkuq.infinite import nested_sweep

    sizes = subset_sizes(100, 25_000, 12)
    need = sweep_bytes(25_000, 10_000, sizes=sizes, n_features=784)
    assert 13 * GIB < need < 20 * GIB
    assert sweep_bytes(25_000, 10_000, sizes=sizes, n_features=784, diag_reg=1e-6) > need  # keeps V_n too
    limit(12)

    x = np.broadcast_to(np.float64(0.5), (25_000, 784))
    xt = np.broadcast_to(np.float64(0.5), (10_000, 784))
    with pytest.raises(TooLargeError) as err:
        nested_sweep(MLPSpec(), x, x[:, :10], xt, xt[:, :10], sizes)
    msg = str(err.value)
    assert "N_D = 25000" in msg and "N_T = 10000" in msg and "Would fit: N_D = " in msg and "N_T = " in msg


@pytest.mark.parametrize("name, extra", [("converged_steps", {}), ("deviation_curve", {"steps": [10, 20]})])
def test_converged_steps_refuses_before_the_eigendecomposition(limit, monkeypatch, name, extra):
    from ntkuq.infinite import TrainTestKernels, convergence

    n, t = 4000, 50
    kern = TrainTestKernels(MLPSpec(), np.zeros((t, 2)), np.eye(n), np.eye(n), np.zeros((n, t)), np.zeros((n, t)))
    monkeypatch.setattr(convergence, "_Evaluator", lambda *a, **k: pytest.fail("eigendecomposition started"))
    limit(0.4)
    with pytest.raises(TooLargeError, match=rf"{name} with N_D = 4000, N_T = 50 .*Would fit: N_D = \d+"):
        getattr(convergence, name)(kern, np.zeros((n, 1)), np.zeros((t, 1)), eta=0.1, **extra)


def test_train_ensemble_refuses_huge_members_and_suggests_a_width(limit):
    from ntkuq.finite import train_ensemble

    limit(1.0)
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(TooLargeError) as err:
        train_ensemble(MLPSpec(width=200_000), x, x[:, :1], x, x[:, :1], n_members=64, steps=100, eta=1e-3,
                       progress=False)
    msg = str(err.value)
    assert "M = 64" in msg and "width 200000" in msg and "N_D = 20" in msg and "min" in msg
    width = int(re.search(r"Would fit: width (\d+)", msg).group(1))
    assert 1 <= width < 200_000


def test_train_ensemble_suggests_a_smaller_chunk(limit):
    from ntkuq.finite import train_ensemble

    limit(1.0)
    x = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(TooLargeError, match=r"Would fit: chunk = \d+ members"):
        train_ensemble(MLPSpec(width=2000), x, x[:, :1], x, x[:, :1], n_members=1000, steps=10, eta=1e-3,
                       chunk=1000, progress=False)


def test_width_sweep_refuses_before_training_any_width(limit, monkeypatch):
    from ntkuq.finite import widths
    from ntkuq.infinite import LossStats

    monkeypatch.setattr(widths, "train_ensemble", lambda *a, **k: pytest.fail("a width was trained"))
    limit(1.0)
    x = np.random.default_rng(0).standard_normal((20, 3))
    inf = LossStats(1.0, 0.1, 20, 1, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(TooLargeError, match="width_sweep .*width 500000"):
        widths.width_sweep(MLPSpec(), x, x[:, :1], x, x[:, :1], [64, 500_000], members=8, steps=10, eta=1e-3,
                           infinite=inf)


def test_finite_width_study_refuses_before_computing(limit, no_kernels):
    from ntkuq.data import TaskData
    from ntkuq.study import finite_width_study

    limit(0.5)
    rng = np.random.default_rng(0)
    data = TaskData("toy", rng.standard_normal((4000, 2)), rng.standard_normal((4000, 1)),
                    rng.standard_normal((10, 2)), rng.standard_normal((10, 1)))
    with pytest.raises(TooLargeError, match="finite_width_study .*N_D = 4000"):
        finite_width_study(data, MLPSpec(width=8), [100, 4000], members=4, steps="auto")
    with pytest.raises(TooLargeError, match="finite_width_study .*largest ensemble"):
        finite_width_study(data, MLPSpec(width=300_000), [10], members=64, steps=5, with_infinite=False)


def test_small_runs_are_not_refused(limit):
    from ntkuq.infinite import nested_sweep

    limit(2.0)
    x = np.random.default_rng(0).standard_normal((30, 2))
    assert len(nested_sweep(MLPSpec(), x, x[:, :1], x[:5], x[:5, :1], [10, 30])) == 4


@pytest.mark.parametrize("call", ["kernels", "train_test_kernels"])
def test_kernel_matrices_too_large_refused_before_allocating(monkeypatch, call):
    """2 x 10^5 points would need over a TiB: refused with the sizes and what fits, before any allocation."""
    from ntkuq import MLPSpec
    from ntkuq.infinite import kernels, train_test_kernels

    monkeypatch.setenv("NTKUQ_MEMORY_LIMIT_GIB", "4")
    x = np.zeros((200000, 3))
    with pytest.raises(TooLargeError, match="200000") as err:
        kernels(MLPSpec(), x) if call == "kernels" else train_test_kernels(MLPSpec(), x, np.ones((5, 3)))
    assert "Would fit" in str(err.value) and "GiB" in str(err.value)
