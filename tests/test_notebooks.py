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


@pytest.mark.parametrize("md", CHAPTERS, ids=[md.stem for md in CHAPTERS])
def test_every_figure_is_fitted_to_the_column(md):
    """A chapter's figures go through `fit_column` (text >= 9.5 pt, no wider than the column): every cell that
    shows a figure calls it, and the stored images are no wider than the column (or shown shrunk)."""
    import base64
    import io

    from PIL import Image

    from ntkuq.book import COLUMN_INCHES

    for cell in jupytext.read(md).cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            assert cell.source.count("fit_column(") >= cell.source.count("plt.show()"), \
                f"{md.name}: a figure shown without fit_column:\n{cell.source[:300]}"
    path = ROOT / "notebooks" / f"{md.stem}.ipynb"
    if not path.exists():
        pytest.skip(f"no {path.name}")
    widest = 100 * COLUMN_INCHES * 1.01 + 25   # px at 100 dpi, the saved bounding box's padding included
    for cell in nbformat.read(path, as_version=4).cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            png = o.get("data", {}).get("image/png")
            if png:
                width = Image.open(io.BytesIO(base64.b64decode(png))).size[0]
                assert width <= widest, f"{path.name}: a figure {width} px wide, shown shrunk below 9 pt"
