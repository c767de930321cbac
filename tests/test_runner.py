"""ntkuq.runner: the chapter list, code detection and presets (executing chapters is nbval's job)."""
import pytest

from ntkuq.runner import ROOT, chapters, has_code, load_preset


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
