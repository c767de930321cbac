"""The executed notebooks that nbval checks are the current book sources, run at their defaults."""
import jupytext
import nbformat
import pytest

from ntkuq.book import ROOT, chapters, has_code

CHAPTERS = [md for md in chapters() if has_code(md)]


@pytest.mark.parametrize("md", CHAPTERS, ids=[md.stem for md in CHAPTERS])
def test_notebook_matches_its_source(md):
    path = ROOT / "notebooks" / f"{md.stem}.ipynb"
    assert path.exists(), f"run `python -m ntkuq.book.runner notebooks {md.stem}` to create {path.name}"
    source = [c.source for c in jupytext.read(md).cells if c.cell_type == "code"]
    executed = nbformat.read(path, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert [c.source for c in code] == source, \
        f"{path.name} is stale: rerun `python -m ntkuq.book.runner notebooks {md.stem}`"
    assert all(c.get("execution_count") for c in code), f"{path.name} was not fully executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


def test_every_chapter_has_a_parameters_cell():
    for md in CHAPTERS:
        tagged = [c for c in jupytext.read(md).cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{md.name}: expected one cell tagged 'parameters', found {len(tagged)}"


def _executed_notebooks():
    """The nbval notebooks and every preset's executed notebooks."""
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "results").glob("*/notebooks/*.ipynb"))


@pytest.mark.parametrize("path", _executed_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_figures_were_drawn(path):
    """A cell that shows a figure holds its image (a notebook run under a non-inline backend, e.g. MPLBACKEND=Agg,
    keeps none)."""
    executed = nbformat.read(path, as_version=4)
    for cell in executed.cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            kinds = {k for o in cell.get("outputs", []) for k in o.get("data", {})}
            assert "image/png" in kinds, f"{path.name}: a cell calls plt.show() but holds no image; rerun it " \
                                         "without MPLBACKEND=Agg"
