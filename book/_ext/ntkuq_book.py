"""Sphinx glue for the ntkuq book: .ipynb downloads of every chapter and Binder/Colab launch buttons.

* Every executed chapter is offered as an .ipynb download (the notebook myst-nb executed for this
  build), with or without launch buttons (sphinx-book-theme offers it only when launch buttons are on).
* MathJax is loaded on every page (chapter titles in the navigation bar contain math).
* Launch buttons are driven by one setting, ``repository.url`` in ``_config.yml``: unset (empty) means
  no buttons; set (a GitHub URL) gives a Binder and a Colab button per chapter, both opening the
  chapter's executed copy ``notebooks/CHAPTER.ipynb`` in that repository.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"


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
    """Register the extension: MathJax on every page, the notebook downloads and the launch buttons.

    MathJax on every page, not only on pages with equations: the navigation bar's chapter titles
    hold math too (e.g. the synthesis chapter's), and must not show raw TeX on the other pages.

    Args:
        app: the Sphinx application.

    Returns:
        The extension's metadata: safe for parallel reading and writing.
    """
    app.set_html_assets_policy("always")
    app.connect("html-page-context", _offer_notebook, priority=500)   # before the theme's buttons (501)
    app.connect("html-page-context", _launch_buttons, priority=502)   # after the theme made its list
    return {"parallel_read_safe": True, "parallel_write_safe": True}
