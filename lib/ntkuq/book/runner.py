"""Run the book's chapters with papermill: at their defaults (for nbval) or under a named preset.

    python -m ntkuq.book.runner notebooks            # execute book/*.md at defaults into notebooks/*.ipynb
    python -m ntkuq.book.runner preset cpu           # execute every chapter with presets/cpu.yaml into results/cpu/
                                                # (resumable: finished points in results/cpu/points are kept)
    python -m ntkuq.book.runner points paper         # only the points of the scaling chapters, without papermill,
                                                # jupytext or nbformat (a GPU machine); `preset` later finds them
    python -m ntkuq.book.runner table paper          # results/paper/results.csv from the points stored so far

Chapters are the MyST-markdown notebooks listed in _toc.yml; each has a cell tagged `parameters`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Dict, List, Optional

from ntkuq._src.storage import atomic_write_text
from ntkuq.book.presets import ROOT, chapters, check_writable, has_code, load_preset, validate_preset
from ntkuq.errors import PresetError
from ntkuq.study.pointfiles import reseal
from ntkuq.study.store import ResultStore, environment, to_csv


def execute_chapter(md: Path, out: Path, parameters: Optional[dict] = None, *, progress: bool = True) -> float:
    """Convert a MyST chapter to ipynb, execute it with papermill in book/, write it atomically.

    Args:
        md: the chapter's MyST-markdown source.
        out: the executed notebook's path.
        parameters: the values for the chapter's parameters cell; None (default) for its defaults.
        progress: True (default) shows papermill's progress bar.

    Returns:
        The seconds taken.
    """
    import jupytext
    import nbformat
    import papermill as pm


    nb = jupytext.read(md)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / md.with_suffix(".ipynb").name, Path(tmp) / "out.ipynb"
        nbformat.write(nb, src)
        pm.execute_notebook(str(src), str(dst), parameters=parameters or {}, cwd=str(md.parent),
                            kernel_name="python3", progress_bar=progress)
        executed = nbformat.read(dst, as_version=4)
    for cell in executed.cells:  # keep committed notebooks free of run-specific timestamps
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    executed.metadata.pop("papermill", None)
    atomic_write_text(out, nbformat.writes(executed))
    return time.perf_counter() - start


def run_preset(name: str, *, only: Optional[List[str]] = None, out: Optional[Path] = None) -> Path:
    """Execute every chapter under a preset; finished points are kept in out/points and never recomputed.

    Writes out/notebooks/CHAPTER.ipynb (executed), out/results.csv (one tidy row per point) and
    out/manifest.json (preset, per-chapter wall time, versions, device).  Safe to interrupt and rerun.

    Args:
        name: the preset (presets/NAME.yaml), validated before anything runs.
        only: chapter stems to run; None (default) for all.
        out: the results folder (default results/NAME).

    Returns:
        The results folder.

    Raises:
        PresetError: if `only` names an unknown chapter (or the preset is invalid).
    """
    per_chapter = validate_preset(load_preset(name), name)  # before anything runs
    if only:
        unknown = sorted(set(only) - set(per_chapter))
        if unknown:
            raise PresetError(f"only: unknown chapters {unknown}: expected some of {sorted(per_chapter)}")
    out = (ROOT / "results" / name) if out is None else Path(out)
    points = out / "points"
    for folder in (out, points, out / "notebooks"):
        check_writable(folder)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update(preset=name, environment=environment())
    manifest.setdefault("chapters", {})
    for md in chapters():
        if (only and md.stem not in only) or not has_code(md):
            continue
        params = dict(per_chapter[md.stem])
        if "results_dir = " in md.read_text():  # relative to book/, where papermill runs the chapter
            params["results_dir"] = os.path.relpath(points.resolve(), md.parent)
        print(f"[{name}] {md.stem} {params}", flush=True)
        seconds = execute_chapter(md, out / "notebooks" / f"{md.stem}.ipynb", params)
        manifest["chapters"][md.stem] = {"wall_s": round(seconds, 1), "parameters": params}
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        atomic_write_text(out / "results.csv", to_csv(ResultStore(points).rows()))
        print(f"[{name}] {md.stem}: {seconds:.1f} s", flush=True)
    return out


def write_table(name: str, *, out: Optional[Path] = None) -> Path:
    """Write out/results.csv (one tidy row per stored point, as `run_preset` does) from out/points.

    Args:
        name: the preset, for the default folder results/NAME.
        out: the results folder (default results/NAME).

    Returns:
        The path of the CSV.

    Raises:
        PresetError: the folder has no points.
    """
    out = (ROOT / "results" / name) if out is None else Path(out)
    if not (out / "points").is_dir():
        raise PresetError(f"name: no stored points under {out / 'points'}")
    rows = ResultStore(out / "points").rows()
    atomic_write_text(out / "results.csv", to_csv(rows))
    print(f"[{name}] {len(rows)} rows -> {out / 'results.csv'}", flush=True)
    return out / "results.csv"


POINT_CHAPTERS = ("scaling_infinite", "scaling_finite")
"""The chapters whose results are stored point by point (what `run_points` computes)."""


def compute_cells(md: Path) -> List[str]:
    """A chapter's code cells before its '## Check' heading (parameters, imports, compute), cell metadata removed.

    Args:
        md: the chapter's MyST-markdown source.

    Returns:
        The cells' code, in order.
    """
    text = md.read_text()
    end = text.find("\n## Check")
    cells = []
    for m in re.finditer(r"```\{code-cell\}[^\n]*\n(.*?)\n```", text if end < 0 else text[:end], re.S):
        lines = m.group(1).split("\n")
        if lines and lines[0].strip() == "---":  # a YAML block of cell metadata
            lines = lines[lines.index("---", 1) + 1:] if "---" in lines[1:] else lines
        while lines and lines[0].startswith(":"):  # :tags: lines
            lines = lines[1:]
        cells.append("\n".join(lines))
    return cells


@contextlib.contextmanager
def _notebook_stubs():
    """Stand-ins for IPython.display and myst_nb where they are not installed (glue does nothing there)."""
    added, before = [], {name: sys.modules.get(name, ...) for name in ("IPython", "IPython.display", "myst_nb")}
    for name, attrs in (("IPython", {}), ("IPython.display", {"Markdown": str, "display": lambda *a, **k: None}),
                        ("myst_nb", {"glue": lambda *a, **k: None})):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__dict__.update(attrs)
            sys.modules[name] = mod
            added.append(name)
    if "IPython.display" in added and "IPython" in added:
        sys.modules["IPython"].display = sys.modules["IPython.display"]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name in added:  # as before, a None entry (an import that must fail) included
            if before[name] is ...:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = before[name]


def run_points(name: str, *, only: Optional[List[str]] = None, out: Optional[Path] = None) -> Path:
    """Compute the finished points of the scaling chapters under a preset, without papermill.

    In this process and without papermill, jupytext or nbformat: each chapter's cells before its '## Check'
    run with the preset's parameters (IPython and myst_nb stubbed where missing), storing points in
    out/points.  No notebook, CSV or manifest is written; `run_preset` on a machine with papermill then finds
    every point done.

    Args:
        name: the preset (presets/NAME.yaml), validated as for `run_preset`.
        only: chapters to run, a subset of POINT_CHAPTERS (default both).
        out: the results folder (default results/NAME).

    Returns:
        The results folder.

    Raises:
        PresetError: if `only` names a chapter outside POINT_CHAPTERS (or the preset is invalid).
    """
    per_chapter = validate_preset(load_preset(name), name)
    only = list(only or POINT_CHAPTERS)
    unknown = sorted(set(only) - set(POINT_CHAPTERS))
    if unknown:
        raise PresetError(f"only: unknown chapters {unknown}: expected some of {list(POINT_CHAPTERS)}")
    out = (ROOT / "results" / name) if out is None else Path(out)
    points = out / "points"
    check_writable(points)
    for stem in only:
        md = ROOT / "book" / f"{stem}.md"
        params = dict(per_chapter[stem], results_dir=str(points.resolve()))
        print(f"[{name}] {stem} points {params}", flush=True)
        start, cwd = time.perf_counter(), os.getcwd()
        namespace: Dict[str, Any] = {"__name__": f"ntkuq_points_{stem}"}
        try:
            os.chdir(md.parent)  # as papermill runs it
            with _notebook_stubs():
                for i, cell in enumerate(compute_cells(md)):
                    exec(compile(cell, f"{md.name} cell {i}", "exec"), namespace)
                    if i == 0:  # the parameters cell: the preset's values replace its defaults
                        namespace.update(params)
        finally:
            os.chdir(cwd)
        print(f"[{name}] {stem}: {time.perf_counter() - start:.1f} s", flush=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (see the module docstring).

    Args:
        argv: the command-line arguments; None (default) for sys.argv[1:].

    Returns:
        The exit status: 0 on success, 2 for an error (the message on stderr).
    """
    parser = argparse.ArgumentParser(prog="python -m ntkuq.book.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("notebooks", help="execute every chapter at its defaults into notebooks/")
    nb.add_argument("only", nargs="*", help="chapter stems to run (default: all)")
    pr = sub.add_parser("preset", help="execute every chapter with presets/NAME.yaml into results/NAME/")
    pr.add_argument("name", help="preset name: ci, cpu or paper")
    pr.add_argument("--only", nargs="*", default=None, help="chapter stems to run (default: all)")
    pr.add_argument("--out", default=None, help="results folder (default: results/NAME)")
    po = sub.add_parser("points", help="compute the scaling chapters' points under a preset, without papermill")
    po.add_argument("name", help="preset name: ci, cpu or paper")
    po.add_argument("--only", nargs="*", default=None, help=f"chapters (default: {' '.join(POINT_CHAPTERS)})")
    po.add_argument("--out", default=None, help="results folder (default: results/NAME)")
    rs = sub.add_parser("reseal", help="seal results/NAME/points files written before checksums")
    rs.add_argument("name", help="preset name: ci, cpu or paper")
    ta = sub.add_parser("table", help="write results/NAME/results.csv from the points stored so far")
    ta.add_argument("name", help="preset name: ci, cpu or paper")
    ta.add_argument("--out", default=None, help="results folder (default: results/NAME)")
    args = parser.parse_args(argv)
    if args.command == "reseal":

        folder = ROOT / "results" / args.name / "points"
        try:
            print(f"[{args.name}] sealed {reseal(folder)} point files in {folder}")
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "table":
        try:
            write_table(args.name, out=None if args.out is None else Path(args.out))
        except PresetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command in ("preset", "points"):
        run = run_preset if args.command == "preset" else run_points
        try:
            run(args.name, only=args.only, out=None if args.out is None else Path(args.out))
        except PresetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "notebooks":
        stems = [md.stem for md in chapters() if has_code(md)]
        unknown = sorted(set(args.only) - set(stems))
        if unknown:
            print(f"error: only: unknown chapters {unknown}: expected some of {sorted(stems)}", file=sys.stderr)
            return 2
        for md in chapters():
            if (args.only and md.stem not in args.only) or not has_code(md):
                continue
            seconds = execute_chapter(md, ROOT / "notebooks" / f"{md.stem}.ipynb")
            print(f"{md.stem}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["POINT_CHAPTERS", "compute_cells", "execute_chapter", "main", "run_points", "run_preset", "write_table"]
