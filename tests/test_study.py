"""The scaling study resumes after an interruption with the same results, recomputing only unfinished points."""
import numpy as np
import pytest

import ntkuq.study as study
from ntkuq import MLPSpec
from ntkuq.data import TaskData
from ntkuq.study import ResultStore, drivers

RNG = np.random.default_rng(4)
DATA = TaskData("synthetic", RNG.normal(size=(80, 6)), RNG.normal(size=(80, 2)), RNG.normal(size=(15, 6)),
                RNG.normal(size=(15, 2)), {"kind": "test"})
SPEC = MLPSpec(depth=2, C_b=0.1)
SIZES = [10, 20, 40]


def test_interrupted_study_resumes_with_identical_results(tmp_path, monkeypatch):
    reference = study.infinite_width_study(DATA, SPEC, SIZES, draws=3, store=ResultStore(tmp_path / "ref"))

    calls = []
    real = drivers.nested_sweep

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed midway")
        return real(*args, **kwargs)

    monkeypatch.setattr(drivers, "nested_sweep", flaky)
    store = ResultStore(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        study.infinite_width_study(DATA, SPEC, SIZES, draws=3, store=store)
    assert len(list((tmp_path / "run").glob("*.json"))) == 2 * len(SIZES)  # draw 0 finished, nothing else
    assert not list((tmp_path / "run").glob(".*"))  # no half-written files
    calls.clear()
    monkeypatch.setattr(drivers, "nested_sweep", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    resumed = study.infinite_width_study(DATA, SPEC, SIZES, draws=3, store=store)
    assert len(calls) == 2  # only the two unfinished draws were computed
    key = lambda r: (r["method"], r["draw"], r["n_train"])  # noqa: E731
    for a, b in zip(sorted(reference, key=key), sorted(resumed, key=key)):
        assert key(a) == key(b) and a["mu"] == b["mu"] and a["sigma"] == b["sigma"]


def test_draws_differ_and_curves_have_errors():
    rows = study.infinite_width_study(DATA, SPEC, SIZES, draws=3, methods=("ntk",))
    c = study.curves(rows)
    assert np.all(c["mu_err"] > 0) and c["mu_boot"].shape == (400, len(SIZES))
    f = study.fits(c)
    assert np.isfinite(f["mu"].exponent) and np.isfinite(f["plateau"].slope)


def test_committed_rows_reads_a_points_folder_and_a_missing_one_is_empty(tmp_path):
    from ntkuq.study import ResultRow, ResultStore, committed_rows
    assert committed_rows(tmp_path / "nowhere") == []
    store = ResultStore(tmp_path)
    for n, kind in ((10, "infinite"), (20, "infinite"), (10, "finite")):
        store.put(f"k{n}{kind}", ResultRow(task="mnist", n_train=n, width=None, optimizer="gd", method="ntk",
                                           draw=0, study=kind, mu=1.0, sigma=0.1, eps=0.1, steps=None))
    assert sorted(r["n_train"] for r in committed_rows(tmp_path, study="infinite")) == [10, 20]
    assert len(committed_rows(tmp_path)) == 3


def test_plateau_summary_names_verdicts_missing_tasks_and_few_draws():
    from ntkuq.book import plateau_summary
    table = [dict(task="MNIST", curve="NTK", eps_slope=-0.01, verdict="plateau", draws="3"),
             dict(task="MNIST", curve="NNGP", eps_slope=-0.2, verdict="still falling", draws="3"),
             dict(task="CIFAR-10", curve="NTK", eps_slope=0.3, verdict="rising", draws="1")]
    text = plateau_summary(table, missing=["calorimeter"])
    assert text.startswith("1 of the 3 curves reach the plateau by this test (MNIST NTK)")
    assert "1 still falls (MNIST NNGP)" in text and "1 rises (CIFAR-10 NTK)" in text
    assert "from -0.20 to 0.30" in text and "No points of calorimeter" in text
    assert "CIFAR-10 rests on fewer than 3" in text and "MNIST rests" not in text
    assert plateau_summary([]) == "No points are committed yet."
    assert plateau_summary(table[1:]).startswith("None of the 2 curves reaches the plateau by this test; "
                                                 "1 still falls")


def test_last_slope_of_a_power_law_and_its_bootstrap_error():
    from ntkuq.study import last_slope
    n = np.array([10.0, 100.0, 1000.0])
    c = {"n": n, "eps": 2.0 * n**-0.3}
    assert last_slope(c) == (pytest.approx(-0.3), 0.0)
    c["eps_boot"] = np.stack([2.0 * n**-0.2, 2.0 * n**-0.4])
    assert last_slope(c)[1] == pytest.approx(np.std([-0.2, -0.4], ddof=1))


def test_plateau_summary_lists_tasks_in_table_order():
    from ntkuq.book import plateau_summary
    table = [dict(task=t, curve="NTK", eps_slope=-0.2, verdict="still falling", draws="1")
             for t in ("MNIST", "CIFAR-10", "calorimeter")]
    assert "MNIST, CIFAR-10 and calorimeter rest on fewer than 3" in plateau_summary(table)


def test_verdict_curves_rows_match_the_separate_functions_and_skip_single_sizes():
    rng = np.random.default_rng(3)
    rows = []
    for draw in range(3):
        for n in (100, 300, 1000, 3000):
            mu = 2.0 * n ** -0.4 * (1 + 0.01 * rng.standard_normal())
            for method, eps in (("ntk", 0.3 * n ** -0.2), ("nngp", 0.2)):
                rows.append({"task": "mnist", "method": method, "draw": draw, "n_train": n,
                             "mu": mu, "sigma": eps * mu, "eps": eps})
    rows.append({"task": "cifar10", "method": "ntk", "draw": 0, "n_train": 100, "mu": 1.0, "sigma": 0.1, "eps": 0.1})
    out = study.verdict_curves(rows, {"cifar10": "CIFAR-10", "mnist": "MNIST"})
    assert list(out) == [("mnist", "ntk"), ("mnist", "nngp")]  # one size of CIFAR-10: no curve
    c, f, row = out[("mnist", "ntk")]
    np.testing.assert_allclose(c["n"], [100, 300, 1000, 3000])
    expected = study.fit_row("MNIST", "NTK", study.fits(study.curves(study.select(rows, task="mnist", method="ntk"))))
    assert row["decade"] == expected["decade"]
    assert all(row[k] == pytest.approx(expected[k], abs=1e-12) for k in expected if k != "decade")
    assert row["draws"] == "3" and row["curve"] == "NTK"
    assert row["verdict"] == "still falling"                 # eps ~ N^-0.2
    assert out[("mnist", "nngp")][2]["verdict"] == "plateau"  # eps constant
    assert row["last_slope"] == pytest.approx(-0.2, abs=1e-9)


def _ensemble_rows(converged):
    """Trained-ensemble rows at three N_D; a stopping record with `converged` per size (None: no rule)."""
    rng = np.random.default_rng(1)
    rows = []
    for n, ok in zip((100, 200, 400), converged):
        params = {} if ok is None else {"stopping": {"converged": ok, "steps": 10, "cap": 10}}
        rows.append({"n_train": n, "draw": 0, "member_losses": list(1.0 / n + 0.1 / n * rng.normal(size=8)),
                     "params": params})
    return rows


def test_curves_and_the_table_say_which_sizes_did_not_converge():
    c = study.curves(_ensemble_rows([True, False, False]), n_boot=20)
    assert list(c["converged"]) == [True, False, False] and study.not_converged(c) == [200, 400]
    row = study.fit_row("MNIST", "n=30", study.fits(c), c)
    assert row["not converged"] == "200, 400"
    done = study.curves(_ensemble_rows([True, True, True]), n_boot=20)
    assert study.not_converged(done) == [] and study.fit_row("MNIST", "n=30", study.fits(done), done)[
        "not converged"] == "none"
    # runs without a rule say nothing: no key, no column
    plain = study.curves(_ensemble_rows([None, None, None]), n_boot=20)
    assert "converged" not in plain and study.not_converged(plain) == []
    assert "not converged" not in study.fit_row("MNIST", "n=30", study.fits(plain), plain)
    assert "not converged" not in study.fit_row("MNIST", "n=30", study.fits(c))
    # a mix: a size trained for fixed steps, without the rule, is not called converged
    mixed = study.curves(_ensemble_rows([True, None, True]), n_boot=20)
    assert study.not_converged(mixed) == [200]
