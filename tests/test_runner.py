"""ntkuq.book.runner: the chapter list, code detection and presets (executing chapters is nbval's job)."""
import pytest

from ntkuq.book import ROOT, chapters, has_code, load_preset


def test_chapters_follow_the_toc_and_exist():
    mds = chapters()
    assert mds[0].stem == "intro" and all(p.exists() for p in mds)
    with_code = {p.stem for p in mds if has_code(p)}
    assert {"kernels", "dynamics", "synthesis"} <= with_code and "notation" not in with_code
    executed = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert with_code == executed


def test_presets():
    cpu = load_preset("cpu")
    assert isinstance(cpu, dict) and cpu
    with pytest.raises(ValueError, match=r"preset: expected one of \[.*'cpu'"):
        load_preset("nonexistent")


def test_compute_cells_are_the_parameters_imports_and_compute_before_the_check():
    from ntkuq.book.runner import POINT_CHAPTERS, compute_cells
    for stem in POINT_CHAPTERS:
        cells = compute_cells(ROOT / "book" / f"{stem}.md")
        assert cells[0].lstrip().startswith("tasks = ") and "results_dir = None" in cells[0]
        assert any("_width_study(" in c for c in cells)
        assert not any(c.startswith((":", "---")) or "NBVAL_CHECK_OUTPUT" in c for c in cells)


def test_points_without_papermill_are_the_points_the_chapters_find(tmp_path, monkeypatch):
    """`runner points` runs the chapters' own compute cells (IPython and myst_nb stubbed, as on a GPU machine
    without them) and stores exactly the points that the chapter, run afterwards, finds finished."""
    import sys

    from ntkuq import MLPSpec
    from ntkuq.book import runner
    from ntkuq.data import load, subset_sizes
    from ntkuq.study import ResultStore, finite_width_study, infinite_width_study

    tiny = {"all": {"seed": 1, "calorimeter_cells": 5, "calorimeter_layers": 5, "tasks": ["calorimeter"]},
            "scaling_infinite": {"n_min": 20, "n_max": 40, "n_sizes": 2, "n_test": 16, "draws": 2},
            "scaling_finite": {"n_min": 20, "n_max": 30, "n_sizes": 2, "n_test": 16, "members": 2, "steps": 4}}
    monkeypatch.setattr(runner, "load_preset", lambda name, root=ROOT: tiny)
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("myst_nb", "IPython", "IPython.display"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails: as on a machine without them
    runner.run_points("tiny", out=tmp_path / "out")
    assert sys.modules["myst_nb"] is None  # the stubs are gone again

    class Finished(ResultStore):
        def put(self, key, row):
            raise AssertionError(f"point {key} was not stored by run_points")

    store = Finished(tmp_path / "out" / "points")
    assert len(list((tmp_path / "out" / "points").glob("*.json"))) == 2 * 2 * 2 + 2 * 3
    data = load("calorimeter", n_pool=80, n_test=16, seed=1, downsample=2, grayscale=True,
                calorimeter_cells=5, calorimeter_layers=5)
    infinite_width_study(data, MLPSpec.critical("relu", depth=3, lambda_ratio=10.0), subset_sizes(20, 40, 2),
                         draws=2, store=store)
    data = load("calorimeter", n_pool=30, n_test=16, seed=1, downsample=2, grayscale=True,
                calorimeter_cells=5, calorimeter_layers=5)
    finite_width_study(data, MLPSpec.critical("relu", depth=3, lambda_ratio=10.0, width=30),
                       subset_sizes(20, 30, 2), members=2, steps=4, optimizer="momentum", momentum=0.9,
                       tol=0.01, min_steps=0, warmup=0, eta_fraction=0.5, draws=1, seed=1, store=store)
    with pytest.raises(runner.PresetError, match="unknown chapters"):
        runner.run_points("tiny", only=["kernels"], out=tmp_path / "out")


def test_table_writes_the_points_as_csv(tmp_path, capsys):
    from ntkuq.book.runner import main, write_table
    from ntkuq.errors import PresetError
    from ntkuq.study import ResultRow, ResultStore, read_csv

    store = ResultStore(tmp_path / "points")
    store.put("k1", ResultRow(task="mnist", n_train=10, width=None, optimizer="gd", method="ntk", draw=0,
                              study="infinite", mu=0.5, sigma=0.1, eps=0.2, var_diag=0.006, var_offdiag=0.004))
    path = write_table("x", out=tmp_path)
    (row,) = read_csv(path)
    assert row["mu"] == 0.5 and row["var_diag"] == 0.006 and row["width"] == "inf"
    with pytest.raises(PresetError, match="no stored points"):
        write_table("x", out=tmp_path / "nothing")
    assert main(["table", "x", "--out", str(tmp_path / "nothing")]) == 2
    assert "no stored points" in capsys.readouterr().err


def test_background_points_are_the_points_the_chapter_finds(tmp_path, monkeypatch):
    """scripts/finite_points.py builds each scaling_finite point with the chapter's own arguments: the points it
    stores under a preset are the ones the chapter's compute cells then find finished (and the other way)."""
    import importlib.util
    import os

    from ntkuq.book import runner

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # the script's one-thread default: not here
    spec = importlib.util.spec_from_file_location("finite_points", ROOT / "scripts" / "finite_points.py")
    fp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fp)
    tiny = {"all": {"seed": 1, "calorimeter_cells": 4, "calorimeter_layers": 4, "tasks": ["calorimeter"]},
            "scaling_finite": {"n_min": 12, "n_max": 20, "n_sizes": 2, "n_test": 10, "members": 2,
                               "min_steps": 5, "warmup": 3, "converge": 0.05, "max_steps": 30}}
    monkeypatch.setattr(runner, "load_preset", lambda name, root=ROOT: tiny)
    monkeypatch.setattr(fp, "load_preset", lambda name, root=ROOT: tiny)
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "cache"))
    points = tmp_path / "out" / "points"
    jobs = fp.preset_jobs("tiny", points)
    assert [(j["task"], j["n_train"]) for j in sorted(jobs, key=fp.cost)] == [("calorimeter", 12),
                                                                              ("calorimeter", 20)]
    for job in jobs:
        finished, line = fp.run_job(job)
        assert finished and "steps" in line
    stored = sorted(points.glob("*.json"))
    assert len(stored) == 2 * 3  # per size the ensemble and the infinite width at T and at t = inf
    assert not list((tmp_path / "out" / "partial").glob("*.npz"))  # the snapshots go once their points are stored
    finished, line = fp.run_job(dict(jobs[0], n_train=16, deadline=1.0))  # --hours: past its end
    assert not finished and "not started" in line
    before = {p: p.stat().st_mtime_ns for p in stored}
    runner.run_points("tiny", only=["scaling_finite"], out=tmp_path / "out")
    assert {p: p.stat().st_mtime_ns for p in sorted(points.glob("*.json"))} == before  # all found, none rewritten
    with pytest.raises(ValueError, match="WIDTH_N_TRAIN"):  # 946 is not a size of the tiny preset
        fp.width_jobs(["mnist"], [10.0], [30], tmp_path / "w")
    monkeypatch.setattr(fp, "WIDTH_N_TRAIN", 20)
    widths = fp.width_jobs(["mnist"], [10.0, 1.0], [64, 30], tmp_path / "w")
    assert [(j["lambda_ratio"], j["width"]) for j in sorted(widths, key=fp.cost)][:2] in (
        [(10.0, 30), (1.0, 30)], [(1.0, 30), (10.0, 30)])
    assert all(j["n_train"] == fp.WIDTH_N_TRAIN and j["min_steps"] == 0 and j["max_steps"] == 20000
               and j["n_test"] == 10 for j in widths)  # the (tiny) preset's settings, with the study's overrides
    with pytest.raises(ValueError, match="task"):
        fp.cost(dict(jobs[0], task="imagenet"))
    assert fp.main(["preset", "tiny", "--jobs", "0"]) == 2
    assert fp.main(["preset", "tiny", "--hours", "0"]) == 2


