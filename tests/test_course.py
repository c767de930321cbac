"""The book as a course: every teaching chapter states what it teaches and sets exercises a lecturer can use.

A teaching chapter is every chapter of _toc.yml outside the appendix, except the intro and the synthesis
(which only reads results). Each must open with its learning objectives ("**In this chapter** you will ...")
and end with at least three exercises, each titled "<kind>, <difficulty>: <concept>" (kinds: Derivation,
Check, Rerun, Project; difficulty one to three stars), at least one derivation and one rerun among them,
and every exercise with its solution.
"""
import re

import pytest
import yaml

from ntkuq.book import ROOT

TITLE = re.compile(r"^```\{exercise\}(.*)$", re.M)
TAG = re.compile(r"^ (Derivation|Check|Rerun|Project), (★{1,3}): \S.*$")
LABEL = re.compile(r"^```\{exercise\}.*\n:label: (\S+)$", re.M)


def _teaching_chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] if part["caption"] != "Appendix" for ch in part["chapters"]]
    return [ROOT / f"{f}.md" for f in files if not f.endswith("synthesis")]


CHAPTERS = _teaching_chapters()


def problems(text: str) -> list:
    """What keeps a chapter's source from being a course chapter (empty: nothing)."""
    out = []
    body = text.split("\n# ", 1)[-1]
    opening = body.split("\n## ", 1)[0]
    if "**In this chapter** you will" not in opening:
        out.append("no learning objectives ('**In this chapter** you will ...') before the first section")
    titles = TITLE.findall(text)
    if len(titles) < 3:
        out.append(f"{len(titles)} exercises, fewer than three")
    kinds = []
    for t in titles:
        m = TAG.match(t)
        if not m:
            out.append(f"exercise title {t.strip()!r} is not '<kind>, <stars>: <concept>'")
        else:
            kinds.append(m.group(1))
    for kind in ("Derivation", "Rerun"):
        if titles and kind not in kinds:
            out.append(f"no {kind.lower()} exercise")
    for label in LABEL.findall(text):
        if f"{{solution-start}} {label}\n" not in text:
            out.append(f"exercise {label} has no solution")
    return out


def test_the_teaching_chapters_are_the_expected_ones():
    names = {md.stem for md in CHAPTERS}
    assert {"kernels", "dynamics", "plateau", "own_data"} <= names
    assert not names & {"synthesis", "notation", "running", "api"}


@pytest.mark.parametrize("md", CHAPTERS, ids=[md.stem for md in CHAPTERS])
def test_every_teaching_chapter_has_objectives_and_tagged_exercises(md):
    assert problems(md.read_text(encoding="utf-8")) == []


def test_the_check_can_fail():
    good_ex = ("```{{exercise}} {title}\n:label: {label}\n\nDo it.\n```\n\n"
               "```{{solution-start}} {label}\n:class: dropdown\n```\n\nDone.\n\n```{{solution-end}}\n```\n")
    exercises = "".join(good_ex.format(title=t, label=f"x-{i}") for i, t in
                        enumerate(["Derivation, ★: a", "Check, ★★: b", "Rerun, ★★★: c"]))
    good = "# T\n\n**In this chapter** you will learn.\n\n## Exercises\n\n" + exercises
    assert problems(good) == []
    assert any("objectives" in p for p in problems(good.replace("**In this chapter**", "Here")))
    assert any("fewer than three" in p for p in problems(good.split("```{exercise} Rerun")[0]))
    assert any("not '<kind>" in p for p in problems(good.replace("Check, ★★: b", "Easy one")))
    assert any("no rerun" in p for p in problems(good.replace("Rerun, ★★★", "Check, ★★★")))
    assert any("no derivation" in p for p in problems(good.replace("Derivation, ★", "Check, ★")))
    assert any("x-1 has no solution" in p for p in problems(good.replace("{solution-start} x-1\n", "")))
