"""The results store verifies what it reads: checksums, keys, bad files set aside; files are group-readable."""
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from ntkuq._src.storage import atomic_write_text
from ntkuq.errors import PointFileWarning
from ntkuq.study import CHECKSUM_FIELD, ResultStore, checksum, point_key

REPO = Path(__file__).resolve().parents[1]
ROW = dict(task="t", method="ntk", width="inf", optimizer="gd", n_train=10, draw=0, mu=0.1 + 1e-17, sigma=0.2,
           eps=2.0, params={"spec": {"depth": 3}})


def _store(tmp_path):
    store = ResultStore(tmp_path / "points")
    key = point_key(n=10)
    store.put(key, ROW)
    return store, key, tmp_path / "points" / f"{key}.json"


def test_written_file_carries_checksum_and_key(tmp_path):
    store, key, path = _store(tmp_path)
    on_disk = json.loads(path.read_text())
    assert on_disk["key"] == key
    assert on_disk[CHECKSUM_FIELD] == checksum(on_disk)
    got = store.get(key)
    assert CHECKSUM_FIELD not in got and got["mu"] == ROW["mu"] and got["key"] == key
    assert [r["key"] for r in store.rows()] == [key]


@pytest.mark.parametrize("damage", ["truncated", "edited", "foreign", "not_object", "checksum_edited"])
def test_bad_point_file_is_named_set_aside_and_recomputed(tmp_path, damage):
    store, key, path = _store(tmp_path)
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "edited":
        path.write_text(text.replace('"sigma": 0.2', '"sigma": 0.3'))
    elif damage == "foreign":  # a valid file of another point copied under this name
        other = point_key(n=11)
        store.put(other, ROW)
        shutil.copy(path.with_name(f"{other}.json"), path)
    elif damage == "not_object":
        path.write_text("[1, 2]")
    else:
        row = json.loads(text)
        row[CHECKSUM_FIELD] = "sha256:" + "0" * 64
        path.write_text(json.dumps(row))
    with pytest.warns(PointFileWarning, match=path.name):
        assert store.get(key) is None  # recomputed by the caller, never silently used
    assert not path.exists() and path.with_name(path.name + ".bad").exists()
    store.put(key, ROW)  # the recomputed point
    assert store.get(key)["sigma"] == 0.2


def test_rows_skip_and_set_aside_bad_files(tmp_path):
    store, key, path = _store(tmp_path)
    path.write_text("{")
    with pytest.warns(PointFileWarning):
        assert store.rows() == []
    assert path.with_name(path.name + ".bad").exists()


def test_legacy_files_without_checksum_are_refused(tmp_path):
    folder = tmp_path / "points"
    folder.mkdir()
    key = point_key(n=1)
    (folder / f"{key}.json").write_text(json.dumps({**ROW, "key": key}, sort_keys=True))
    with pytest.warns(PointFileWarning, match="no checksum"):
        assert ResultStore(folder).get(key) is None
    assert (folder / f"{key}.json.bad").exists()


def test_every_committed_point_carries_its_checksum():
    for folder in (REPO / "results").glob("*/points"):
        unsealed = [p.name for p in folder.glob("*.json") if '"checksum"' not in p.read_text()]
        assert not unsealed, f"{folder}: {len(unsealed)} files without a checksum, e.g. {unsealed[:2]}"


def test_committed_cpu_points_still_read(recwarn):
    folder = REPO / "results" / "cpu" / "points"
    if not folder.is_dir():
        pytest.skip("no committed cpu points")
    files = sorted(folder.glob("*.json"))
    rows = ResultStore(folder).rows()
    assert len(rows) == len(files) > 0
    assert not [w for w in recwarn if issubclass(w.category, PointFileWarning)]
    assert not list(folder.glob("*.bad"))


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    old = os.umask(0o022)
    try:
        ResultStore(tmp_path / "p").put("k", ROW)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p" / "k.json").stat().st_mode) == 0o644


def test_cli_outputs_respect_umask(tmp_path):
    from ntkuq._src.storage import atomic_write_all as write_all  # what ntkuq.estimate.cli writes its outputs with

    old = os.umask(0o002)
    try:
        write_all({str(tmp_path / "r.json"): b"{}"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o664


def test_store_folder_that_is_a_file_is_refused_naming_it(tmp_path):
    from ntkuq.study import ResultStore

    f = tmp_path / "points"
    f.write_text("not a folder")
    with pytest.raises(ValueError, match="folder"):
        ResultStore(f)
