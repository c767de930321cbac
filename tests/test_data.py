"""Tests for ntkuq.data: parsers, file resolution and integrity, the real MNIST/CIFAR-10, tasks and subsets."""
import dataclasses
import gzip
import hashlib
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pooch
import pytest

from ntkuq import data
from ntkuq.data import images
from ntkuq.errors import DataIntegrityError, DataUnavailableError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TEST_LABELS = "mnist/t10k-labels-idx1-ubyte.gz"
CIFAR_TEST = "cifar10/cifar-10-batches-bin/test_batch.bin"


def write_idx_gz(path: Path, arr: np.ndarray, magic: int = None, cut: int = 0) -> Path:
    """Write a uint8 array as gzip IDX (optionally with another magic number or `cut` bytes missing)."""
    magic = 0x800 + arr.ndim if magic is None else magic
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(raw[:len(raw) - cut])
    return path


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Empty NTKUQ_DATA_DIR and cache in tmp_path; pooch.retrieve fails as if offline and records the URLs."""
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise ConnectionError(f"offline test: {url}")

    monkeypatch.setattr(pooch, "retrieve", offline)
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("NTKUQ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "cache"))
    return calls


# ------------------------------------------------------------------------------------------ parsers

def test_parse_idx_roundtrip(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], np.uint8)
    np.testing.assert_array_equal(data.parse_idx_gz(write_idx_gz(tmp_path / "i.gz", images), 0x803), images)
    np.testing.assert_array_equal(data.parse_idx_gz(write_idx_gz(tmp_path / "l.gz", labels), 0x801), labels)


def test_parse_idx_truncated_raises(tmp_path):
    images = np.ones((3, 4, 4), np.uint8)
    with pytest.raises(DataIntegrityError, match="data bytes"):
        data.parse_idx_gz(write_idx_gz(tmp_path / "short.gz", images, cut=5), 0x803)
    good = write_idx_gz(tmp_path / "good.gz", images).read_bytes()
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])  # truncated gzip stream
    with pytest.raises(DataIntegrityError, match="cut.gz"):
        data.parse_idx_gz(tmp_path / "cut.gz", 0x803)


def test_parse_idx_bad_magic_raises(tmp_path):
    path = write_idx_gz(tmp_path / "labels.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataIntegrityError, match="magic.*0x803.*0x801"):
        data.parse_idx_gz(path, 0x803)


def test_parse_cifar_bin(tmp_path):
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([np.array([[3], [8]], np.uint8), chw.reshape(2, -1)], axis=1)
    (tmp_path / "b.bin").write_bytes(records.tobytes())
    images, labels = data.parse_cifar_bin(tmp_path / "b.bin")
    assert images.shape == (2, 32, 32, 3) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [3, 8])
    np.testing.assert_array_equal(images, chw.transpose(0, 2, 3, 1))
    (tmp_path / "t.bin").write_bytes(records.tobytes()[:-1])
    with pytest.raises(DataIntegrityError, match="t.bin.*multiple of the 3073"):
        data.parse_cifar_bin(tmp_path / "t.bin")
    (tmp_path / "e.bin").write_bytes(b"")
    with pytest.raises(DataIntegrityError, match="e.bin"):
        data.parse_cifar_bin(tmp_path / "e.bin")


# ------------------------------------------------------------------------------ files and integrity

def test_hash_mismatch_names_file(tmp_path, no_network):
    bad = write_idx_gz(tmp_path / "data" / MNIST_TEST_LABELS, np.zeros(10, np.uint8))
    write_idx_gz(tmp_path / "data/mnist/t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(DataIntegrityError) as err:
        data.data_file(MNIST_TEST_LABELS)
    assert str(bad) in str(err.value) and data.SHA256[MNIST_TEST_LABELS] in str(err.value)
    assert actual in str(err.value)
    with pytest.raises(DataIntegrityError, match="t10k-images"):
        data.load_raw.__wrapped__("mnist", "test")  # bypass the in-memory cache
    assert no_network == []  # a file found in NTKUQ_DATA_DIR is never downloaded


def test_sha256_memoized_by_path_size_mtime(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    before = images._sha256_memo.cache_info()
    assert data.sha256(path) == data.sha256(path) == hashlib.sha256(b"abc").hexdigest()
    after = images._sha256_memo.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    path.write_bytes(b"abcd")
    assert data.sha256(path) == hashlib.sha256(b"abcd").hexdigest()


@pytest.mark.parametrize("rel, url", [(MNIST_TEST_LABELS, data.MNIST_URL + "t10k-labels-idx1-ubyte.gz"),
                                      (CIFAR_TEST, data.CIFAR10_URL)])
def test_offline_and_missing_raises_unavailable(tmp_path, no_network, rel, url):
    with pytest.raises(DataUnavailableError) as err:
        data.data_file(rel)
    msg = str(err.value)
    assert url in msg and "NTKUQ_DATA_DIR" in msg and str(tmp_path / "cache") in msg
    assert no_network == [url]


def test_offline_load_raw_raises_unavailable(no_network):
    with pytest.raises(DataUnavailableError, match="cvdf-datasets/mnist"):
        data.load_raw.__wrapped__("mnist", "test")


def test_download_path_fills_and_repairs_the_cache(data_dir, tmp_path, monkeypatch):
    """pooch.retrieve replaced by a copy from the real files (and a real pooch.Untar); no network."""
    calls = []

    def fake_retrieve(url, known_hash, fname, path, processor=None, **kwargs):
        calls.append(url)
        Path(path).mkdir(parents=True, exist_ok=True)
        target = Path(path) / fname
        if url == data.CIFAR10_URL:
            with tarfile.open(target, "w") as tar:
                tar.add(data_dir / CIFAR_TEST, arcname="cifar-10-batches-bin/test_batch.bin")
            return processor(str(target), "download", None)
        shutil.copy(data_dir / "mnist" / fname, target)
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    monkeypatch.setenv("NTKUQ_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "cache"))
    assert data.data_file(MNIST_TEST_LABELS) == tmp_path / "cache" / MNIST_TEST_LABELS
    assert data.data_file(MNIST_TEST_LABELS) == tmp_path / "cache" / MNIST_TEST_LABELS
    assert calls == [data.MNIST_URL + "t10k-labels-idx1-ubyte.gz"]  # the second call used the cache
    cached = data.data_file(CIFAR_TEST)
    assert cached == tmp_path / "cache" / CIFAR_TEST and len(calls) == 2
    cached.write_bytes(b"\0" * data.CIFAR_RECORD)  # corrupt the cached copy: it is fetched again
    assert data.sha256(data.data_file(CIFAR_TEST)) == data.SHA256[CIFAR_TEST] and len(calls) == 3


# ---------------------------------------------------------------------------------------- real data

def test_mnist_raw(data_dir):
    for split, n, counts in (("train", 60000, MNIST_TRAIN_COUNTS), ("test", 10000, MNIST_TEST_COUNTS)):
        x, y = data.load_raw("mnist", split)
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
        assert np.bincount(y, minlength=10).tolist() == counts
    x, y = data.load_raw("mnist", "train")
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x.mean() / 255 == pytest.approx(0.1307, abs=1e-4)
    assert x.std() / 255 == pytest.approx(0.3081, abs=1e-4)
    assert data.load_raw("mnist", "train")[0] is x and not x.flags.writeable  # cached, read-only


def test_cifar10_raw(data_dir):
    x, y = data.load_raw("cifar10", "train")
    assert x.shape == (50000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [5000] * 10
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    np.testing.assert_allclose(x.reshape(-1, 3).mean(axis=0) / 255, [0.4914, 0.4822, 0.4465], atol=1e-4)
    x_test, y_test = data.load_raw("cifar10", "test")
    assert x_test.shape == (10000, 32, 32, 3) and np.bincount(y_test).tolist() == [1000] * 10


def test_load_task_features_targets_and_test_subset(data_dir):
    ds = data.load_task("mnist", downsample=4, standardize=None)
    raw_x, raw_y = data.load_raw("mnist", "train")
    assert ds.x_train.shape == (60000, 49) and ds.x_test.shape == (1000, 49) and ds.x_train.dtype == np.float64
    np.testing.assert_allclose(ds.x_train[0], raw_x[0].reshape(7, 4, 7, 4).mean(axis=(1, 3)).ravel() / 255)
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1
    np.testing.assert_array_equal(ds.y_train.argmax(axis=1), raw_y)
    np.testing.assert_array_equal(ds.y_train.sum(axis=1), 1.0)
    idx = np.random.default_rng(0).permutation(10000)[:1000]
    np.testing.assert_array_equal(ds.labels_test, data.load_raw("mnist", "test")[1][idx])
    again = data.load_task("mnist", downsample=4, standardize=None, n_test=500)
    np.testing.assert_array_equal(again.x_test, ds.x_test[:500])  # deterministic, prefix of the same order
    assert "mnist" in ds.describe() and "60000" in ds.describe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    centered = data.load_task("mnist", downsample=28, n_test=None, center_targets=True)
    assert centered.x_test.shape == (10000, 1) and len(set(centered.labels_test.tolist())) == 10
    np.testing.assert_allclose(centered.y_train.sum(axis=1), 0.0, atol=1e-12)
    assert set(np.unique(centered.y_train).round(12)) == {-0.1, 0.9}


def test_standardization(data_dir):
    plain = data.load_task("mnist", standardize=None, n_test=None)
    ds = data.load_task("mnist", standardize="feature", n_test=None)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-10)
    mean, std = plain.x_train.mean(axis=0), plain.x_train.std(axis=0)
    live = std > 1e-8
    np.testing.assert_allclose(ds.x_train.std(axis=0)[live], 1.0)
    expected = (plain.x_test[:, live] - mean[live]) / std[live]  # the test set uses the training statistics
    np.testing.assert_allclose(ds.x_test[:, live], expected)
    assert (~live).sum() == 67 and np.all(ds.x_train[:, ~live] == 0)  # pixels never lit in training
    np.testing.assert_array_equal(ds.x_test[:, ~live], plain.x_test[:, ~live])  # only centred (mean 0): finite
    per_image = data.load_task("mnist", downsample=4, standardize="image", n_test=10)
    np.testing.assert_allclose(per_image.x_train.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose((per_image.x_train ** 2).mean(axis=1), 1.0)


def test_cifar_grayscale_downsample(data_dir):
    ds = data.load_task("cifar10", grayscale=True, downsample=8, standardize=None, n_test=10)
    assert ds.x_train.shape == (50000, 16) and ds.x_test.shape == (10, 16)
    block = data.load_raw("cifar10", "train")[0][3, 8:16, :8].astype(np.float64) / 255  # image 3, row 1, col 0
    assert ds.x_train[3, 4] == pytest.approx((block @ [0.299, 0.587, 0.114]).mean())


# ------------------------------------------------------------------------------------------ subsets

def test_nested_subsets_deterministic_and_nested():
    subsets = data.nested_subsets(1000, [10, 100, 500], seed=3)
    assert [len(s) for s in subsets] == [10, 100, 500]
    for small, big in zip(subsets, subsets[1:]):
        np.testing.assert_array_equal(big[: len(small)], small)
    assert len(np.unique(subsets[-1])) == 500 and subsets[-1].min() >= 0 and subsets[-1].max() < 1000
    np.testing.assert_array_equal(data.nested_subsets(1000, [500], seed=3)[0], subsets[-1])
    assert not np.array_equal(data.nested_subsets(1000, [500], seed=4)[0], subsets[-1])


def test_nested_subsets_balanced_every_prefix():
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), [5, 20, 30, 30, 40, 40, 50, 60, 70, 155]))
    (order,) = data.nested_subsets(len(labels), [len(labels)], seed=2, labels=labels)
    assert sorted(order.tolist()) == list(range(len(labels)))
    counts = np.cumsum(np.eye(10, dtype=int)[labels[order]], axis=0)  # class counts of every prefix
    open_min = np.where(counts < np.bincount(labels), counts, 10 ** 9).min(axis=1)
    assert np.all(open_min >= counts.max(axis=1) - 1)  # only exhausted classes fall behind
    small, big = data.nested_subsets(len(labels), [37, 120], seed=2, labels=labels)
    np.testing.assert_array_equal(big[:37], small)


def test_balanced_subset_on_mnist(data_dir):
    ds = data.load_task("mnist", downsample=28, standardize=None, n_test=10)
    x, y = ds.subset(100, 5, balanced=True)
    assert x.shape == (100, 1) and np.bincount(y.argmax(axis=1)).tolist() == [10] * 10
    x2, _ = ds.subset(1000, 5, balanced=True)
    np.testing.assert_array_equal(x2[:100], x)


def test_subset_sizes():
    assert data.subset_sizes(10, 1000, 5) == [10, 32, 100, 316, 1000]
    assert data.subset_sizes(1, 3, 10) == [1, 2, 3]
    sizes = data.subset_sizes(7, 60000, 30)
    assert sizes[0] == 7 and sizes[-1] == 60000 and all(a < b for a, b in zip(sizes, sizes[1:]))


# ------------------------------------------------------------------------------------ bad parameters

TINY = data.TaskData("tiny", np.zeros((20, 3)), np.zeros((20, 10)), np.zeros((2, 3)), np.zeros((2, 10)), {},
                     np.arange(20) % 10, np.arange(2))


@pytest.mark.parametrize("call, match", [
    (lambda: data.load_raw("svhn", "train"), "name"),
    (lambda: data.load_raw("mnist", "valid"), "split"),
    (lambda: data.load_task("svhn"), "name"),
    (lambda: data.load_task("mnist", standardize="pixel"), "standardize"),
    (lambda: data.load_task("mnist", downsample=3), "downsample.*28"),
    (lambda: data.load_task("cifar10", downsample=5), "downsample.*32"),
    (lambda: data.load_task("mnist", downsample=0), "downsample"),
    (lambda: data.nested_subsets(100, [10, 10]), "sizes.*increasing"),
    (lambda: data.nested_subsets(100, [20, 10]), "sizes.*increasing"),
    (lambda: data.nested_subsets(100, [0, 5]), "sizes.*positive"),
    (lambda: data.nested_subsets(100, []), "sizes"),
    (lambda: data.nested_subsets(100, [10, 101]), "N_D = 101.*pool"),
    (lambda: data.nested_subsets(0, [1]), "n_pool"),
    (lambda: data.nested_subsets(100, [10], labels=np.zeros(99)), "labels"),
    (lambda: TINY.subset(21), "n_train: .*pool"),
    (lambda: data.subset_sizes(0, 10, 3), "n_min"),
    (lambda: data.subset_sizes(10, 5, 3), "n_max"),
    (lambda: data.subset_sizes(1, 10, 0), "count"),
])
def test_bad_parameters_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("n_test", [0, 10001, 2.5, -1])
def test_bad_n_test_raises_value_error(data_dir, n_test):
    with pytest.raises(ValueError, match="n_test"):
        data.load_task("mnist", n_test=n_test, downsample=28)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_corrupted_cache_file_offline_is_reported_as_corrupted(no_network, tmp_path, damage):
    """A damaged file in the download cache with no network: 'corrupted' naming the file, not 'not found'."""
    source = Path("/work/shared/data") / MNIST_TEST_LABELS
    if not source.is_file():
        pytest.skip("shared MNIST files not available")
    cached = tmp_path / "cache" / MNIST_TEST_LABELS
    cached.parent.mkdir(parents=True)
    blob = bytearray(source.read_bytes())
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    else:
        blob[100:104] = b"XXXX"
    cached.write_bytes(bytes(blob))
    with pytest.raises(DataIntegrityError, match="corrupted") as err:
        data.data_file(MNIST_TEST_LABELS)
    assert str(cached) in str(err.value) and "not found" not in str(err.value).split("\n")[0]
    assert cached.with_name(cached.name + ".corrupt").is_file()  # kept aside, not deleted
    with pytest.raises(DataIntegrityError, match="corrupted earlier"):  # a second call still says why
        data.data_file(MNIST_TEST_LABELS)
