"""ntkuq.study.pointfiles on its own: seal/verify/read_point round trips and the damage they must detect.

tests/test_store_integrity.py checks the same through `results.ResultStore`; here the module's functions are
called directly, with the reasons they give and the files they set aside.
"""
import json
import warnings

import numpy as np
import pytest

from ntkuq.errors import PointFileWarning
from ntkuq.study import BAD_SUFFIX, CHECKSUM_FIELD, canonical, checksum, read_point, seal
from ntkuq.study.pointfiles import verify

KEY = "abc123"
ROW = {"key": KEY, "task": "t", "n_train": 10, "mu": 0.1 + 1e-17, "sigma": 0.2, "params": {"depth": 3}}


def test_seal_then_verify_round_trips_exactly():
    text = seal(ROW)
    on_disk = json.loads(text)
    assert on_disk[CHECKSUM_FIELD].startswith("sha256:") and len(on_disk[CHECKSUM_FIELD]) == len("sha256:") + 64
    row, why = verify(text, KEY)
    assert why == "" and row == ROW  # the checksum is removed, every value (float bits included) is back


def test_checksum_ignores_its_own_field_and_key_order():
    reordered = dict(reversed(list(ROW.items())))
    assert checksum(reordered) == checksum(ROW)
    assert checksum({**ROW, CHECKSUM_FIELD: "sha256:whatever"}) == checksum(ROW)
    assert checksum({**ROW, "sigma": 0.21}) != checksum(ROW)
    # sealing an already sealed row (e.g. with a stale checksum) gives the same file
    assert seal({**ROW, CHECKSUM_FIELD: "sha256:" + "0" * 64}) == seal(ROW)


def test_canonical_writes_numpy_numbers_as_floats():
    text = canonical({"b": np.float64(0.25), "a": np.float32(0.5)})
    assert text == '{"a": 0.5, "b": 0.25}'


def test_every_changed_digit_is_detected():
    """Changing any one digit of the file (a value, the key or the checksum itself) is detected."""
    text = seal(ROW)
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    assert len(digits) > 30
    for i in digits:
        changed = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:]
        row, why = verify(changed, KEY)
        assert row is None and why, f"byte {i} changed undetected"


def test_foreign_key_is_detected_even_with_a_valid_checksum():
    text = seal({**ROW, "key": "other"})
    assert verify(text, "other")[1] == ""
    row, why = verify(text, KEY)
    assert row is None and "foreign" in why and "'other'" in why


@pytest.mark.parametrize("text, reason", [(lambda t: t[: len(t) // 2], "not valid JSON"),
                                          (lambda t: "[1, 2]", "expected a JSON object, got list"),
                                          (lambda t: t.replace('"sigma": 0.2', '"sigma": 0.3'), "checksum mismatch")])
def test_verify_names_the_reason(text, reason):
    row, why = verify(text(seal(ROW)), KEY)
    assert row is None and reason in why


def test_file_without_checksum_is_refused_until_resealed(tmp_path):
    from ntkuq.study import reseal

    legacy = json.dumps(ROW)
    row, why = verify(legacy, KEY)
    assert row is None and "no checksum" in why and "reseal" in why
    assert verify(legacy, "other")[0] is None
    (tmp_path / f"{KEY}.json").write_text(legacy)
    (tmp_path / "sealed.json").write_text(seal({**ROW, "key": "sealed"}))
    assert reseal(tmp_path) == 1 and reseal(tmp_path) == 0
    assert verify((tmp_path / f"{KEY}.json").read_text(), KEY) == (ROW, "")
    (tmp_path / "wrongname.json").write_text(legacy)
    with pytest.raises(ValueError, match="wrongname"):
        reseal(tmp_path)


def test_read_point_returns_the_row_and_none_for_a_missing_file(tmp_path):
    path = tmp_path / f"{KEY}.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_point(path) is None  # missing: no warning, nothing created
        path.write_text(seal(ROW))
        assert read_point(path) == ROW
    assert path.exists()


@pytest.mark.parametrize("content", [b'{"key": "abc123", "mu": 0.1, "checksum": "sha256:00"}', b"\xff\xfe\x00bad"])
def test_read_point_warns_and_sets_a_bad_file_aside(tmp_path, content):
    path = tmp_path / f"{KEY}.json"
    path.write_bytes(content)
    with pytest.warns(PointFileWarning, match=f"{KEY}.json"):
        assert read_point(path) is None
    bad = tmp_path / f"{KEY}.json{BAD_SUFFIX}"
    assert not path.exists() and bad.read_bytes() == content  # kept, never deleted
