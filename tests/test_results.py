"""ntkuq.study: atomic per-point rows, stable keys, the tidy CSV and its reader."""
import json

import pytest

from ntkuq.study import COLUMNS, ResultStore, environment, point_key, read_csv, to_csv
from ntkuq.study import store as results


def _row(task="mnist", n_train=100, width="inf", method="ntk", draw=0, **extra):
    row = dict(task=task, n_train=n_train, width=width, optimizer="gd", method=method, draw=draw,
               mu=0.123456789012345, sigma=0.0123, eps=0.0123 / 0.123456789012345, mu_err=1e-4,
               sigma_err=2e-5, eps_err=3e-4, members=16, steps=1000, seed=0, wall_s=1.5,
               device="cpu:cpu")
    row.update(extra)
    return row


def test_point_key_is_stable_and_order_free():
    key = point_key(task="mnist", n_train=100, spec={"depth": 3, "C_W": 2.0}, seed=0)
    # the pinned value: a changed hash would orphan every stored point of every preset
    assert key == "b31849c072dd6b9e"
    assert key == point_key(seed=0, spec={"C_W": 2.0, "depth": 3}, n_train=100, task="mnist")
    assert len(key) == 16 and int(key, 16) >= 0
    assert point_key(task="mnist", n_train=101, spec={"depth": 3, "C_W": 2.0}, seed=0) != key


def test_store_put_get_rows_and_resume(tmp_path):
    store = ResultStore(tmp_path / "points")
    assert store.get("k1") is None
    out = store.put("k1", _row(n_train=200))
    assert out["key"] == "k1" and store.get("k1") == out
    store.put("k0", _row(n_train=100))
    store.put("k2", _row(task="cifar10", n_train=50))
    again = ResultStore(tmp_path / "points")  # a restarted run sees every finished point
    assert again.get("k0")["n_train"] == 100
    assert [(r["task"], r["n_train"]) for r in again.rows()] == [("cifar10", 50), ("mnist", 100), ("mnist", 200)]
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == ["k0.json", "k1.json", "k2.json"]
    memory = ResultStore(None)
    memory.put("k", _row())
    assert memory.get("k")["key"] == "k" and len(memory.rows()) == 1
    assert not (tmp_path / "None").exists()


def test_store_writes_are_atomic(tmp_path):
    """A failed write leaves the stored row as it was and no temporary file; an unserializable row is
    refused before anything is written."""
    store = ResultStore(tmp_path)
    store.put("k", _row())
    with pytest.raises(TypeError):  # fails inside the temporary file's write
        results.atomic_write_text(tmp_path / "k.json", 123)
    with pytest.raises(TypeError):
        store.put("k", _row(params={"bad": object()}))
    assert store.get("k")["mu"] == _row()["mu"]
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]
    assert results.atomic_write_text.__module__ == "ntkuq._src.storage"  # the one implementation


def test_csv_round_trip(tmp_path):
    rows = [_row(params={"spec": {"depth": 3}}, member_losses=[0.1, 0.2]),
            _row(width=64, optimizer="sgd", n_train=10, draw=2, method="finite")]
    rows = [dict(r, key=f"k{i}") for i, r in enumerate(rows)]
    text = to_csv(rows)
    header = text.splitlines()[0].split(",")
    assert header[:len(COLUMNS)] == COLUMNS and header[len(COLUMNS):] == ["member_losses", "params"]
    path = tmp_path / "results.csv"
    path.write_text(text)
    back = read_csv(path)
    assert len(back) == 2
    for r, b in zip(rows, back):
        for k in ("n_train", "members", "steps", "seed", "draw"):
            assert b[k] == r[k] and isinstance(b[k], int)
        for k in ("mu", "sigma", "eps", "mu_err", "sigma_err", "eps_err", "wall_s"):
            assert b[k] == r[k]  # repr of a float round-trips exactly
        assert b["task"] == r["task"] and b["key"] == r["key"]
    assert back[0]["width"] == "inf" and back[1]["width"] == "64"
    assert back[0]["params"] == {"spec": {"depth": 3}} and back[0]["member_losses"] == [0.1, 0.2]
    assert back[1]["params"] == ""  # missing fields stay empty


def test_environment():
    env = environment()
    assert set(env) == {"versions", "device", "machine"}
    versions = json.loads(env["versions"])
    assert {"jax", "numpy", "scipy"} <= set(versions) and versions["numpy"] != "?"
    assert ":" in env["device"] and isinstance(env["machine"], str)


def test_result_row_round_trips_every_committed_point_and_the_csv(tmp_path):
    """The committed results/cpu point files and CSV load as ResultRows and are written back unchanged."""
    from pathlib import Path

    from ntkuq.study import ResultRow

    root = Path(__file__).resolve().parents[1] / "results" / "cpu"
    files = sorted((root / "points").glob("*.json"))
    if not files:
        pytest.skip("no committed results/cpu points")
    kinds = set()
    for path in files:
        stored = json.loads(path.read_text())
        stored.pop("checksum", None)  # the store's integrity field (points written since checksums), not the row's
        row = ResultRow.from_dict(stored)
        kinds.add((row.width is None, row.steps is None, row.member_losses is not None))
        assert json.dumps(row.to_dict(), sort_keys=True, default=float) == json.dumps(stored, sort_keys=True,
                                                                                        default=float)
    assert (True, True, False) in kinds  # infinite width at t = infinity: width "inf", steps -1 on disk
    store = ResultStore(root / "points")
    rebuilt = ResultStore(tmp_path)
    for stored in store.rows():
        rebuilt.put(stored["key"], ResultRow.from_dict(stored))
    assert to_csv(rebuilt.rows()) == (root / "results.csv").read_text()


def test_result_row_sentinels():
    from ntkuq.study import ResultRow

    row = ResultRow(task="t", n_train=5, width=None, optimizer="gd", method="ntk", draw=0, study="infinite",
                    mu=1.0, sigma=0.5, eps=0.5)
    d = row.to_dict()
    assert d["width"] == "inf" and d["steps"] == -1 and "member_losses" not in d and "key" not in d
    assert ResultRow.from_dict(d) == row
    finite = ResultRow(**{**d, "width": 30, "steps": 100, "member_losses": [1.0, 2.0]})
    assert ResultRow.from_dict({**finite.to_dict(), "unknown": 1}) == finite
    assert ResultRow.from_dict({**d, "width": "30", "steps": "7"}).width == 30  # CSV strings


def test_csv_rows_without_the_split_leave_it_out(tmp_path):
    """A table mixing points with and without the two parts of sigma_L^2 reads back as the point files do."""
    from ntkuq.study import ResultRow, split_curve

    rows = [ResultRow(task="t", n_train=n, width=None, optimizer="gd", method="ntk", draw=0, study="infinite",
                      mu=0.1, sigma=0.01, eps=0.1, params={"n_test": 10},
                      **({"var_diag": 4e-5, "var_offdiag": 6e-5} if n > 10 else {})).to_dict() for n in (10, 20, 40)]
    path = tmp_path / "r.csv"
    path.write_text(to_csv(rows))
    back = read_csv(path)
    assert "var_diag" not in back[0] and back[1]["var_diag"] == 4e-5
    assert list(split_curve(back).n) == [20.0, 40.0]
