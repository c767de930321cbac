"""scripts/execute_chapters.py: chapters executed ahead of the build are the ones the build takes from its cache."""
from __future__ import annotations

import importlib.util

import pytest
from jupyter_cache import get_cache
from myst_nb.core.read import read_myst_markdown_notebook
from myst_parser.config.main import MdParserConfig

from ntkuq.book import ROOT, chapters

spec = importlib.util.spec_from_file_location("execute_chapters", ROOT / "scripts" / "execute_chapters.py")
ec = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ec)

CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
  language: python
---

# A chapter

Some $x$ math.

```{code-cell} ipython3
x = 6 * 7
print(x)
```
"""


def as_the_build_reads(path):
    """The notebook myst-nb builds from a MyST chapter (with the book's markdown extensions)."""
    config = MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist"})
    return read_myst_markdown_notebook(path.read_text("utf8"), config, add_source_map=True, path=str(path))


def test_every_chapter_with_code_is_executed_ahead():
    names = {p.name for p in ec.chapters()}
    assert {md.name for md in chapters() if "```{code-cell}" in md.read_text()} <= names
    assert names <= {md.name for md in chapters()}


def test_an_executed_chapter_is_found_by_the_build(tmp_path):
    path = tmp_path / "chapter.md"
    path.write_text(CHAPTER)
    done, nb, seconds, err = ec.execute(str(path), 60, False)
    assert err is None and done == str(path)
    assert nb.cells[-1].outputs[0]["text"] == "42\n"
    cache = get_cache(str(tmp_path / "cache"))
    ec.store(cache, str(path), nb, seconds)
    record = cache.match_cache_notebook(as_the_build_reads(path))
    assert record is not None
    _, merged = cache.merge_match_into_notebook(as_the_build_reads(path))
    assert merged.cells[-1].outputs[0]["text"] == "42\n"
    # a chapter whose code changed is not matched: the build executes it itself
    path.write_text(CHAPTER.replace("6 * 7", "6 * 8"))
    with pytest.raises(KeyError):
        cache.match_cache_notebook(as_the_build_reads(path))


def test_a_failing_chapter_is_reported_not_stored(tmp_path):
    path = tmp_path / "chapter.md"
    path.write_text(CHAPTER.replace("print(x)", "raise RuntimeError('boom')"))
    _, nb, _, err = ec.execute(str(path), 60, False)
    assert nb is None and "boom" in err
