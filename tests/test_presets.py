"""Presets are validated against each chapter's parameters cell before anything runs."""
import ast

import pytest

from ntkuq.book import parameter_defaults, runner, validate_preset
from ntkuq.errors import PresetError


@pytest.fixture
def no_execution(monkeypatch):
    """Fail the test if any chapter would be executed."""
    def boom(*args, **kwargs):
        raise AssertionError("a chapter was executed")
    monkeypatch.setattr(runner, "execute_chapter", boom)


@pytest.mark.parametrize("name", ["ci", "cpu", "paper"])
def test_committed_presets_are_valid(name):
    per_chapter = validate_preset(runner.load_preset(name), name)
    assert "seed" not in per_chapter["synthesis"]  # 'all' keys go only to chapters that declare them
    assert all("results_dir" not in p for p in per_chapter.values())


def test_parameters_cell_read_without_executing():
    d = parameter_defaults(runner.ROOT / "book" / "scaling_finite.md")
    assert d["steps"] == "auto" and d["members"] == 16 and d["results_dir"] is None


@pytest.mark.parametrize("preset, words", [
    ({"nochapter": {"seed": 1}}, ["unknown chapter 'nochapter'", "'kernels'", "'all'"]),
    ({"kernels": {"bogus": 1}}, ["unknown parameter 'bogus'", "'n_nets'"]),
    ({"all": {"bogus": 1}}, ["all: unknown parameter 'bogus'", "'seed'"]),
    ({"kernels": {"n_nets": "many"}}, ["kernels.n_nets", "expected int", "got str"]),
    ({"kernels": {"n_nets": True}}, ["kernels.n_nets", "expected int", "got bool"]),
    ({"kernels": {"n_nets": 2.5}}, ["kernels.n_nets", "expected int", "got float"]),
    ({"kernels": {"widths": 64}}, ["kernels.widths", "expected list", "got int"]),
    ({"kernels": {"widths": [64, "x"]}}, ["kernels.widths", "expected list"]),
    ({"scaling_finite": {"grayscale": 1}}, ["scaling_finite.grayscale", "expected bool"]),
    ({"scaling_finite": {"steps": [1]}}, ["scaling_finite.steps", "expected int or str"]),
    ({"all": {"seed": "zero"}}, ["all.seed", "expected int"]),
    ({"kernels": [1, 2]}, ["kernels: expected a mapping"]),
    ([1, 2], ["expected a mapping of chapter names"]),
    ({"scaling_infinite": {"results_dir": "/tmp"}}, ["unknown parameter 'results_dir'"]),
    ({"kernels": {"x = 1; import os; y": 1}}, ["unknown parameter 'x = 1; import os; y'"]),
])
def test_invalid_preset_lists_the_valid_names(preset, words):
    with pytest.raises(PresetError) as err:
        validate_preset(preset, "mine")
    for w in words:
        assert w in str(err.value)


def test_accepted_types():
    out = validate_preset({"kernels": {"lambda_ratio": 3, "widths": [8, 16]}, "scaling_finite": {"steps": 500},
                           "all": {"seed": 3}, "synthesis": None})
    assert out["kernels"] == {"lambda_ratio": 3, "widths": [8, 16], "seed": 3}
    assert out["scaling_finite"]["steps"] == 500


def test_unknown_preset_name_exits_nonzero(capsys, no_execution):
    assert runner.main(["preset", "no_such_preset"]) == 2
    err = capsys.readouterr().err
    assert "preset: expected one of" in err and "'cpu'" in err


def test_invalid_preset_exits_nonzero_before_running(monkeypatch, tmp_path, capsys, no_execution):
    monkeypatch.setattr(runner, "load_preset", lambda name, root=runner.ROOT: {"kernels": {"n_nets": "x"}})
    assert runner.main(["preset", "ci", "--out", str(tmp_path / "out")]) == 2
    assert "kernels.n_nets" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_only_chapter_exits_nonzero(tmp_path, capsys, no_execution):
    assert runner.main(["preset", "ci", "--only", "kernelz", "--out", str(tmp_path / "o")]) == 2
    assert "kernelz" in capsys.readouterr().err


def test_unwritable_output_folder_refused_first(tmp_path, capsys, no_execution):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert runner.main(["preset", "ci", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "out: expected a writable results folder" in err and "a_file" in err


def test_values_reach_the_notebook_as_literals():
    """papermill writes `name = repr(value)`: with names restricted to the parameters cell, a hostile
    string value stays a string constant."""
    from papermill.translators import PythonTranslator

    code = PythonTranslator.codify({"task": 'mnist"; import os; os.system("true")  #', "widths": [1, 2]})
    tree = ast.parse(code)
    assigns = [n for n in tree.body if isinstance(n, ast.Assign)]
    assert len(assigns) == 2 and all(isinstance(n, ast.Assign) for n in tree.body)
    assert isinstance(assigns[0].value, ast.Constant)


def test_notebooks_command_refuses_unknown_chapters(capsys, no_execution):
    assert runner.main(["notebooks", "kernelz"]) == 2
    assert "kernelz" in capsys.readouterr().err


def test_repo_path_finds_repository_files_from_anywhere(tmp_path, monkeypatch):
    """A chapter run outside book/ (a downloaded notebook) finds committed files, or says how to get them."""
    from ntkuq.book import ROOT, repo_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NTKUQ_BOOK_ROOT", raising=False)
    assert repo_path("../tests/golden/nt_golden.npz") == ROOT / "tests" / "golden" / "nt_golden.npz"
    clone = tmp_path / "clone"
    (clone / "results" / "x").mkdir(parents=True)
    monkeypatch.setenv("NTKUQ_BOOK_ROOT", str(clone))
    assert repo_path("../results/x") == clone / "results" / "x"        # the named clone comes first
    (tmp_path / "here.json").write_text("{}")
    assert str(repo_path("here.json")) == "here.json"   # as given, when it exists
    with pytest.raises(FileNotFoundError, match="NTKUQ_BOOK_ROOT"):
        repo_path("../results/not-committed")
    assert str(repo_path("../results/not-committed", required=False)) == "../results/not-committed"
