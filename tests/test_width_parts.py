"""ntkuq.study.width_parts: mu_L, A and B per width from stored rows, and their fits in 1/n.

The rows are built from a known law y(n) = y_inf (1 + a / n^p) with stated errors, so the fits must return
c_0 = y_inf, c_1 = y_inf a (p = 1) and the slope -p; a real (tiny) study checks the plumbing end to end.
"""
import numpy as np
import pytest

import ntkuq
from ntkuq import MLPSpec
from ntkuq.book import floor_share_clause, format_pm
from ntkuq.data import load
from ntkuq.errors import InputTypeError
from ntkuq.study import (
    PARTS,
    ResultStore,
    finite_width_study,
    fit_inverse_width,
    row_parts,
    width_groups,
    width_parts,
)

N_T = 500
WIDTHS = [30, 64, 128, 256, 512]


def _row(width, mu, var_diag, var_offdiag, err=None, ratio=10.0, task="mnist", n_train=946, n_test=N_T,
         steps=5000, converged=True):
    spec = {"lambda_b": ratio, "lambda_W": 1.0}
    row = {"task": task, "n_train": n_train, "width": width if width is not None else "inf",
           "method": "ensemble" if width is not None else "ntk", "steps": steps if width is not None else -1,
           "mu": mu, "var_diag": var_diag, "var_offdiag": var_offdiag,
           "params": {"n_test": n_test, "spec": spec}}
    if width is not None:
        row["params"]["stopping"] = {"converged": converged, "steps": steps}
    if err is not None:
        row.update(mu_err=err[0], var_diag_err=err[1], var_offdiag_err=err[2])
    return row


def _law(n, exact, a, p=1.0):
    return exact * (1 + a / np.asarray(n, float) ** p)


def _variances(mu, A, B, n_test=N_T):
    """var_diag and var_offdiag of a row with these mu, A and B (the inverse of row_parts)."""
    return A * mu**2 / n_test, B * mu**2 * (n_test - 1) / n_test


def _rows(a=(3.0, 20.0, -5.0), p=1.0, rel_err=1e-3, **kw):
    """A width study whose mu, A and B follow exact * (1 + a / n^p), each with a relative error rel_err."""
    exact = (0.05, 0.8, 2e-3)
    rows = [_row(None, exact[0], *_variances(*exact), **kw)]
    for n in WIDTHS:
        mu, A, B = (_law(n, e, ai, p) for e, ai in zip(exact, a))
        var_d, var_o = _variances(mu, A, B)
        rows.append(_row(n, mu, var_d, var_o, err=[rel_err * mu, rel_err * var_d, rel_err * var_o], **kw))
    return rows


def test_parts_are_the_rows_parts_and_the_exact_values():
    rows = _rows()
    parts = width_parts(rows[::-1])  # any order
    assert list(parts.widths) == WIDTHS and parts.n_test == N_T and parts.lambda_ratio == 10.0
    for i, n in enumerate(WIDTHS):
        a, b, a_err, b_err, nt = row_parts(next(r for r in rows if r["width"] == n))
        assert parts.values["A"][i] == a and parts.values["B"][i] == b and parts.errors["A"][i] == a_err
    a_inf, b_inf, *_ = row_parts(rows[0])
    assert parts.exact == {"mu": 0.05, "A": a_inf, "B": b_inf}
    # eps^2 = A / n_T + (n_T - 1) / n_T B, and the two parts of eps in the same units
    mu = parts.values["mu"]
    var = np.array([r["var_diag"] + r["var_offdiag"] for r in sorted(rows[1:], key=lambda r: r["width"])])
    eps2 = parts.eps_floor() ** 2 + (N_T - 1) / N_T * parts.eps_population() ** 2
    np.testing.assert_allclose(eps2, var / mu**2, rtol=1e-12)
    np.testing.assert_allclose(parts.eps2, eps2, rtol=1e-12)
    np.testing.assert_allclose(parts.eps2 - parts.eps2_exact, sum(parts.excess()), rtol=1e-12)
    # the floor's share of the excess, by hand from the rows' variances
    inf = rows[0]
    excess = var / mu**2 - (inf["var_diag"] + inf["var_offdiag"]) / inf["mu"] ** 2
    floor = np.array([r["var_diag"] / r["mu"] ** 2 for r in sorted(rows[1:], key=lambda r: r["width"])])
    np.testing.assert_allclose(parts.floor_share(), (floor - inf["var_diag"] / inf["mu"] ** 2) / excess, rtol=1e-9)
    assert parts.converged.all() and list(parts.steps) == [5000] * len(WIDTHS)


