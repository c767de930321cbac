"""`ntkuq estimate`: the command line against the API, the API against the library's sweep, bad files."""
import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest

from ntkuq import MLPSpec
from ntkuq.data import fit_preprocessing, read_table
from ntkuq.errors import DataError, TooLargeError
from ntkuq.estimate import EnsembleOptions, auto_sizes, check_budget, cost_estimate, estimate, estimate_files, main
from ntkuq.finite import default_eta, train_ensemble
from ntkuq.infinite import (
    converged_steps,
    loss_distribution,
    loss_stats,
    nested_sweep,
    ntk_prediction,
    train_test_kernels,
)

N_TRAIN, N_TEST = 60, 30


def make_data(n, seed, shift=0.0):
    """Three features in different units, two noisy targets."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, shift]
    y = np.c_[np.sin(x[:, 0]) + 0.05 * x[:, 1], x[:, 2] * x[:, 0]] + 0.05 * rng.standard_normal((n, 2))
    return x, y


def write_csv(path, x, y, header=("a", "b", "c", "t1", "t2")):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([[repr(float(v)) for v in row] for row in np.c_[x, y]])
    return str(path)


@pytest.fixture
def files(tmp_path):
    (xa, ya), (xb, yb) = make_data(N_TRAIN, 0), make_data(N_TEST, 1)
    out = {"csv": (write_csv(tmp_path / "train.csv", xa, ya), write_csv(tmp_path / "test.csv", xb, yb)),
           "npz": (str(tmp_path / "train.npz"), str(tmp_path / "test.npz")), "arrays": (xa, ya, xb, yb)}
    np.savez(out["npz"][0], x=xa, y=ya)
    np.savez(out["npz"][1], x=xb, y=yb)
    return out


def _numbers(d):
    """The result part of to_dict / the JSON file (timing varies from run to run)."""
    return {k: v for k, v in d.items() if k != "timing"}


@pytest.mark.parametrize("fmt", ["csv", "npz"])
def test_cli_json_equals_api(files, tmp_path, fmt, capsys):
    train, test = files[fmt]
    target = ["--target", "t1,t2"] if fmt == "csv" else []
    out = tmp_path / "out"
    argv = ["estimate", "--train", train, "--test", test, *target, "--sizes", "15,30,60", "--standardize", "both",
            "--depth", "2", "--lambda-ratio", "3", "--json", str(out / "r.json"), "--csv", str(out / "r.csv"),
            "--plot", str(out / "r.png"), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    api = estimate_files(train, test, target="t1,t2" if fmt == "csv" else None, sizes=[15, 30, 60],
                         standardize="both", depth=2, lambda_ratio=3.0)
    written = json.loads((out / "r.json").read_text())
    assert _numbers(written) == json.loads(json.dumps(_numbers(api.to_dict())))
    assert (out / "r.csv").read_text() == api.sweep_csv()
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"mu_L    = {api.mu_L:.4g}" in printed and "features and targets standardized" in printed
    assert written["spec"]["depth"] == 2 and written["spec"]["lambda_b"] == 3.0
    assert sorted(os.listdir(out)) == ["r.csv", "r.json", "r.png"]  # no temporary files left


def test_csv_and_npz_give_the_same_numbers(files):
    a = estimate_files(*files["csv"], target="t1,t2", sizes=[20, 60]).to_dict()
    b = estimate_files(*files["npz"], sizes=[20, 60]).to_dict()
    for key in ("mu_L", "sigma_L", "eps_L", "quantiles", "sweep"):
        assert a[key] == b[key]


def test_console_module_runs(files, tmp_path):
    """`python -m ntkuq` (the console script's code) in a fresh process gives the API's numbers."""
    train, test = files["npz"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(
        __import__("ntkuq").__file__)), os.environ.get("PYTHONPATH", "")] if p), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "ntkuq", "estimate", "--train", train, "--test", test, "--sizes",
                           "30,60", "--json", str(tmp_path / "r.json"), "--quiet"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    api = estimate_files(train, test, sizes=[30, 60])
    assert _numbers(json.loads((tmp_path / "r.json").read_text())) == json.loads(json.dumps(_numbers(api.to_dict())))


def test_estimate_equals_the_library_sweep_and_prediction(files):
    xa, ya, xb, yb = files["arrays"]
    sizes = [10, 25, 60]
    spec = MLPSpec.critical("relu", depth=3, lambda_ratio=10.0)
    est = estimate(xa, ya, xb, yb, sizes=sizes, shuffle=False)
    ref = nested_sweep(spec, xa, ya, xb, yb, sizes, methods=("ntk",))
    assert [r["n_train"] for r in est.sweep] == sizes
    for row, p in zip(est.sweep, ref):
        assert (row["mu_L"], row["sigma_L"], row["eps_L"]) == (p.stats.mu, p.stats.sigma, p.stats.eps)
    # the headline numbers: an independent prediction on all training points
    pred = ntk_prediction(train_test_kernels(spec, xa, xb), ya)
    st = loss_stats(pred, yb)
    assert est.mu_L == pytest.approx(st.mu, rel=1e-12) and est.sigma_L == pytest.approx(st.sigma, rel=1e-12)
    assert est.mu_L == pytest.approx(ref[-1].stats.mu, rel=1e-10)
    dist = loss_distribution(pred, yb)
    assert est.quantiles[0.5] == pytest.approx(dist.quantile(0.5), rel=1e-9)
    assert est.quantiles[0.025] < est.quantiles[0.5] < est.quantiles[0.975]
    assert asdict(est.spec) == asdict(spec) and est.fits is not None
    # the full-set numbers do not depend on the order of the training rows
    shuffled = estimate(xa, ya, xb, yb, sizes=sizes, seed=3)
    assert shuffled.mu_L == pytest.approx(est.mu_L, rel=1e-9)
    assert shuffled.sigma_L == pytest.approx(est.sigma_L, rel=1e-9)
    assert shuffled.sweep[0]["mu_L"] != est.sweep[0]["mu_L"]  # but the nested subsets do


def test_standardization_uses_training_statistics_only(files):
    xa, ya, xb, yb = files["arrays"]
    xb = xb + [0.0, 0.0, 0.05]  # a shifted test set must not change the statistics used
    mx, sx, my, sy = xa.mean(0), xa.std(0), ya.mean(0), ya.std(0)
    spec = MLPSpec.critical("relu")
    ref = nested_sweep(spec, (xa - mx) / sx, (ya - my) / sy, (xb - mx) / sx, (yb - my) / sy, [20, 60],
                       methods=("ntk",))
    est = estimate(xa, ya, xb, yb, sizes=[20, 60], standardize="both", shuffle=False)
    assert [r["mu_L"] for r in est.sweep] == pytest.approx([p.stats.mu for p in ref], rel=1e-12)
    assert est.to_dict()["preprocessing"]["x_mean"] == pytest.approx(list(mx), rel=1e-14)
    only_x = estimate(xa, ya, xb, yb, sizes=[20, 60], standardize="features", shuffle=False)
    ref_x = nested_sweep(spec, (xa - mx) / sx, ya, (xb - mx) / sx, yb, [20, 60], methods=("ntk",))
    assert only_x.mu_L == pytest.approx(ref_x[-1].stats.mu, rel=1e-10)
    assert "targets as given" in only_x.summary()
    const = fit_preprocessing(np.c_[xa, np.ones(N_TRAIN)], ya, "features")
    assert const.constant_features == 1 and np.all(np.isfinite(const.apply_x(np.c_[xb, np.zeros(N_TEST)])))


def test_ensemble_option_is_the_library_trainer(files):
    xa, ya, xb, yb = files["arrays"]
    opts = EnsembleOptions(members=3, width=8, steps=20, seed=2)  # heavy-ball momentum, beta = 0.9, by default
    est = estimate(xa, ya, xb, yb, sizes=[30, 60], standardize="both", ensemble=opts, shuffle=False)
    prep = fit_preprocessing(xa, ya, "both")
    x, y, xt, yt = prep.apply_x(xa), prep.apply_y(ya), prep.apply_x(xb), prep.apply_y(yb)
    spec = MLPSpec.critical("relu")
    eta = default_eta(spec, x, 0.5, optimizer="momentum", momentum=0.9)
    res = train_ensemble(spec.with_width(8), x, y, xt, yt, n_members=3, steps=20, eta=eta, seed=2,
                         optimizer="momentum", momentum=0.9, progress=False)
    assert est.ensemble["member_losses"] == [float(v) for v in res.test_losses]
    same = loss_stats(ntk_prediction(train_test_kernels(spec, x, xt), y, steps=20, eta=eta, optimizer="momentum",
                                     momentum=0.9), yt)
    assert est.ensemble["infinite_same_steps"]["mu_L"] == pytest.approx(same.mu, rel=1e-12)
    assert "finite-width ensemble: 3 nets of width 8, full-batch momentum (beta = 0.9) for 20 steps" in est.summary()


def test_ensemble_trains_until_converged_by_default(files):
    """steps=None: the infinite-width ensemble after the chosen steps is within tol of t = infinity."""
    xa, ya, xb, yb = files["arrays"]
    opts = EnsembleOptions(members=2, width=8, tol=0.02, min_steps=40)
    est = estimate(xa, ya, xb, yb, sizes=[30, 60], standardize="both", ensemble=opts)
    e = est.ensemble
    prep = fit_preprocessing(xa[np.random.default_rng(0).permutation(N_TRAIN)], ya, "both")
    spec = MLPSpec.critical("relu")
    x = prep.apply_x(xa[np.random.default_rng(0).permutation(N_TRAIN)])
    y = prep.apply_y(ya[np.random.default_rng(0).permutation(N_TRAIN)])
    conv = converged_steps(train_test_kernels(spec, x, prep.apply_x(xb)), y, prep.apply_y(yb), tol=0.02,
                           eta=default_eta(spec, x, 0.5, optimizer="momentum", momentum=0.9), max_steps=20000)
    rule = e["stopping"]  # then the stopping rule on the members' mean train loss, from those steps on
    assert e["converged"] is True and rule["min_steps"] == max(conv.steps, 40) and rule["cap"] == 20000
    assert e["steps"] == rule["steps"] and rule["min_steps"] <= e["steps"] <= 20000
    assert rule["converged"] == (e["steps"] < 20000 or abs(rule["drift"]) < 0.01)
    assert "stopping rule: mean train loss within 1 % over the last quarter" in est.summary()
    plain = estimate(xa, ya, xb, yb, sizes=[30, 60], standardize="both",
                     ensemble=EnsembleOptions(members=2, width=8, tol=0.02, min_steps=40, converge=None)).ensemble
    assert plain["stopping"] is None and plain["steps"] == max(conv.steps, 40)
    drift = e["train_loss_drift"]
    assert drift["to_step"] == e["steps"] and 0 <= drift["from_step"] < drift["to_step"]
    assert abs(e["infinite_same_steps"]["mu_L"] / est.mu_L - 1) <= 0.02
    assert abs(e["infinite_same_steps"]["sigma_L"] / est.sigma_L - 1) <= 0.02
    gd = EnsembleOptions(optimizer="gd", momentum=0.9)
    assert gd.momentum is None
    with pytest.raises(ValueError, match="optimizer"):
        EnsembleOptions(optimizer="adam")


def test_auto_sizes_end_at_the_training_set():
    assert auto_sizes(300)[-1] == 300 and auto_sizes(300)[0] == 10 and len(auto_sizes(300)) == 8
    assert auto_sizes(20000)[0] == 200 and auto_sizes(5) == [5]


def test_refuses_when_too_large_and_the_suggestion_fits():
    sizes, n_t = [1000, 3000], 1000
    cost = cost_estimate(3000, n_t, 4, 1, sizes)
    limit = cost_estimate(3000, 500, 4, 1, sizes).memory_bytes
    model = lambda m, t: cost_estimate(m, t, 4, 1, [s for s in sizes if s < m] + [m])  # noqa: E731
    with pytest.raises(TooLargeError, match="Would fit") as info:
        check_budget(cost, n_t, sizes, max_memory_bytes=limit, max_seconds=1e9, model=model)
    t_fit = int(re.search(r"--test-points (\d+)", str(info.value)).group(1))
    assert 500 <= t_fit < n_t
    assert model(3000, t_fit).memory_bytes <= limit < model(3000, t_fit + 1).memory_bytes
    n_fit = int(re.search(r"--sizes ending at (\d+)", str(info.value)).group(1))
    assert 1000 < n_fit < 3000
    assert model(n_fit, n_t).memory_bytes <= limit < model(n_fit + 1, n_t).memory_bytes
    with pytest.raises(TooLargeError, match="min, the limits"):  # the time limit refuses too
        check_budget(cost, n_t, sizes, max_memory_bytes=1e12, max_seconds=cost.seconds / 2, model=model)
    check_budget(cost, n_t, sizes, max_memory_bytes=cost.memory_bytes, max_seconds=cost.seconds)  # fits: no error


def test_cli_refuses_too_large_and_writes_nothing(files, tmp_path, capsys):
    train, test = files["npz"]
    out = tmp_path / "out.json"
    assert main(["estimate", "--train", train, "--test", test, "--max-memory-gb", "1e-6", "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert "too large for this machine" in err and "Would fit" in err
    assert not out.exists()


def _bad(tmp_path, name, text=None, **arrays):
    path = tmp_path / name
    if arrays:
        np.savez(path, **arrays)
    else:
        path.write_text(text)
    return str(path)


GOOD_HEAD = "a,b,t\n"
BAD_FILES = {  # case: (train file maker, expected words in the message)
    "missing target column": (lambda p: _bad(p, "tr.csv", "a,b,y\n1,2,3\n4,5,6\n"), "target column(s) ['t'] not found"),
    "non-numeric cell": (lambda p: _bad(p, "tr.csv", GOOD_HEAD + "1,2,3\n4,five,6\n"),
                         "line 3, column 'b': non-numeric cell 'five'"),
    "empty cell": (lambda p: _bad(p, "tr.csv", GOOD_HEAD + "1,,3\n4,5,6\n"), "line 2, column 'b': an empty cell"),
    "nan in csv": (lambda p: _bad(p, "tr.csv", GOOD_HEAD + "1,2,3\nnan,5,6\n"), "'nan' is not finite"),
    "ragged row": (lambda p: _bad(p, "tr.csv", GOOD_HEAD + "1,2,3\n4,5\n"), "line 3: 2 cells; expected 3"),
    "empty csv": (lambda p: _bad(p, "tr.csv", ""), "empty file"),
    "header only": (lambda p: _bad(p, "tr.csv", GOOD_HEAD), "no data rows"),
    "feature count differs": (lambda p: _bad(p, "tr.csv", "a,t\n1,3\n4,6\n"), "feature columns but the training file"),
    "wrong npz keys": (lambda p: _bad(p, "tr.npz", X=np.ones((3, 2)), Y=np.ones(3)), "missing ['x', 'y']"),
    "nan in npz": (lambda p: _bad(p, "tr.npz", x=np.array([[1.0, np.nan], [2.0, 3.0]]), y=np.ones(2)),
                   "NaN or infinity"),
    "npz rows differ": (lambda p: _bad(p, "tr.npz", x=np.ones((3, 2)), y=np.ones(4)), "'x' has 3 points but 'y' has 4"),
    "npz x not 2-D": (lambda p: _bad(p, "tr.npz", x=np.ones(3), y=np.ones(3)), "expected 2-D"),
    "npz strings": (lambda p: _bad(p, "tr.npz", x=np.array([["a", "b"]]), y=np.ones(1)), "expected real numbers"),
    "empty npz": (lambda p: _bad(p, "tr.npz", x=np.ones((0, 2)), y=np.ones(0)), "empty data"),
    "not an npz": (lambda p: _bad(p, "tr.npz", "hello"), "not a readable .npz"),
    "unknown extension": (lambda p: _bad(p, "tr.txt", GOOD_HEAD + "1,2,3\n"), "unknown file type '.txt'"),
    "missing file": (lambda p: str(p / "nowhere.csv"), "no such file"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_training_file_is_a_clear_error_and_writes_nothing(case, tmp_path, capsys):
    maker, words = BAD_FILES[case]
    train = maker(tmp_path)
    npz = train.endswith(".npz")
    test = (_bad(tmp_path, "te.npz", x=np.ones((3, 2)), y=np.ones(3)) if npz
            else _bad(tmp_path, "te.csv", GOOD_HEAD + "1,2,3\n4,5,6\n7,8,9\n"))
    target = [] if npz else ["--target", "t"]
    out = tmp_path / "out"
    before = set(os.listdir(tmp_path))
    code = main(["estimate", "--train", train, "--test", test, *target, "--json", str(out / "r.json"),
                 "--csv", str(out / "r.csv"), "--plot", str(out / "r.png"), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("ntkuq estimate: error: ") and words in err, err
    assert set(os.listdir(tmp_path)) == before and not out.exists()
    with pytest.raises(DataError, match=re.escape(words)):
        estimate_files(train, test, target=None if npz else "t")


def test_a_failure_during_the_computation_writes_nothing(tmp_path, capsys):
    """Duplicate training points make the kernel singular: a clear error naming --diag-reg, no files."""
    x = np.repeat(np.arange(10.0)[:, None], 2, axis=0) * [1.0, 0.5]
    tr, te = tmp_path / "tr.npz", tmp_path / "te.npz"
    np.savez(tr, x=x, y=x[:, 0])
    np.savez(te, x=x[:5] + 0.1, y=x[:5, 0])
    out = tmp_path / "r.json"
    assert main(["estimate", "--train", str(tr), "--test", str(te), "--json", str(out), "--quiet"]) == 1
    assert "diag_reg" in capsys.readouterr().err and not out.exists()
    assert main(["estimate", "--train", str(tr), "--test", str(te), "--json", str(out), "--quiet",
                 "--diag-reg", "1e-6"]) == 0 and out.exists()


def test_npz_target_option_and_vector_y(files, tmp_path):
    xa, ya, xb, yb = files["arrays"]
    np.savez(tmp_path / "v.npz", x=xa, y=ya[:, 0])
    table = read_table(tmp_path / "v.npz")
    assert table.y.shape == (N_TRAIN, 1)
    with pytest.raises(DataError, match="CSV columns"):
        read_table(tmp_path / "v.npz", "t1")
    with pytest.raises(DataError, match="needs its target columns named"):
        read_table(files["csv"][0])


def test_mixed_formats_test_points_and_target_with_npz(files, capsys):
    (csv_train, _), (_, npz_test) = files["csv"], files["npz"]
    mixed = estimate_files(csv_train, npz_test, target="t1,t2", sizes=[30, 60], test_points=10)
    xa, ya, xb, yb = files["arrays"]
    ref = estimate(xa, ya, xb[:10], yb[:10], sizes=[30, 60])
    assert mixed.n_test == 10 and mixed.mu_L == ref.mu_L and mixed.sigma_L == ref.sigma_L
    assert main(["estimate", "--train", files["npz"][0], "--test", npz_test, "--target", "t1"]) == 1
    assert "names CSV columns" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sizes: expected 'auto'"):
        estimate(xa, ya, xb, yb, sizes="all")


def test_estimate_reports_both_parts_of_the_variance(tmp_path):
    from ntkuq.infinite import eps_for_test_size

    x, y = make_data(N_TRAIN, 0)
    xt, yt = make_data(N_TEST, 1)
    est = estimate(x, y, xt, yt, sizes=[20, 40, 60], shuffle=False)
    assert est.var_diag + est.var_offdiag == pytest.approx(est.sigma_L**2, rel=1e-10)
    # eps_L at N_T from its parts, the population and the floor as the subset formula's two limits
    assert eps_for_test_size(est.mu_L, est.var_diag, est.var_offdiag, N_TEST, N_TEST) == pytest.approx(est.eps_L)
    assert est.eps_L**2 == pytest.approx(est.eps_floor**2 + (N_TEST - 1) / N_TEST * est.eps_population**2,
                                         rel=1e-10)
    d = est.to_dict()
    assert {"var_diag", "var_offdiag", "eps_population", "eps_floor"} <= set(d)
    last = est.sweep[-1]
    assert last["var_diag"] == pytest.approx(est.var_diag, rel=1e-8)
    header, *lines = est.sweep_csv().splitlines()
    assert header.split(",")[-3:] == ["var_diag", "var_offdiag", "eps_population"] and len(lines) == 3
    assert "population" in est.summary() and "floor" in est.summary()
