"""Run the book's chapters with papermill: at their defaults (for nbval) or under a named preset.

    python -m ntkuq.runner notebooks            # execute book/*.md at defaults into notebooks/*.ipynb
    python -m ntkuq.runner preset cpu           # execute every chapter with presets/cpu.yaml into results/cpu/

Chapters are the MyST-markdown notebooks listed in _toc.yml; each has a cell tagged `parameters`.
"""
from __future__ import annotations

import argparse
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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that a reader never sees it half-written (temporary file + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def execute_chapter(md: Path, out: Path, parameters: Optional[dict] = None, *,
                    env: Optional[Dict[str, str]] = None, progress: bool = True) -> float:
    """Convert a MyST chapter to ipynb, execute it with papermill in book/, write it atomically; seconds taken."""
    import jupytext
    import nbformat
    import papermill as pm

    nb = jupytext.read(md)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    old_env = dict(os.environ)
    os.environ.update(env or {})
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / md.with_suffix(".ipynb").name, Path(tmp) / "out.ipynb"
            nbformat.write(nb, src)
            pm.execute_notebook(str(src), str(dst), parameters=parameters or {}, cwd=str(md.parent),
                                kernel_name="python3", progress_bar=progress)
            executed = nbformat.read(dst, as_version=4)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    for cell in executed.cells:  # keep committed notebooks free of run-specific timestamps
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    executed.metadata.pop("papermill", None)
    atomic_write_bytes(out, nbformat.writes(executed).encode())
    return time.perf_counter() - start


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m ntkuq.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("notebooks", help="execute every chapter at its defaults into notebooks/")
    nb.add_argument("only", nargs="*", help="chapter stems to run (default: all)")
    args = parser.parse_args(argv)
    if args.command == "notebooks":
        for md in chapters():
            if not has_code(md) or (args.only and md.stem not in args.only):
                continue
            seconds = execute_chapter(md, ROOT / "notebooks" / f"{md.stem}.ipynb")
            print(f"{md.stem}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