@pytest.mark.parametrize("stat,a", [("mu", 3.0), ("A", 20.0), ("B", -5.0)])
def test_inverse_width_fit_recovers_the_law(stat, a):
    """A law that is exactly c_0 + c_1 / n: c_0 is the exact value (pull ~ 0) and the slope is -1."""
    parts = width_parts(_rows())
    fit = fit_inverse_width(parts, stat)
    exact = parts.exact[stat]
    assert fit.c0 == pytest.approx(exact, rel=1e-9) and fit.c1 == pytest.approx(exact * a, rel=1e-9)
    assert abs(fit.pull) < 1e-3 and fit.dof == len(WIDTHS) - 2 and fit.chi2 < 1e-12
    assert fit.slope == pytest.approx(-1.0, abs=1e-9)
    assert 0 < fit.c0_err < abs(exact) * 1e-2


def test_a_correction_in_one_over_n_squared_is_told_apart():
    """With a 1/n^2 law the slope is -2, and the 1/n extrapolation misses c_0 by many errors (chi2 large)."""
    parts = width_parts(_rows(p=2.0, a=(300.0, 2000.0, -500.0), rel_err=1e-4))
    for stat in PARTS:
        fit = fit_inverse_width(parts, stat)
        assert fit.slope == pytest.approx(-2.0, abs=1e-6)
        assert fit.chi2 / fit.dof > 10
    # from the widest widths only the 1/n fit comes closer
    wide = fit_inverse_width(parts, "mu", min_width=128)
    assert abs(wide.c0 / parts.exact["mu"] - 1) < abs(fit_inverse_width(parts, "mu").c0 / parts.exact["mu"] - 1)


def test_noisy_rows_give_errors_that_cover_the_truth():
    """Rows scattered by their stated errors: the extrapolation's pull is of order one, not tiny or huge."""
    rng = np.random.default_rng(0)
    pulls = []
    for _ in range(200):
        rows = _rows(rel_err=2e-2)
        for r in rows[1:]:
            r["mu"] += rng.normal() * r["mu_err"]
        pulls.append(fit_inverse_width(width_parts(rows), "mu").pull)
    assert 0.7 < np.std(pulls) < 1.3 and abs(np.mean(pulls)) < 0.25


def test_not_converged_widths_are_marked():
    rows = _rows()
    rows[2]["params"]["stopping"]["converged"] = False
    assert list(width_parts(rows).converged) == [True, False, True, True, True]


@pytest.mark.parametrize("change,match", [
    (lambda rows: rows[1:], "t = infinity"),
    (lambda rows: rows[:2], "two or more distinct widths"),
    (lambda rows: rows + [dict(rows[1])], "two or more distinct widths"),
    (lambda rows: rows + [_row(1024, 0.05, 1e-4, 1e-6, n_train=100)], "one N_D"),
    (lambda rows: rows + [_row(1024, 0.05, 1e-4, 1e-6, task="cifar10")], "one task"),
    (lambda rows: rows + [_row(1024, 0.05, 1e-4, 1e-6, n_test=200)], "one n_T"),
    (lambda rows: rows + [_row(1024, 0.05, 1e-4, 1e-6, ratio=1.0)], "lambda_b / lambda_W"),
    (lambda rows: rows + [_row(1024, 0.05, None, 1e-6)], "two parts"),
])
def test_mixed_or_incomplete_rows_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        width_parts(change(_rows()))


def test_fit_refuses_a_bad_stat_too_few_widths_and_missing_errors():
    parts = width_parts(_rows())
    with pytest.raises(ValueError, match="stat"):
        fit_inverse_width(parts, "eps")
    with pytest.raises(ValueError, match="min_width"):
        fit_inverse_width(parts, "mu", min_width=512)
    for bad in ("30", 30.5, -1, None):
        with pytest.raises(ValueError, match="min_width"):  # InputTypeError is a ValueError too
            fit_inverse_width(parts, "mu", min_width=bad)
    no_err = width_parts([{k: v for k, v in r.items() if not k.endswith("_err")} for r in _rows()])
    with pytest.raises(ValueError, match="positive error"):
        fit_inverse_width(no_err, "mu")


