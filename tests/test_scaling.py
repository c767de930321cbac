"""Scaling fits recover known exponents; the result store resumes and writes atomically."""

import numpy as np
import pytest

from ntkuq.study import ResultStore, bootstrap_curves, eps_of, fit_power_law, plateau, point_key, read_csv, to_csv

N = np.geomspace(100, 25_000, 12)


def test_power_law_recovers_exponent_with_calibrated_errors():
    rng = np.random.default_rng(0)
    pulls = []
    for trial in range(200):
        y = 3.0 * N**-0.4 * np.exp(0.02 * rng.standard_normal(N.size))
        law = fit_power_law(N, y)
        pulls.append((law.exponent - 0.4) / law.exponent_err)
    assert abs(np.mean(pulls)) < 0.25 and 0.8 < np.std(pulls) < 1.25
    exact = fit_power_law(N, 3.0 * N**-0.4)
    assert exact.exponent == pytest.approx(0.4, rel=1e-12) and exact.amplitude == pytest.approx(3.0, rel=1e-12)


def test_plateau_and_bootstrap():
    rng = np.random.default_rng(1)
    members = [rng.normal(1.0 * n**-0.3, 0.1 * n**-0.3, size=64) for n in N]  # eps = 0.1 at every n
    eps = np.array([eps_of(m) for m in members])
    boot = bootstrap_curves(members, eps_of, n_boot=300, seed=2)
    p = plateau(N, eps, boot)
    assert abs(p.slope) < 3 * p.slope_err + 0.02
    assert p.value == pytest.approx(0.1, abs=4 * p.value_err)
    rising = plateau(N, 0.1 * (N / 100) ** 0.2, boot * (N / 100) ** 0.2)
    assert rising.slope == pytest.approx(0.2, abs=0.02) and rising.n_lo >= N.max() / 10


def test_bad_curves():
    with pytest.raises(ValueError, match="^y"):
        fit_power_law(N, -np.ones_like(N))
    with pytest.raises(ValueError, match="^y"):
        fit_power_law(N[:1], np.ones(1))
    with pytest.raises(ValueError, match="^samples"):
        bootstrap_curves([np.ones(1)], eps_of)


def test_store_resumes_and_exports(tmp_path):
    store = ResultStore(tmp_path / "points")
    key = point_key(task="mnist", n_train=100, width="inf")
    assert store.get(key) is None
    row = dict(task="mnist", n_train=100, width="inf", optimizer="gd", method="ntk", draw=0, mu=0.5, sigma=0.1,
               eps=0.2, params={"depth": 3})
    store.put(key, row)
    again = ResultStore(tmp_path / "points")
    assert again.get(key)["mu"] == 0.5
    assert not list((tmp_path / "points").glob(".*tmp"))
    csv_path = tmp_path / "results.csv"
    csv_path.write_text(to_csv(again.rows()))
    back = read_csv(csv_path)
    assert back[0]["n_train"] == 100 and back[0]["eps"] == 0.2 and back[0]["params"] == {"depth": 3}
    assert point_key(a=1, b=2) == point_key(b=2, a=1) != point_key(a=1, b=3)


def test_plateau_verdict_rule():
    from ntkuq.study import PLATEAU_SLOPE, plateau_verdict
    assert plateau_verdict(0.0, 0.0) == "plateau"
    assert plateau_verdict(-0.9 * PLATEAU_SLOPE, 0.0) == "plateau"           # small in size
    assert plateau_verdict(-0.2, 0.11) == "plateau"                          # within two errors
    assert plateau_verdict(-0.2, 0.09) == "still falling"
    assert plateau_verdict(0.3, 0.01) == "rising"
    assert plateau_verdict(-0.04, 0.0, tol=0.01) == "still falling"
