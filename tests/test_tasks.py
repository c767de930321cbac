"""ntkuq.data: one loader for the three tasks, nested reproducible subsets, disjoint pool and test set."""
import numpy as np
import pytest

from ntkuq.data import TaskData, load, tasks
from ntkuq.data.calorimeter import CalorimeterConfig


def _synthetic(n=50, d=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    return TaskData("toy", x, x[:, :1] * 2.0, rng.normal(size=(7, d)), rng.normal(size=(7, 1)))


def test_subsets_are_nested_and_reproducible():
    data = _synthetic()
    for draw in (0, 1, 5):
        prev = None
        for n in (1, 4, 17, 50):
            x, y = data.subset(n, draw)
            assert x.shape == (n, 3) and y.shape == (n, 1)
            np.testing.assert_array_equal(y, x[:, :1] * 2.0)  # inputs and targets stay paired
            if prev is not None:  # the smaller subset is a prefix of the larger one
                np.testing.assert_array_equal(x[:len(prev)], prev)
            prev = x
        np.testing.assert_array_equal(data.subset(17, draw)[0], _synthetic().subset(17, draw)[0])
    np.testing.assert_array_equal(data.subset(10, 0)[0], data.x_train[:10])  # draw 0: pool order
    assert not np.array_equal(data.subset(10, 1)[0], data.subset(10, 2)[0])
    full = data.subset(50, 3)[0]  # every draw is a permutation of the whole pool
    np.testing.assert_array_equal(np.sort(full, axis=0), np.sort(data.x_train, axis=0))
    for bad in (0, 51, 2.5):
        with pytest.raises(ValueError, match="n_train"):
            data.subset(bad)
    with pytest.raises(ValueError, match="balanced: .*no class labels"):
        data.subset(10, balanced=True)


def test_subset_draws_are_nested_subsets_with_the_draw_as_seed():
    """One subsetting rule: draw d > 0 is tasks.nested_subsets(seed=d); balanced prefixes use the labels."""
    data = _synthetic()
    for draw in (1, 7):
        (idx,) = tasks.nested_subsets(50, [20], seed=draw)
        np.testing.assert_array_equal(data.subset(20, draw)[0], data.x_train[idx])
    labels = np.arange(50) % 5
    labelled = TaskData("toy", data.x_train, data.y_train, data.x_test, data.y_test, {}, labels, None)
    x, _ = labelled.subset(10, 3, balanced=True)
    picked = [int(np.flatnonzero((data.x_train == row).all(axis=1))[0]) for row in x]
    assert np.bincount(labels[picked], minlength=5).tolist() == [2] * 5
    assert "toy: pool 50 x 3, test 7, k=1" in labelled.describe()


def test_coarse_calorimeter_covers_the_same_volume():
    cfg = CalorimeterConfig(hcal=True)
    assert tasks.coarse_calorimeter(cfg, 25, 25) is cfg
    coarse = tasks.coarse_calorimeter(cfg, 5, 10)
    assert coarse.ecal.shape == (5, 5, 10) and coarse.hcal == cfg.hcal
    assert coarse.ecal.n_cells * coarse.ecal.cell_size_mm == pytest.approx(25 * 5.1, rel=1e-12)
    assert coarse.ecal.depth_x0 == pytest.approx(cfg.ecal.depth_x0, rel=1e-12)
    assert coarse.ecal.replace(n_cells=25, cell_size_mm=5.1, n_layers=25, layer_depth_x0=1.0) == cfg.ecal


def test_calorimeter_task(tmp_path, monkeypatch):
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path))
    data = load("calorimeter", n_pool=30, n_test=12, seed=2, calorimeter_cells=5, calorimeter_layers=5)
    assert data.name == "calorimeter" and data.info["features"] == 125
    assert data.x_train.shape == (30, 125) and data.y_train.shape == (30, 1)
    assert data.x_test.shape == (12, 125) and data.y_test.shape == (12, 1)
    # the cell features are float32 numbers, kept as they are (half the memory); targets float64
    assert data.x_train.dtype == data.x_test.dtype == np.float32
    assert data.y_train.dtype == data.y_test.dtype == np.float64
    # pool and test set are different showers (streams 0 and 1 of the seed)
    assert not np.intersect1d(data.y_train, data.y_test).size
    assert not (data.x_train[:, None, :] == data.x_test[None, :, :]).all(axis=2).any()
    assert abs(data.y_train.mean()) < 1e-6  # targets standardized on the pool
    again = load("calorimeter", n_pool=30, n_test=12, seed=2, calorimeter_cells=5, calorimeter_layers=5)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    assert len(list((tmp_path / "calorimeter").glob("*.npz"))) == 2  # pool and test set cached


def test_image_task_pools_are_nested_and_disjoint_from_the_test_set(data_dir):
    small = load("mnist", n_pool=200, n_test=50, seed=3)
    big = load("mnist", n_pool=500, n_test=50, seed=3)
    np.testing.assert_array_equal(big.x_train[:200], small.x_train)  # a seeded permutation's prefixes
    np.testing.assert_array_equal(big.x_test, small.x_test)  # the test set does not depend on the pool
    other = load("mnist", n_pool=200, n_test=50, seed=4)
    assert not np.array_equal(other.x_train, small.x_train)
    assert small.x_train.min() >= 0 and small.x_train.max() <= 1  # pixels in [0, 1] by default
    assert small.info["target"] == "one-hot (k = 10)" and np.all(small.y_train.sum(axis=1) == 1)
    np.testing.assert_array_equal(small.labels_train, small.y_train.argmax(axis=1))  # labels follow the pool order
    np.testing.assert_array_equal(small.labels_test, small.y_test.argmax(axis=1))
    # the pool comes from the training split, the test set from the test split: no image is in both
    pool = {row.tobytes() for row in big.x_train}
    assert not any(row.tobytes() in pool for row in big.x_test)


def test_bad_arguments(data_dir):
    with pytest.raises(ValueError, match="task"):
        load("imagenet", n_pool=10, n_test=10)
    with pytest.raises(ValueError, match="n_pool"):
        load("mnist", n_pool=60_001, n_test=10)