def test_a_real_width_study_reads_back():
    """Two tiny trained widths and the exact infinite width through finite_width_study and a store."""
    ntkuq.enable_float64()
    data = load("calorimeter", n_pool=24, n_test=40, seed=0, calorimeter_cells=3, calorimeter_layers=3)
    store = ResultStore(None)
    rows = []
    for w in (8, 16):
        spec = MLPSpec.critical("relu", depth=3, lambda_ratio=1.0, width=w)
        rows += finite_width_study(data, spec, [24], members=8, steps=40, with_infinite=True, store=store)
    rows = [r for r in rows if not (r["method"] == "ntk" and int(r["steps"]) >= 0)]
    parts = width_parts(rows)
    assert list(parts.widths) == [8, 16] and parts.n_test == 40 and parts.lambda_ratio == 1.0
    assert np.all(parts.errors["mu"] > 0) and np.all(parts.errors["A"] > 0)
    fit = fit_inverse_width(parts, "mu")
    assert fit.dof == 0 and np.isfinite(fit.c0) and np.isnan(fit.slope_err)


def test_width_groups_split_a_folder_by_task_ratio_and_size():
    """Two studies in one folder come apart; infinite-width rows after T steps are left out."""
    one, other = _rows(), _rows(ratio=1.0)
    after_T = dict(one[0], steps=800)  # the infinite-width ensemble after T steps: not the t = inf value
    groups = width_groups(other + [after_T] + one)
    assert sorted(groups) == [("mnist", 1.0, 946), ("mnist", 10.0, 946)]
    assert groups[("mnist", 10.0, 946)] == one and groups[("mnist", 1.0, 946)] == other
    assert width_parts(groups[("mnist", 1.0, 946)]).lambda_ratio == 1.0
    assert width_groups([]) == {}


def test_no_excess_has_no_share():
    """A width whose eps_L is not above the infinite-width one has nothing to split: NaN, not a ratio."""
    rows = _rows(a=(3.0, -20.0, -50.0))  # A and B both below their infinite-width values at every width
    assert np.all(np.isnan(width_parts(rows).floor_share()))


def test_under_the_stopping_rule_each_width_keeps_its_own_infinite_width_after_t():
    """The steps a stopped ensemble takes differ per width, so the infinite width after those steps is stored once
    per number of steps (it used to be one point per study, which the last width trained overwrote)."""
    ntkuq.enable_float64()
    data = load("calorimeter", n_pool=16, n_test=12, seed=0, calorimeter_cells=3, calorimeter_layers=3)
    store = ResultStore(None)
    by_width = {}
    for w in (8, 16):  # with these seeds width 8 passes the rule at its first check, width 16 runs to the cap
        spec = MLPSpec.critical("relu", depth=3, lambda_ratio=1.0, width=w)
        ens, at_t, at_inf = finite_width_study(data, spec, [16], members=4, steps=5, converge=0.1, max_steps=400,
                                               store=store)
        assert at_t["steps"] == ens["steps"] and at_inf["steps"] == -1
        by_width[w] = at_t
    assert by_width[8]["steps"] != by_width[16]["steps"]
    again = finite_width_study(data, MLPSpec.critical("relu", depth=3, lambda_ratio=1.0, width=8), [16], members=4,
                               steps=5, converge=0.1, max_steps=400, store=store)
    assert again[1] == by_width[8]  # found again, not replaced by width 16's


def test_the_slope_uses_only_resolved_deviations():
    """Widths whose value sits within its errors of the exact one (or on the other side) are left out of the
    log-log slope; with fewer than two resolved widths the slope is NaN, not a fit to noise."""
    rows = _rows()
    wide = [r for r in rows[1:] if r["width"] >= 256]
    for r in wide:  # the two widest land on the exact mu_L: deviation 0, far below its error
        r["mu"] = rows[0]["mu"]
    fit = fit_inverse_width(width_parts(rows), "mu")
    assert fit.slope == pytest.approx(-1.0, abs=1e-9)  # from widths 30, 64, 128 alone
    flat = _rows(a=(1e-3, 20.0, -5.0), rel_err=1e-2)  # mu's deviations are all within their errors
    assert np.isnan(fit_inverse_width(width_parts(flat), "mu").slope)


