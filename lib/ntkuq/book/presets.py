"""The book's chapters and presets.

Which chapters exist, their parameters cells, and the presets that override them (presets/NAME.yaml),
validated before anything runs.
"""
from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import yaml

from ntkuq.errors import PresetError

ROOT = Path(__file__).resolve().parents[3]
"""The repository root (this file lives in lib/ntkuq/book/)."""


def repo_path(path: Union[str, os.PathLike], required: bool = True) -> Path:
    """A file or folder of the book's repository (committed results, reference values), from wherever a chapter runs.

    The chapters name repository files relative to `book/` ("../results/paper/points"). Run from `book/` (the
    build; papermill with `--cwd book`) the path is used as it is. A chapter downloaded as a notebook and run
    elsewhere finds it under `NTKUQ_BOOK_ROOT` (the folder of a clone of the repository), else under the
    repository the package was installed from (an editable install).

    Args:
        path: the path as the chapter names it, relative to `book/` or absolute.
        required: raise when it is found nowhere (default); False returns `path` unchanged instead, for
            chapters that say themselves what is missing.

    Returns:
        The path that exists.

    Raises:
        FileNotFoundError: when `required` and the path is found nowhere; the message says how to provide it.
    """
    given = Path(path)
    if given.exists():
        return given
    parts = list(given.parts)
    while parts and parts[0] == "..":
        parts = parts[1:]
    relative = Path(*parts) if parts and not given.is_absolute() else None
    roots = list(dict.fromkeys(Path(r) for r in (os.environ.get("NTKUQ_BOOK_ROOT"), ROOT) if r))
    for root in roots if relative is not None else []:
        if (root / relative).exists():
            return root / relative
    if not required:
        return given
    raise FileNotFoundError(
        f"{path} is not here: it is part of the book's repository (committed results and reference values), not "
        f"of the ntkuq package. Run this notebook from the book/ folder of a clone of the repository, or set "
        f"NTKUQ_BOOK_ROOT to the clone's folder (looked under: {', '.join(str(r) for r in roots) or 'nothing'}).")


def chapters(root: Path = ROOT) -> List[Path]:
    """The chapter sources named in _toc.yml, in book order (the root page included).

    Args:
        root: the repository root, holding _toc.yml (default ROOT).

    Returns:
        The paths of the chapters' .md files.
    """
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.append(ch["file"])
            files.extend(s["file"] for s in ch.get("sections", []))
    return [root / f"{f}.md" for f in files]


def has_code(md: Path) -> bool:
    """True if a MyST source has executable cells.

    Args:
        md: the chapter's MyST-markdown source.

    Returns:
        Whether it has a code-cell.
    """
    return "```{code-cell}" in md.read_text()


EXTRA_TYPES: Dict[str, Tuple[type, ...]] = {"steps": (int,)}
"""Types a parameter accepts besides its default's (steps = "auto" also takes a number of steps)."""


RUNNER_PARAMETERS = ("results_dir",)
"""Parameters the runner sets itself (never from a preset)."""


