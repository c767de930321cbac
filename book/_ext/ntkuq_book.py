"""Sphinx glue for the ntkuq book: .ipynb downloads of every chapter and Binder/Colab launch buttons.

* Every executed chapter is offered as an .ipynb download (the notebook myst-nb executed for this
  build), with or without launch buttons (sphinx-book-theme offers it only when launch buttons are on).
* MathJax is loaded on every page (chapter titles in the navigation bar contain math).
* Launch buttons are driven by one setting, ``repository.url`` in ``_config.yml``: unset (empty) means
  no buttons; set (a GitHub URL) gives a Binder and a Colab button per chapter, both opening the
  chapter's executed copy ``notebooks/CHAPTER.ipynb`` in that repository.
* The student edition: with the environment variable ``NTKUQ_STUDENT=1`` the build drops every solution
  (from the pages, the search index and the downloadable notebooks), copies no page sources, and says
  "student edition" in its title (`scripts/book.sh` builds it into ``_build/student``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote

BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"
STUDENT = "NTKUQ_STUDENT"
"""The environment variable that makes the build the student edition (any value but empty or 0)."""
SOLUTION_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}.*?$", re.M)
SOLUTION_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}[^\n]*\n(`{3,}|:{3,})[ \t]*$", re.M)


def student_edition() -> bool:
    """Whether this build is the student edition (the environment variable NTKUQ_STUDENT is set)."""
    return os.environ.get(STUDENT, "").strip() not in ("", "0")


def strip_solutions(notebook: dict) -> dict:
    """A notebook (nbformat JSON) without its gated solutions.

    Every cell from the one that opens a solution-start to the one that closes its solution-end goes,
    keeping the text before and after them in those two cells.

    Args:
        notebook: the notebook as a dict (nbformat 4 JSON).

    Returns:
        The notebook with the solutions' text and cells removed.
    """
    cells, inside = [], False
    for cell in notebook.get("cells", []):
        text = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else cell.get("source", "")
        keep = []
        while True:
            if not inside:
                start = SOLUTION_START.search(text) if cell.get("cell_type") == "markdown" else None
                if start is None:
                    keep.append(text)
                    break
                keep.append(text[:start.start()])
                text, inside = text[start.end():], True
            else:
                end = SOLUTION_END.search(text) if cell.get("cell_type") == "markdown" else None
                if end is None:
                    break  # the whole rest of this cell is solution
                text, inside = text[end.end():], False
        rest = "".join(keep)
        if cell.get("cell_type") == "markdown":
            if rest.strip():
                cells.append({**cell, "source": rest.strip("\n") + "\n"})
        elif keep:  # a code cell outside any solution
            cells.append(cell)
    return {**notebook, "cells": cells}


def _student_config(app, config):
    """The student edition: no page sources to download, and its title says what it is."""
    if student_edition():
        config.html_copy_source = False
        config.html_title = f"{config.html_title or config.project} (student edition)"


def _drop_solutions(app, doctree):
    """The student edition: remove every solution (merged gated solutions included) from a page."""
    if not student_edition():
        return
    from sphinx_exercise.nodes import solution_end_node, solution_node, solution_start_node

    for kind in (solution_node, solution_start_node, solution_end_node):
        for node in list(doctree.findall(kind)):
            node.parent.remove(node)


def _repository(app):
    opts = app.config.html_theme_options or {}
    url = (opts.get("repository_url") or "").strip().rstrip("/")
    return url, (opts.get("repository_branch") or "main").strip()


def _offer_notebook(app, pagename, templatename, context, doctree):
    """Copy the executed notebook of a chapter next to its sources so the download menu lists it."""
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.exists():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    if student_edition():
        notebook = strip_solutions(json.loads(executed.read_text(encoding="utf-8")))
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")
    else:
        shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _launch_buttons(app, pagename, templatename, context, doctree):
    """A 'launch' menu (Binder, Colab) for chapters that have an executed copy in notebooks/."""
    url, branch = _repository(app)
    stem = Path(pagename).name
    root = Path(app.confdir)
    if not url or "header_buttons" not in context or not (root / "notebooks" / f"{stem}.ipynb").exists():
        return
    path = f"notebooks/{stem}.ipynb"
    buttons = [{"type": "link", "text": "Binder", "tooltip": "Launch on Binder",
                "icon": "_static/images/logo_binder.svg",
                "url": f"{BINDER}/v2/git/{quote(url, safe='')}/{branch}?urlpath=lab/tree/{path}"}]
    if url.startswith("https://github.com/"):
        org_repo = url[len("https://github.com/"):].removesuffix(".git")
        buttons.append({"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
                        "icon": "_static/images/logo_colab.png",
                        "url": f"{COLAB}/github/{org_repo}/blob/{branch}/{path}"})
    context["header_buttons"].append({"type": "group", "tooltip": "Launch interactive content",
                                      "icon": "fas fa-rocket", "buttons": buttons, "label": "launch-buttons"})


def setup(app):
    """Register the extension: MathJax everywhere, notebook downloads, launch buttons, the student edition.

    MathJax on every page, not only on pages with equations: the navigation bar's chapter titles
    hold math too (e.g. the synthesis chapter's), and must not show raw TeX on the other pages.

    Args:
        app: the Sphinx application.

    Returns:
        The extension's metadata: safe for parallel reading and writing.
    """
    app.set_html_assets_policy("always")
    app.connect("config-inited", _student_config)
    app.connect("doctree-read", _drop_solutions)
    app.connect("html-page-context", _offer_notebook, priority=500)   # before the theme's buttons (501)
    app.connect("html-page-context", _launch_buttons, priority=502)   # after the theme made its list
    return {"parallel_read_safe": True, "parallel_write_safe": True}
