"""ntkuq._src.storage: the one cache-folder rule and the one atomic write used by data, results and the calorimeter."""
import io
from pathlib import Path

import numpy as np
import pooch
import pytest

from ntkuq._src import storage
from ntkuq._src.storage import atomic_write, atomic_write_text, cache_dir
from ntkuq.data import calorimeter as cal
from ntkuq.data import images as data


def test_cache_dir_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.setenv("NTKUQ_CACHE_DIR", "~/somewhere")
    assert cache_dir() == Path.home() / "somewhere"
    monkeypatch.delenv("NTKUQ_CACHE_DIR")
    assert cache_dir() == Path(pooch.os_cache("ntkuq"))
    monkeypatch.setenv("NTKUQ_CACHE_DIR", "")  # empty means unset
    assert cache_dir() == Path(pooch.os_cache("ntkuq"))


def test_one_rule_for_downloads_and_showers():
    """The data loaders and the calorimeter cache resolve the folder with the same function."""
    assert data.cache_dir is storage.cache_dir
    assert cal.default_cache_dir is storage.cache_dir


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "new" / "folder" / "f.txt"
    atomic_write_text(path, "first")
    assert path.read_text() == "first"
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def half_then_fail(fh):
        fh.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with pytest.raises(TypeError):  # a failure inside the write call itself
        atomic_write_text(path, 123)
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_binary_write_round_trips_an_npz(tmp_path):
    path = tmp_path / "a.npz"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_write(path, lambda fh: np.savez(fh, a=a), binary=True)
    with np.load(path) as f:
        np.testing.assert_array_equal(f["a"], a)
    with pytest.raises(TypeError):  # text mode refuses bytes: the mode is the one asked for
        atomic_write(tmp_path / "b.bin", lambda fh: fh.write(b"x"))
    assert not (tmp_path / "b.bin").exists()
    buf = io.BytesIO()
    np.savez(buf, a=a)
    assert path.stat().st_size == len(buf.getvalue())


def test_write_all_is_all_or_nothing(tmp_path):
    """Several files: all renamed after all are written; a failure leaves every old file and no temporary."""
    from ntkuq._src.storage import atomic_write_all

    a, b = tmp_path / "a.json", tmp_path / "sub" / "b.csv"
    atomic_write_all({str(a): b"one", str(b): b"two"})
    assert a.read_bytes() == b"one" and b.read_bytes() == b"two"
    with pytest.raises(TypeError):
        atomic_write_all({str(a): b"new", str(b): "not bytes"})
    assert a.read_bytes() == b"one" and b.read_bytes() == b"two"  # the first file was not replaced either
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.csv", "sub"]