def parameter_defaults(md: Path) -> Dict[str, Any]:
    """The names assigned in a chapter's cell tagged `parameters`, with their literal defaults.

    Read with `ast`, never executed.

    Args:
        md: the chapter's MyST-markdown source.

    Returns:
        Parameter name -> default (`...` where the default is not a literal); empty without a parameters cell.
    """
    text = md.read_text()
    marker = text.find(":tags: [parameters]")
    if marker < 0:
        return {}
    start = text.rfind("```{code-cell}", 0, marker)
    end = text.find("\n```", marker)
    body = "\n".join(line for line in text[start:end].splitlines()[1:] if not line.startswith(":"))
    out: Dict[str, Any] = {}
    for node in ast.parse(body).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        out[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[target.id] = ...
    return out


def _type_ok(value: Any, default: Any, name: str) -> bool:
    """Whether a preset value may replace a chapter default (bool is not a number; an int is a float)."""
    if default is None or default is ...:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(value, EXTRA_TYPES.get(name, ())):
        return True
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        if not isinstance(value, list):
            return False
        kinds = {type(d) for d in default}
        return len(kinds) != 1 or all(_type_ok(v, default[0], "") for v in value)
    return isinstance(value, type(default))


def _type_name(value: Any) -> str:
    return "list" if isinstance(value, (list, tuple)) else type(value).__name__


def validate_preset(preset: Any, name: str = "preset", root: Path = ROOT) -> Dict[str, dict]:
    """Check a loaded preset against every chapter's parameters cell; return {chapter: parameters}.

    Keys of 'all' go to the chapters that declare them (at least one must).

    Args:
        preset: the loaded preset (`load_preset`): chapter name or 'all' -> parameters; None for none.
        name: the preset's name, in error messages (default "preset").
        root: the repository root (default ROOT).

    Returns:
        Chapter stem -> its parameters ('all' merged in), for every chapter with code.

    Raises:
        PresetError: listing the valid names for an unknown chapter or key and the expected type for a
            wrongly typed value (or the preset is not a mapping).
    """
    if preset is None:
        preset = {}
    if not isinstance(preset, dict):
        raise PresetError(f"{name}: expected a mapping of chapter names to parameters, got {_type_name(preset)}")
    defaults = {md.stem: parameter_defaults(md) for md in chapters(root) if has_code(md)}
    valid_sections = ["all"] + sorted(defaults)
    problems = []
    for section, params in preset.items():
        if section not in valid_sections:
            problems.append(f"unknown chapter {section!r}: expected one of {valid_sections}")
            continue
        if params is None:
            continue
        if not isinstance(params, dict):
            problems.append(f"{section}: expected a mapping of parameter names to values, got {_type_name(params)}")
            continue
        for key, value in params.items():
            if section == "all":
                known = {k: d for ch in defaults.values() for k, d in ch.items() if k not in RUNNER_PARAMETERS}
            else:
                known = {k: d for k, d in defaults[section].items() if k not in RUNNER_PARAMETERS}
            if not isinstance(key, str) or key not in known:
                problems.append(f"{section}: unknown parameter {key!r}: expected one of {sorted(known)}")
                continue
            candidates = [ch[key] for ch in defaults.values() if key in ch] if section == "all" else [known[key]]
            if not all(_type_ok(value, d, key) for d in candidates):
                want = sorted({_type_name(d) for d in candidates} | {t.__name__ for t in EXTRA_TYPES.get(key, ())})
                problems.append(f"{section}.{key}: expected {' or '.join(want)} (default {candidates[0]!r}), "
                                f"got {_type_name(value)} {value!r}")
    if problems:
        raise PresetError(f"{name}: invalid preset:\n  " + "\n  ".join(problems))
    shared = preset.get("all") or {}
    return {stem: {**{k: v for k, v in shared.items() if k in d}, **(preset.get(stem) or {})}
            for stem, d in defaults.items()}


def load_preset(name: str, root: Path = ROOT) -> Dict[str, dict]:
    """Parameters per chapter stem from presets/NAME.yaml ('all' applies to every chapter), unvalidated.

    Args:
        name: the preset's name (the file presets/NAME.yaml).
        root: the repository root (default ROOT).

    Returns:
        The loaded preset, chapter stem or 'all' -> parameters (empty for an empty file).

    Raises:
        PresetError: if the name is not a preset name, no such preset exists, or the file is not valid YAML.
    """
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise PresetError(f"preset: expected a preset name, got {name!r}")
    path = root / "presets" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (root / "presets").glob("*.yaml"))
        raise PresetError(f"preset: expected one of {known}, got {name!r}")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PresetError(f"preset: {path} is not valid YAML: {err}") from None


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written in it.

    Args:
        folder: the results folder.

    Raises:
        PresetError: if the folder cannot be created or written in.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise PresetError(f"out: expected a writable results folder, got {str(folder)!r} ({err.strerror or err})") \
            from None


__all__ = ["EXTRA_TYPES", "ROOT", "RUNNER_PARAMETERS", "chapters", "check_writable", "has_code", "load_preset",
           "parameter_defaults", "repo_path", "validate_preset"]
