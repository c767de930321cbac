"""A resumable, atomic store of result rows: one JSON file per finished point, one tidy CSV from them.

A long study writes each finished point as soon as it is done (`storage.atomic_write_text`, so an
interrupted run never leaves a broken file) and skips points already on disk when restarted.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from .pointfiles import read_point, seal
from .storage import atomic_write_text

COLUMNS = ["task", "n_train", "width", "optimizer", "method", "draw", "mu", "sigma", "eps",
           "mu_err", "sigma_err", "eps_err", "members", "steps", "seed", "wall_s", "device", "key"]
"""The tidy table's leading columns, in order; a row's parameters and library versions follow as JSON."""


def point_key(**fields: Any) -> str:
    """A short stable hash of the fields that define a point (task, sizes, spec, seeds, ...)."""
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def environment() -> Dict[str, str]:
    """Library versions and the compute device, recorded with every row."""
    versions = {}
    for pkg in ("jax", "jaxlib", "numpy", "scipy", "optax", "ntkuq"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "?"
    try:
        import jax

        device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    except Exception:  # pragma: no cover - jax always present in practice
        device = "unknown"
    return {"versions": json.dumps(versions, sort_keys=True), "device": device, "machine": platform.machine()}


class ResultStore:
    """Rows stored as folder/KEY.json; `None` as folder keeps them in memory only (nothing resumes).

    Files carry a checksum and their key and are verified when read (`ntkuq.pointfiles`): a truncated,
    edited or foreign file is warned about, set aside as KEY.json.bad and treated as not finished."""

    def __init__(self, folder: Optional[os.PathLike]) -> None:
        self.folder = None if folder is None else Path(folder)
        self._memory: Dict[str, dict] = {}

    def get(self, key: str) -> Optional[dict]:
        """The stored row for key, or None if that point has not finished."""
        if self.folder is None:
            return self._memory.get(key)
        return read_point(self.folder / f"{key}.json")  # verified; a bad file is set aside (None)

    def put(self, key: str, row: dict) -> dict:
        """Store a finished point's row atomically and return it (with its key)."""
        row = {**row, "key": key}
        if self.folder is None:
            self._memory[key] = row
        else:
            atomic_write_text(self.folder / f"{key}.json", seal(row))  # with its checksum (ntkuq.pointfiles)
        return row

    def rows(self) -> List[dict]:
        """Every stored row, sorted by task, method, width, optimizer, N_D and draw."""
        if self.folder is None:
            rows = list(self._memory.values())
        else:
            rows = [r for r in (read_point(p) for p in sorted(self.folder.glob("*.json"))) if r is not None]
        return sorted(rows, key=lambda r: (r["task"], r["method"], str(r["width"]), r["optimizer"],
                                           r["n_train"], r.get("draw", 0)))


def to_csv(rows: Iterable[dict]) -> str:
    """The tidy table as CSV text: COLUMNS first, then the remaining fields sorted by name."""
    rows = list(rows)
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS + extra, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                         for k, v in r.items()})
    return buf.getvalue()


def read_csv(path: os.PathLike) -> List[dict]:
    """Rows of a tidy CSV with numbers parsed (width stays 'inf' or an int)."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            for k in ("n_train", "members", "steps", "seed", "draw"):
                if r.get(k) not in (None, ""):
                    r[k] = int(float(r[k]))
            for k in ("mu", "sigma", "eps", "mu_err", "sigma_err", "eps_err", "wall_s"):
                if r.get(k) not in (None, ""):
                    r[k] = float(r[k])
            for k in ("member_losses", "params"):
                if r.get(k):
                    r[k] = json.loads(r[k])
            out.append(r)
    return out