def test_a_trajectory_past_the_rule_passes_through_the_studys_point(tmp_path, monkeypatch):
    """scripts/trajectory.py trains a point of a preset's scaling_finite chapter past its stopping rule; where
    the rule passes on the trajectory (ntkuq.finite.first_pass), the chapter's stored point lies: same step,
    same mu_L and eps_L."""
    import importlib.util
    import json
    import os
    import sys

    import numpy as np

    from ntkuq.finite import StopRule, first_pass
    from ntkuq.study import committed_rows

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    modules = {}
    for name in ("finite_points", "trajectory"):
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        modules[name] = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, modules[name])
        spec.loader.exec_module(modules[name])
    fp, tr = modules["finite_points"], modules["trajectory"]
    tiny = {"all": {"seed": 1, "calorimeter_cells": 4, "calorimeter_layers": 4, "tasks": ["calorimeter"]},
            "scaling_finite": {"n_min": 12, "n_max": 20, "n_sizes": 2, "n_test": 10, "members": 3,
                               "min_steps": 5, "warmup": 3, "converge": 0.2, "max_steps": 400}}
    monkeypatch.setattr(fp, "load_preset", lambda name, root=ROOT: tiny)
    monkeypatch.setenv("NTKUQ_CACHE_DIR", str(tmp_path / "cache"))
    job = [j for j in fp.preset_jobs("tiny", tmp_path / "points") if j["n_train"] == 20][0]
    finished, line = fp.run_job(job)
    assert finished, line
    (point,) = committed_rows(tmp_path / "points", method="ensemble")
    assert point["params"]["stopping"]["converged"] and point["steps"] < 400, point["params"]["stopping"]
    path = tr.trajectory("tiny", "calorimeter", 20, 400, out=tmp_path / "traj", progress=False)
    rec = json.loads(path.read_text())
    assert rec["min_steps"] == point["params"]["stopping"]["min_steps"]
    step, _ = first_pass(StopRule(0.2, rec["min_steps"]), rec["steps"], rec["train_loss"], 400, rec["warmup"])
    j = rec["steps"].index(step)
    assert step == point["steps"]
    np.testing.assert_allclose([rec["mu"][j], rec["eps"][j]], [point["mu"], point["eps"]], rtol=1e-9)
    assert len(rec["mu_inf"]) == len(rec["steps"]) and rec["eps_limit"] > 0
    assert not list((tmp_path / "traj" / "partial").glob("*.npz"))
    from ntkuq.book import committed_trajectories
    ((back, passed),) = committed_trajectories(tmp_path / "traj")
    assert back == rec and passed == point["steps"]
    assert committed_trajectories(tmp_path / "nowhere") == []
    (tmp_path / "traj" / "broken.json").write_text('{"task": "mnist"}')
    with pytest.raises(ValueError, match="broken.json.*missing"):
        committed_trajectories(tmp_path / "traj")
    with pytest.raises(ValueError, match="task, n_train"):
        tr.trajectory("tiny", "mnist", 20, 10, out=tmp_path / "traj")