def test_rows_of_different_settings_are_not_one_study():
    rows = _rows()
    rows[3]["seed"] = 7
    with pytest.raises(ValueError, match="one seed"):
        width_parts(rows)
    with pytest.raises(ValueError, match="one seed"):
        width_groups(rows)
    rows = _rows()
    rows[2]["params"] = dict(rows[2]["params"], spec={"lambda_b": 10.0, "lambda_W": 1.0, "depth": 4})
    with pytest.raises(ValueError, match="one spec"):
        width_parts(rows)
    rows = _rows()
    with pytest.raises(ValueError, match="one infinite-width result"):
        width_parts(rows + [dict(rows[0], mu=0.06)])


def test_row_parts_carry_the_error_of_mu():
    """A and B divide by mu^2: their errors add 2 mu_err / mu to the variance part's, in quadrature."""
    row = _row(30, 0.05, *_variances(0.05, 0.8, 2e-3), err=[0.001, 0.0, 0.0])
    a, b, a_err, b_err, _ = row_parts(row)
    assert a_err == pytest.approx(a * 2 * 0.001 / 0.05) and b_err == pytest.approx(b * 2 * 0.001 / 0.05)
    row = _row(30, 0.05, *_variances(0.05, 0.8, 2e-3), err=[0.0, 1e-6, 1e-9])
    a, b, a_err, b_err, _ = row_parts(row)
    assert a_err == pytest.approx(N_T * 1e-6 / 0.05**2) and b_err == pytest.approx(N_T * 1e-9 / ((N_T - 1) * 0.05**2))


def test_floor_share_error_matches_monte_carlo():
    """Draw A and B from their stated errors: the spread of the floor's share is the propagated error."""
    rows = _rows(rel_err=2e-3)  # small errors: the linear propagation holds
    parts = width_parts(rows)
    rng = np.random.default_rng(1)
    shares = []
    for _ in range(4000):
        values = {k: v + rng.normal(size=v.size) * parts.errors[k] for k, v in parts.values.items()}
        shares.append(type(parts)(**{**parts.__dict__, "values": values}).floor_share())
    # where the excess is many of its errors (not at width 512, where a + b nears its noise and the ratio's
    # distribution grows heavy tails that a first-order error cannot describe)
    np.testing.assert_allclose(np.std(shares, axis=0)[:4], parts.floor_share_err()[:4], rtol=0.1)


@pytest.mark.parametrize("bad,err,match", [
    ({"task": "mnist"}, ValueError, "without method"),
    ("a row", InputTypeError, "dicts"),
    (lambda r: dict(r, params={"n_test": N_T}), ValueError, "lambda_b"),
    (lambda r: {k: v for k, v in r.items() if k != "steps"}, ValueError, "without steps"),
])
def test_rows_that_are_not_study_rows_are_refused_by_name(bad, err, match):
    rows = _rows()
    foreign = bad(rows[1]) if callable(bad) else bad
    for call in (width_groups, width_parts):
        with pytest.raises(err, match=match):
            call(rows + [foreign])


@pytest.mark.parametrize("a,who,words", [
    ((3.0, 1.0, 50.0), "population", "% of the excess of ε_L² is the floor's"),  # B's excess far larger
    ((3.0, 200.0, 0.5), "floor", "% of the excess of ε_L² is the floor's"),  # A's excess far larger
    ((3.0, 20.0, -5.0), "floor", "the population part's"),  # B below infinite width: a share above one
    ((3.0, -20.0, -50.0), None, "no excess"),  # both below: nothing to split
])
def test_the_floor_share_in_words(a, who, words):
    parts = width_parts(_rows(a=a))
    clause, got = floor_share_clause(parts, 0)
    assert got == who and words in clause
    share = parts.floor_share()[0]
    if 0 <= share <= 1:
        assert clause.startswith(format_pm(100 * share, 100 * parts.floor_share_err()[0]) + " %")
    elif np.isfinite(share):
        floor, population = (v[0] for v in parts.excess())
        assert f"{floor:+.2g}" in clause and f"{population:+.2g}" in clause and population < 0 < floor


def test_a_share_without_an_error_gets_no_verdict():
    rows = [dict(r, var_diag_err=float("nan")) if r["method"] == "ensemble" else r for r in _rows(a=(3.0, 1.0, 50.0))]
    clause, who = floor_share_clause(width_parts(rows), 0)
    assert who == "both" and "no error known" in clause and "nan" not in clause
