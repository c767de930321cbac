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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from ntkuq._src.storage import atomic_write_text
from ntkuq.study.pointfiles import read_point, seal

COLUMNS = ["task", "n_train", "width", "optimizer", "method", "draw", "mu", "sigma", "eps",
           "mu_err", "sigma_err", "eps_err", "members", "steps", "seed", "wall_s", "device", "key"]
"""The tidy table's leading columns, in order; a row's parameters and library versions follow as JSON."""


@dataclass
class ResultRow:
    """One finished point of a study: the statistics of one (task, N_D, width, optimizer, method, draw).

    In memory infinite width is `width=None` and t = infinity is `steps=None`; on disk (the point files
    and the tidy CSV) they are written as width "inf" and steps -1, the format the committed results
    use.  `to_dict` and `from_dict` convert; `member_losses` (finite-width ensembles only) and the two
    parts of sigma_L^2, `var_diag` and `var_offdiag` (with bootstrap errors for ensembles), are written
    only when present.
    """

    task: str
    n_train: int
    width: Optional[int]
    optimizer: str
    method: str
    draw: int
    study: str
    mu: float
    sigma: float
    eps: float
    mu_err: float = 0.0
    sigma_err: float = 0.0
    eps_err: float = 0.0
    members: int = 0
    steps: Optional[int] = None
    seed: int = 0
    wall_s: float = 0.0
    device: str = ""
    versions: str = ""
    params: Dict[str, Any] = field(default_factory=dict)
    member_losses: Optional[List[float]] = None
    var_diag: Optional[float] = None
    var_offdiag: Optional[float] = None
    var_diag_err: Optional[float] = None
    var_offdiag_err: Optional[float] = None
    key: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """The row as stored: width "inf" for infinite width, steps -1 for t = infinity.

        Returns:
            The row's fields as a dict, the optional fields that are None left out.
        """
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["width"] = INFINITE_WIDTH if self.width is None else self.width
        out["steps"] = T_INFINITY if self.steps is None else self.steps
        for optional in ("member_losses", "var_diag", "var_offdiag", "var_diag_err", "var_offdiag_err", "key"):
            if out[optional] is None:
                del out[optional]
        return out

    @classmethod
    def from_dict(cls, row: Dict[str, Any]) -> "ResultRow":
        """A stored row (a point file or a `read_csv` row) back as a ResultRow; unknown fields are ignored.

        Args:
            row: the stored row, width "inf" for infinite width and steps -1 for t = infinity.

        Returns:
            The ResultRow, width None for infinite width and steps None for t = infinity.
        """
        known = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        width = known.get("width")
        known["width"] = None if str(width) == INFINITE_WIDTH else int(width)
        steps = known.get("steps")
        known["steps"] = None if steps is None or int(steps) == T_INFINITY else int(steps)
        return cls(**known)


INFINITE_WIDTH = "inf"
"""How an infinite width is written in the point files and the CSV."""
T_INFINITY = -1
"""How t = infinity (the converged ensemble) is written as `steps`."""


def point_key(**fields: Any) -> str:
    """A short stable hash of the fields that define a point (task, sizes, spec, seeds, ...).

    Args:
        **fields: the fields that define the point (JSON-serialized with sorted keys; other values as text).

    Returns:
        The first 16 hex digits of the SHA-256 of the fields.
    """
    blob = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def environment() -> Dict[str, str]:
    """Library versions and the compute device, recorded with every row.

    Returns:
        {"versions": the versions of jax, jaxlib, numpy, scipy, optax and ntkuq as JSON text ("?" where not
        installed), "device": "platform:device kind", "machine": the machine type}.
    """
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

    Files carry a checksum and their key and are verified when read (`ntkuq.study.pointfiles`): a truncated,
    edited or foreign file is warned about, set aside as KEY.json.bad and treated as not finished.

    Args:
        folder: the folder of the point files (created when the first point is written, if missing), or None
            to keep the rows in memory only.

    Raises:
        ValueError: folder exists and is not a folder.
    """

    def __init__(self, folder: Optional[os.PathLike]) -> None:
        self.folder = None if folder is None else Path(folder)
        if self.folder is not None and self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"folder: expected a folder for the result points, got the file {str(self.folder)!r}")
        self._memory: Dict[str, dict] = {}

    def get(self, key: str) -> Optional[dict]:
        """The stored row for key, or None if that point has not finished.

        Args:
            key: the point's key (`point_key`).

        Returns:
            The stored row (verified; a bad file is set aside and gives None), or None.
        """
        if self.folder is None:
            return self._memory.get(key)
        return read_point(self.folder / f"{key}.json")  # verified; a bad file is set aside (None)

    def put(self, key: str, row: Union[ResultRow, dict]) -> dict:
        """Store a finished point's row atomically and return it as stored (a dict, with its key).

        Args:
            key: the point's key (`point_key`).
            row: the finished point's row, a ResultRow or a dict as stored.

        Returns:
            The row as stored, a dict with its "key".
        """
        row = {**(row.to_dict() if isinstance(row, ResultRow) else row), "key": key}
        if self.folder is None:
            self._memory[key] = row
        else:
            atomic_write_text(self.folder / f"{key}.json", seal(row))  # with its checksum (ntkuq.study.pointfiles)
        return row

    def rows(self) -> List[dict]:
        """Every stored row, sorted by task, method, width, optimizer, N_D and draw.

        Returns:
            The stored rows (verified; bad files are set aside and left out).
        """
        if self.folder is None:
            rows = list(self._memory.values())
        else:
            rows = [r for r in (read_point(p) for p in sorted(self.folder.glob("*.json"))) if r is not None]
        return sorted(rows, key=lambda r: (r["task"], r["method"], str(r["width"]), r["optimizer"],
                                           r["n_train"], r.get("draw", 0)))


def to_csv(rows: Iterable[dict]) -> str:
    """The tidy table as CSV text: COLUMNS first, then the remaining fields sorted by name.

    Args:
        rows: the rows as stored (dicts); dict and list values are written as JSON.

    Returns:
        The CSV text, with a header line.
    """
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
    """Rows of a tidy CSV with numbers parsed (width stays 'inf' or an int).

    Args:
        path: the CSV file (as written from `to_csv`).

    Returns:
        The rows as dicts; integer and float columns parsed, member_losses and params parsed from JSON; an
        optional field that a row does not have (member_losses, the parts of sigma_L^2) is left out.
    """
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            for k in ("n_train", "members", "steps", "seed", "draw"):
                if r.get(k) not in (None, ""):
                    r[k] = int(float(r[k]))
            for k in ("mu", "sigma", "eps", "mu_err", "sigma_err", "eps_err", "wall_s", "var_diag", "var_offdiag",
                      "var_diag_err", "var_offdiag_err"):
                if r.get(k) not in (None, ""):
                    r[k] = float(r[k])
            for k in ("member_losses", "var_diag", "var_offdiag", "var_diag_err", "var_offdiag_err"):
                if r.get(k) == "":  # an optional field that this row does not have (as in its point file)
                    del r[k]
            for k in ("member_losses", "params"):
                if r.get(k):
                    r[k] = json.loads(r[k])
            out.append(r)
    return out


__all__ = ["COLUMNS", "INFINITE_WIDTH", "ResultRow", "ResultStore", "T_INFINITY", "environment", "point_key",
           "read_csv", "to_csv"]
