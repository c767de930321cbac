"""The outputs that nbval compares must be the same on every CPU.

Float32 training (the finite-width networks) differs in its last bits from one CPU to another, and so do
numbers printed from it; a glue() call in a checked cell adds an `application/papermill.record` output
holding the full-precision number.  So a cell marked NBVAL_CHECK_OUTPUT must not glue, and if it reads
anything computed by float32 training (traced through the chapter's assignments, below) it may print
words and whole numbers only: no decimals, percentages or exponents.
"""
from __future__ import annotations

import ast
import re

import jupytext
import nbformat
import pytest

from ntkuq.book import ROOT, chapters, has_code

CHECK = "NBVAL_CHECK_OUTPUT"
FLOAT32_SOURCES = {
    "train_ensemble", "finite_width_study", "width_sweep", "compare_ensemble", "init_members", "init_mlp",
    "apply_mlp", "alive_fraction", "empirical_ntk", "empirical_nngp", "run_steps", "make_step",
}
"""Library functions whose results come from float32 networks."""
MUTATORS = {"append", "extend", "update", "add", "insert", "setdefault"}
FRACTIONAL = re.compile(r"\d+\.\d+(?:[eE][+-]?\d+)?|\d+(?:\.\d+)?\s*%|\d+[eE][+-]?\d+")
"""A printed decimal, percentage or exponent (numbers written in the cell's source are constants)."""

CHAPTERS = [md for md in chapters() if has_code(md)]


def _names(node: ast.AST) -> set:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _called(node: ast.AST) -> set:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return out


def _base(target: ast.AST) -> set:
    while isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
        target = target.value
    return _names(target)


def _taints(tree: ast.AST, tainted: set, sources: set) -> None:
    """Add to `tainted` the names that (transitively) hold results of `sources`; functions that call a
    source become sources themselves."""
    def dirty(node):
        return bool(_called(node) & sources or _names(node) & tainted)

    changed = True
    while changed:
        before = (len(tainted), len(sources))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.Lambda)) and dirty(node):
                if isinstance(node, ast.FunctionDef):
                    sources.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None \
                    and dirty(node.value):
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    tainted |= _base(t)
            elif isinstance(node, (ast.For, ast.comprehension)) and dirty(node.iter):
                tainted |= _base(node.target)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in MUTATORS and any(dirty(a) for a in node.args):
                tainted |= _base(node.func.value)
        changed = (len(tainted), len(sources)) != before


def checked_cells(md):
    """(index among code cells, source, reads float32 results) of every checked cell of a chapter."""
    tainted: set = set()
    sources = set(FLOAT32_SOURCES)
    out = []
    code = [c for c in jupytext.read(md).cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(src)
        reads = bool(_names(tree) & tainted or _called(tree) & sources)
        _taints(tree, tainted, sources)
        if CHECK in cell.source:
            out.append((i, cell.source, reads))
    return out


@pytest.mark.parametrize("md", CHAPTERS, ids=[md.stem for md in CHAPTERS])
def test_checked_cells_are_machine_independent(md):
    executed = [c for c in nbformat.read(ROOT / "notebooks" / f"{md.stem}.ipynb", as_version=4).cells
                if c.cell_type == "code"]
    for i, source, reads_float32 in checked_cells(md):
        where = f"{md.name}, code cell {i}"
        assert "glue(" not in source, f"{where}: a checked cell must not glue (its record holds every digit)"
        outputs = executed[i].get("outputs", [])
        kinds = {k for o in outputs for k in o.get("data", {})}
        assert not any(k.startswith("application/papermill") for k in kinds), where
        if reads_float32:
            text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
            bad = [t for t in FRACTIONAL.findall(text) if t not in source]
            assert not bad, (f"{where} prints numbers from float32 training ({bad[:3]}...): print verdicts in "
                             f"the checked cell and the numbers in an unchecked one")


def test_the_rule_catches_float32_numbers():
    """The tracing finds a glue and a printed number of a trained ensemble, and passes a verdict."""
    tainted: set = set()
    sources = set(FLOAT32_SOURCES)
    _taints(ast.parse("res = train_ensemble(spec, x)\nfor k, v in res.items():\n    out[k] = v.mu\n"
                      "def f(a):\n    return width_sweep(a)\nsw = f(1)\n"), tainted, sources)
    assert {"res", "k", "v", "out", "sw"} <= tainted and "f" in sources
    assert FRACTIONAL.findall("mu 0.045, dead 82 %, 1e-3") == ["0.045", "82 %", "1e-3"]
    assert not FRACTIONAL.findall("T = 121: shrinking")
