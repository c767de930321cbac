"""The student edition: the book without solutions (scripts/book.sh builds it into _build/student).

The solution remover is tested on every chapter's own notebook; the built edition, when present (CI builds
it), is checked page by page against the full book: the same exercises, no solution, no solution text.
"""
import importlib.util
import json
import os

import jupytext
import pytest
from bs4 import BeautifulSoup

from ntkuq.book import ROOT, chapters

SPEC = importlib.util.spec_from_file_location("ntkuq_book_ext", ROOT / "book" / "_ext" / "ntkuq_book.py")
EXT = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(EXT)
FULL = ROOT / "_build" / "html"
STUDENT = ROOT / "_build" / "student" / "_build" / "html"
WITH_SOLUTIONS = [md for md in chapters() if "{solution-start}" in md.read_text(encoding="utf-8")]


def _notebook(md):
    return json.loads(jupytext.writes(jupytext.read(md), fmt="ipynb"))


def _text(nb):
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"])


@pytest.mark.parametrize("md", WITH_SOLUTIONS, ids=[md.stem for md in WITH_SOLUTIONS])
def test_a_chapter_notebook_loses_its_solutions_and_keeps_its_exercises(md):
    nb = _notebook(md)
    stripped = EXT.strip_solutions(nb)
    before, after = _text(nb), _text(stripped)
    assert "{solution-start}" not in after and "{solution-end}" not in after
    assert after.count("{exercise}") == before.count("{exercise}") >= 2
    # the text of every solution is gone: its first substantial line, wherever it stood
    for block in before.split("{solution-start}")[1:]:
        body = block.split("{solution-end}")[0]
        lines = [ln.strip() for ln in body.splitlines()[3:] if len(ln.strip()) > 30 and "`" * 3 not in ln]
        if lines:
            assert lines[0] not in after, f"{md.name}: solution text left: {lines[0]!r}"
    # the chapter itself stays: its parameters cell and every code cell outside the solutions
    code = [c for c in stripped["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)
    assert len(code) < len([c for c in nb["cells"] if c["cell_type"] == "code"]) or "code-cell" not in before


def test_the_remover_handles_text_around_a_solution_and_a_solution_spread_over_cells():
    md = lambda s: {"cell_type": "markdown", "metadata": {}, "source": s}  # noqa: E731
    code = lambda s: {"cell_type": "code", "metadata": {}, "source": s, "outputs": []}  # noqa: E731
    nb = {"cells": [md("intro\n```{exercise}\n:label: a\nQ?\n```\n\n```{solution-start} a\n:class: dropdown\n```\n"
                       "secret one"), code("secret_code = 1"),
                    md("more secret\n```{solution-end}\n```\n\nafter"), code("kept = 2"),
                    md("```{solution-start} b\n```\nsecret two\n```{solution-end}\n```\nend")]}
    out = EXT.strip_solutions(nb)
    text = _text(out)
    assert "secret" not in text and "intro" in text and "after" in text and "kept = 2" in text and "end" in text
    assert [c["cell_type"] for c in out["cells"]] == ["markdown", "markdown", "code", "markdown"]


def _editions():
    if not (STUDENT / "index.html").exists() or not (FULL / "index.html").exists():
        if os.environ.get("NTKUQ_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no built student edition at {STUDENT} (scripts/book.sh builds it)")
        pytest.skip(f"no built student edition at {STUDENT}: run `bash scripts/book.sh` first")


def _pages(root):
    return {p.relative_to(root): p for p in (root / "book").glob("*.html")}


def test_the_student_edition_has_every_exercise_and_no_solution():
    _editions()
    full, student = _pages(FULL), _pages(STUDENT)
    assert set(full) == set(student)
    n_exercises = 0
    for rel, page in full.items():
        a = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        b = BeautifulSoup(student[rel].read_text(encoding="utf-8"), "html.parser")
        sol_a, sol_b = a.select("div.solution"), b.select("div.solution")
        ex_a, ex_b = a.select("div.exercise"), b.select("div.exercise")
        assert len(ex_b) == len(ex_a), f"{rel}: {len(ex_b)} exercises in the student edition, {len(ex_a)} in the book"
        assert not sol_b, f"{rel}: {len(sol_b)} solutions in the student edition"
        body = b.get_text(" ", strip=True)
        for sol in sol_a:
            for title in sol.select(".admonition-title"):   # "Solution to Exercise 7 (its title)": the title stays
                title.decompose()
            words = sol.get_text(" ", strip=True).split()
            for i in range(0, len(words) - 12, 25):  # any run of 12 words of a solution
                assert " ".join(words[i:i + 12]) not in body, f"{rel}: solution text in the student edition"
        assert "student edition" in b.title.get_text()
        n_exercises += len(ex_b)
    assert n_exercises >= 36  # 38 when written (3 a chapter or more)
    assert not list((STUDENT / "_sources").rglob("*.md*")), "the student edition offers the chapters' sources"
    for nb in (STUDENT / "_sources").rglob("*.ipynb"):
        assert "{solution-start}" not in nb.read_text(encoding="utf-8"), f"{nb.name} holds solutions"
