"""Run the book's chapters with papermill: at their defaults (for nbval) or under a named preset.

    python -m ntkuq.runner notebooks            # execute book/*.md at defaults into notebooks/*.ipynb
    python -m ntkuq.runner preset cpu           # execute every chapter with presets/cpu.yaml into results/cpu/
                                                # (resumable: finished points in results/cpu/points are kept)

Chapters are the MyST-markdown notebooks listed in _toc.yml; each has a cell tagged `parameters`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (this file lives in lib/ntkuq/)."""


def chapters(root: Path = ROOT) -> List[Path]:
    """The chapter sources named in _toc.yml, in book order (the root page included)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.append(ch["file"])
            files.extend(s["file"] for s in ch.get("sections", []))
    return [root / f"{f}.md" for f in files]


def has_code(md: Path) -> bool:
    """True if a MyST source has executable cells."""
    return "```{code-cell}" in md.read_text()


def load_preset(name: str, root: Path = ROOT) -> Dict[str, dict]:
    """Parameters per chapter stem from presets/NAME.yaml ('all' applies to every chapter)."""
    path = root / "presets" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (root / "presets").glob("*.yaml"))
        raise ValueError(f"preset: expected one of {known}, got {name!r}")
    return yaml.safe_load(path.read_text()) or {}


def execute_chapter(md: Path, out: Path, parameters: Optional[dict] = None, *, progress: bool = True) -> float:
    """Convert a MyST chapter to ipynb, execute it with papermill in book/, write it atomically; seconds taken."""
    import jupytext
    import nbformat
    import papermill as pm

    from .storage import atomic_write_text

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
    out/manifest.json (preset, per-chapter wall time, versions, device).  Safe to interrupt and rerun."""
    from .results import ResultStore, environment, to_csv
    from .storage import atomic_write_text

    preset = load_preset(name)
    out = (ROOT / "results" / name) if out is None else Path(out)
    points = out / "points"
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update(preset=name, environment=environment())
    manifest.setdefault("chapters", {})
    for md in chapters():
        if (only and md.stem not in only) or not has_code(md):
            continue
        params = {**preset.get("all", {}), **(preset.get(md.stem) or {})}
        if "results_dir = " in md.read_text():  # relative to book/, where papermill runs the chapter
            params["results_dir"] = os.path.relpath(points.resolve(), md.parent)
        print(f"[{name}] {md.stem} {params}", flush=True)
        seconds = execute_chapter(md, out / "notebooks" / f"{md.stem}.ipynb", params)
        manifest["chapters"][md.stem] = {"wall_s": round(seconds, 1), "parameters": params}
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        atomic_write_text(out / "results.csv", to_csv(ResultStore(points).rows()))
        print(f"[{name}] {md.stem}: {seconds:.1f} s", flush=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m ntkuq.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("notebooks", help="execute every chapter at its defaults into notebooks/")
    nb.add_argument("only", nargs="*", help="chapter stems to run (default: all)")
    pr = sub.add_parser("preset", help="execute every chapter with presets/NAME.yaml into results/NAME/")
    pr.add_argument("name", help="preset name: ci, cpu or paper")
    pr.add_argument("--only", nargs="*", default=None, help="chapter stems to run (default: all)")
    pr.add_argument("--out", default=None, help="results folder (default: results/NAME)")
    args = parser.parse_args(argv)
    if args.command == "preset":
        run_preset(args.name, only=args.only, out=None if args.out is None else Path(args.out))
        return 0
    if args.command == "notebooks":
        for md in chapters():
            if (args.only and md.stem not in args.only) or not has_code(md):
                continue
            seconds = execute_chapter(md, ROOT / "notebooks" / f"{md.stem}.ipynb")
            print(f"{md.stem}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
