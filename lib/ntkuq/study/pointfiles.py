"""Point files that verify themselves: a checksum of the row and the key it was computed for.

`results.ResultStore` keeps one JSON file per finished point, folder/KEY.json.  Each file written here
carries ``"checksum": "sha256:<hex>"``, the SHA-256 of the row's canonical JSON (sorted keys, the row
without its checksum), and the row's own ``"key"``.  On reading, a file is used only if

* it parses as a JSON object,
* its ``"key"`` equals the key in its name (a copied or renamed file from another point is foreign), and
* it carries a checksum that matches its content (a truncated or edited file does not).

Files written before checksums existed (no ``"checksum"`` field) are refused like damaged ones; `reseal`
seals such files once, after checking their keys (``python -m ntkuq.book.runner reseal NAME``).  A file that
fails is named in a `PointFileWarning`, set aside as KEY.json.bad (never deleted) and reported as missing,
so the point is recomputed.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Optional, Tuple

from ntkuq._src.storage import atomic_write_text
from ntkuq.errors import PointFileWarning

CHECKSUM_FIELD = "checksum"
"""Name of the checksum field in a point file."""
BAD_SUFFIX = ".bad"
"""Appended to the name of a point file that failed verification."""


def canonical(row: dict) -> str:
    """The JSON text that is checksummed and written: sorted keys, numpy numbers as floats.

    Args:
        row: the row, a JSON-serializable dict (numpy numbers allowed).

    Returns:
        The canonical JSON text.
    """
    return json.dumps(row, sort_keys=True, default=float)


def checksum(row: dict) -> str:
    """'sha256:<hex>' of the canonical JSON of `row` without its checksum field.

    Args:
        row: the row, with or without its checksum field.

    Returns:
        The checksum text 'sha256:<hex>'.
    """
    body = {k: v for k, v in row.items() if k != CHECKSUM_FIELD}
    return "sha256:" + hashlib.sha256(canonical(body).encode()).hexdigest()


def seal(row: dict) -> str:
    """The file content for a row (which must already hold its "key"): the row plus its checksum.

    Args:
        row: the row, holding its "key"; a checksum field it carries is replaced.

    Returns:
        The canonical JSON text of the row with its checksum.
    """
    body = {k: v for k, v in row.items() if k != CHECKSUM_FIELD}
    return canonical({**body, CHECKSUM_FIELD: checksum(body)})


def verify(text: str, key: str) -> Tuple[Optional[dict], str]:
    """(row without its checksum, "") if `text` is a valid point file for `key`, else (None, the reason).

    Args:
        text: the content of a point file.
        key: the key the file should have been computed for (the stem of its name).

    Returns:
        (row, "") for a valid file, else (None, why it is not valid).
    """
    try:
        row = json.loads(text)
    except ValueError as err:
        return None, f"not valid JSON (truncated?): {err}"
    if not isinstance(row, dict):
        return None, f"expected a JSON object, got {type(row).__name__}"
    if row.get("key") != key:
        return None, f"computed for key {row.get('key')!r}, not {key!r} (a foreign or renamed file)"
    stored = row.pop(CHECKSUM_FIELD, None)
    if stored is None:
        return None, ("no checksum (a file from before checksums: `python -m ntkuq.book.runner reseal NAME` seals "
                      "such files after checking their keys)")
    if stored != checksum(row):
        return None, "checksum mismatch (the file was edited or damaged)"
    return row, ""


def reseal(folder: os.PathLike) -> int:
    """Seal the point files in `folder` that carry no checksum yet (files from before checksums).

    Args:
        folder: a folder of KEY.json point files.

    Returns:
        The number of files sealed; files that already carry a checksum are left as they are.

    Raises:
        ValueError: a file without a checksum is not a JSON object or was computed for another key (it is
            named; nothing is sealed blindly).
    """
    count = 0
    for path in sorted(Path(folder).glob("*.json")):
        row = json.loads(path.read_text())
        if not isinstance(row, dict) or CHECKSUM_FIELD in row:
            continue
        if row.get("key") != path.stem:
            raise ValueError(f"folder: {path} holds key {row.get('key')!r}, not {path.stem!r}; not sealed")
        atomic_write_text(path, seal(row))
        count += 1
    return count


def read_point(path: Path) -> Optional[dict]:
    """The verified row in `path` (KEY.json), or None if missing; a bad file is warned about and set aside.

    A file that fails verification (`verify`) or cannot be read is named in a `PointFileWarning` and moved
    to KEY.json.bad.

    Args:
        path: the point file, folder/KEY.json.

    Returns:
        The row without its checksum, or None if the file is missing or bad.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        row, why = None, f"unreadable: {err}"
    else:
        row, why = verify(text, path.stem)
    if row is None:
        bad = path.with_name(path.name + BAD_SUFFIX)
        try:
            os.replace(path, bad)
            where = f"moved to {bad.name}"
        except OSError as err:  # pragma: no cover - read-only folder
            where = f"could not be moved aside ({err})"
        warnings.warn(f"result point file {path}: {why}; {where}, the point will be recomputed",
                      PointFileWarning, stacklevel=3)
    return row


__all__ = ["BAD_SUFFIX", "CHECKSUM_FIELD", "canonical", "checksum", "read_point", "reseal", "seal", "verify"]
