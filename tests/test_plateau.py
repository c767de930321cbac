"""The plateau model: A and B from rows, the fitted B(N_D), the onset N_D*(n) and the model's verdict."""
import numpy as np
import pytest

from ntkuq.infinite import eps_for_test_size, eps_population
from ntkuq.study import fit_plateau, model_table, split_curve

NT = 1000


def _rows(a=0.2, b0=0.02, gamma=0.6, draws=1, noise=0.0, seed=0):
    """Rows whose parts follow A = a, B = b0 N^-gamma exactly (times lognormal noise per draw)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (100, 200, 400, 800, 1600, 3200):
        for d in range(draws):
            mu = 0.05 * n**-0.3
            f = np.exp(noise * rng.normal(size=2))
            vd = a * f[0] * mu**2 / NT
            vo = b0 * n**-gamma * f[1] * mu**2 * (NT - 1) / NT
            rows.append({"n_train": n, "draw": d, "mu": mu, "var_diag": vd, "var_offdiag": vo,
                         "params": {"n_test": NT}})
    return rows


def test_split_curve_recovers_the_parts_and_eps():
    rows = _rows()
    c = split_curve(rows + [{"n_train": 100, "mu": 1.0, "params": {"n_test": NT}}])  # a row without the split
    np.testing.assert_allclose(c.A, 0.2, rtol=1e-12)
    np.testing.assert_allclose(c.B, 0.02 * c.n**-0.6, rtol=1e-12)
    r = rows[2]
    for n in (10, 300, NT):
        assert c.eps(n)[2] == pytest.approx(eps_for_test_size(r["mu"], r["var_diag"], r["var_offdiag"], NT, n),
                                            rel=1e-12)
    assert c.eps_population[2] == pytest.approx(eps_population(r["mu"], r["var_offdiag"], NT), rel=1e-12)


def test_fit_recovers_gamma_and_the_onset():
    m = fit_plateau(split_curve(_rows()))
    assert m.population.exponent == pytest.approx(0.6, rel=1e-10)
    assert m.floor.exponent == pytest.approx(0.0, abs=1e-10)
    for n in (100, 1000):
        want = (0.02 * n / 0.2) ** (1 / 0.6)  # B(N*) = A / n
        assert m.onset(n) == pytest.approx(want, rel=1e-9)
        assert 0.02 * m.onset(n) ** -0.6 == pytest.approx(0.2 / n, rel=1e-9)
    # a small test set: the floor dominates at the largest N_D, so eps is flat; a huge one: it falls like B
    assert m.verdict(100) == "plateau" and m.floor_share(100) > 0.9
    assert m.verdict(10**7) == "still falling"
    assert m.slope(10**9)[0] == pytest.approx(-0.3, rel=1e-3)


def test_errors_from_draws_and_the_table():
    c = split_curve(_rows(draws=4, noise=0.05))
    assert c.draws == 4 and c.A_boot is not None and np.all(c.B_err > 0)
    m = fit_plateau(c)
    assert 0 < m.population.exponent_err < 0.2
    row = model_table("MNIST", "NTK", c, m, test_sizes=(100, 1000))
    assert set(row) >= {"gamma", "gamma_err", "onset_100", "verdict_1000", "A"}


def test_rising_b_has_no_onset_and_bad_rows_are_refused():
    m = fit_plateau(split_curve(_rows(gamma=-0.1)))
    assert m.onset(1000) == float("inf")
    with pytest.raises(ValueError, match="var_diag"):
        split_curve([{"n_train": 10, "mu": 1.0}])
    mixed = _rows()[:2] + [dict(_rows()[3], params={"n_test": 50})]
    with pytest.raises(ValueError, match="one test-set size"):
        split_curve(mixed)
    with pytest.raises(ValueError, match="n_test"):
        split_curve(_rows()).eps(0)


def test_verdict_curves_carry_the_model_verdicts():
    from ntkuq.study import model_verdicts, verdict_curves

    rows = [dict(r, task="mnist", method="ntk", sigma=np.sqrt(r["var_diag"] + r["var_offdiag"]),
                 eps=np.sqrt(r["var_diag"] + r["var_offdiag"]) / r["mu"]) for r in _rows(draws=2, noise=0.01)]
    v = model_verdicts(rows)
    assert set(v) == {"verdict_n=100", "verdict_n=300", "verdict_n=1000"}  # up to N_T = 1000
    assert v["verdict_n=100"] == "plateau"
    (_, _, row), = verdict_curves(rows, {"mnist": "MNIST"}, methods=("ntk",)).values()
    assert row["verdict_n=100"] == v["verdict_n=100"] and "verdict" in row
    assert model_verdicts([dict(r, var_diag=None) for r in rows]) == {}


def test_part_ratios_and_local_exponents():
    from ntkuq.study import local_exponents, part_ratios

    inf = split_curve(_rows())
    fin_rows = [dict(r, var_diag=4 * r["var_diag"], var_offdiag=9 * r["var_offdiag"],
                     var_diag_err=0.4 * r["var_diag"], var_offdiag_err=0.9 * r["var_offdiag"]) for r in _rows()]
    pr = part_ratios(split_curve(fin_rows), inf)
    np.testing.assert_allclose(pr["floor"], 2.0, rtol=1e-12)
    np.testing.assert_allclose(pr["population"], 3.0, rtol=1e-12)
    np.testing.assert_allclose(pr["floor_err"], 0.5 * 2.0 * 0.1, rtol=1e-12)  # half the relative error of A
    with pytest.raises(ValueError, match="same test-set size"):
        part_ratios(split_curve([dict(r, params={"n_test": 50}) for r in _rows()]), inf)
    n_mid, alpha = local_exponents(inf.n, 3.0 * inf.n**-0.4)
    np.testing.assert_allclose(alpha, 0.4, rtol=1e-12)
    assert np.allclose(n_mid, np.sqrt(inf.n[1:] * inf.n[:-1]))
