"""The built book in a real browser: every page opened in headless Chromium (see tests/bookbrowser.py).

Needs Chromium (Debian's `chromium` package) and a built book (`bash scripts/book.sh`). Without either
the tests are skipped with the reason, and scripts/test.sh says so in its last line; with
NTKUQ_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead, so in CI they always run.
"""
import os

import pytest

import bookbrowser as bb

REQUIRED = os.environ.get("NTKUQ_REQUIRE_BROWSER") == "1"


def _unavailable(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (NTKUQ_REQUIRE_BROWSER=1)")
    pytest.skip(f"{reason}: the browser checks did NOT run")


EDITIONS = {"book": bb.HTML, "student": bb.ROOT / "_build" / "student" / "_build" / "html"}
"""The two builds of scripts/book.sh: the book, and its student edition (no solutions)."""


@pytest.fixture(scope="module", params=sorted(EDITIONS))
def results(request):
    html = EDITIONS[request.param]
    exe = bb.find_chromium()
    if not exe:
        _unavailable("chromium not found (apt-get install chromium, or set NTKUQ_CHROMIUM)")
    if not (html / "index.html").exists():
        _unavailable(f"no built {request.param} at {html} (run `bash scripts/book.sh` first)")
    res = bb.check_book(exe, html)
    assert len(res) >= 10, f"expected every chapter of the book, found {sorted(res)}"
    return res


def _failures(results, *keys):
    return [p for p in bb.problems(results) if any(f": {k}" in p for k in keys)]


def test_math_is_rendered_from_the_book_itself(results):
    assert sum(r["n_math"] for r in results.values()) > 100
    assert not _failures(results, "MathJax did not load", "math not rendered", "TeX error", "raw TeX")


def test_nothing_is_requested_from_another_host(results):
    assert not _failures(results, "request to another host")


def test_markdown_tables_are_tables(results):
    assert not _failures(results, "markdown table not rendered")


def test_every_image_loads(results):
    assert sum(r["n_images"] for r in results.values()) > 20
    assert not _failures(results, "image did not load")


def test_no_cell_output_holds_a_traceback_or_warning(results):
    assert not _failures(results, "traceback or warning in output")


def test_nothing_is_wider_than_its_column(results):
    assert not _failures(results, "wider than its column")


def test_the_checks_can_fail(tmp_path):
    """A page with every defect the checks look for: each must be reported."""
    exe = bb.find_chromium()
    if not exe:
        _unavailable("chromium not found (apt-get install chromium, or set NTKUQ_CHROMIUM)")
    (tmp_path / "bad.html").write_text(
        '<html><head><script src="https://cdn.example.org/mathjax.js"></script></head><body>'
        '<article class="bd-article" style="width: 600px">'
        '<p>raw <span class="math">\\(x^2\\)</span></p>'
        '<div class="cell_output"><p>| a | b |\n|---|---|\n| 1 | 2 |</p></div>'
        '<div class="cell_output"><pre>UserWarning: something</pre></div>'
        '<pre style="overflow: auto; white-space: pre">' + "x" * 300 + '</pre>'
        '<img src="missing.png"></article></body></html>')
    (tmp_path / "glued.html").write_text(
        '<html><body><article class="bd-article"><p>ordered by exponents $s_y$, glued</p></article></body></html>')
    found = "\n".join(bb.problems(bb.check_book(exe, tmp_path)))
    for what in ("MathJax did not load", "math not rendered", "markdown table not rendered",
                 "traceback or warning", "wider than its column", "image did not load",
                 "request to another host"):
        assert what in found, f"the check for '{what}' did not fire:\n{found}"
    assert "glued.html: raw TeX in the text" in found, found
