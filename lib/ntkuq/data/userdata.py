"""A user's own data: reading train/test tables from .npz or .csv, with clear errors, and standardization.

File formats (one file for the training set, one for the test set; they may differ in format)::

  .npz  arrays ``x`` (points x features) and ``y`` (points x outputs, or a vector: one output);
  .csv  a header row naming the columns, then one row per point; the target columns are named by
        ``target``, every other column is a feature.

Every problem a file can have (unknown extension, unreadable or empty file, missing array or column,
non-numeric or empty cell, NaN or infinity, ragged rows, mismatched shapes) raises a `DataError`
naming the file and, for CSV, the line and column.  Standardization uses training-set statistics only.
"""
from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ntkuq.errors import DataError

STANDARDIZE = ("none", "features", "targets", "both")
"""Choices for `fit_preprocessing`: which of the inputs x and the targets y are standardized."""


@dataclass(frozen=True)
class Table:
    """Points of one file: inputs x (N, d), targets y (N, k), column names and the file they came from.

    Attributes:
        x: the inputs, float64 (N, d).
        y: the targets, float64 (N, k).
        features: the feature columns' names (x0, x1, ... for .npz files).
        targets: the target columns' names (y0, y1, ... for .npz files).
        path: the file the points came from.
    """

    x: np.ndarray
    y: np.ndarray
    features: Tuple[str, ...]
    targets: Tuple[str, ...]
    path: str

    @property
    def n_points(self) -> int:
        """Number of points (rows) N."""
        return int(self.x.shape[0])


def _finite(arr: np.ndarray, what: str, path: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: {what} holds NaN or infinity (first at index {where}); "
                        "expected finite numbers (remove or impute those points first)")


def _read_npz(path: Path, target: Optional[Sequence[str]]) -> Table:
    if target:
        raise DataError(f"{path}: --target/target names CSV columns; an .npz file holds its targets in array 'y'")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path}: expected arrays 'x' (points x features) and 'y' (points x outputs), "
                        f"missing {missing}; found {sorted(arrays) or 'no arrays'}")
    x, y = arrays["x"], arrays["y"]
    for name, arr in (("x", x), ("y", y)):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            raise DataError(f"{path}: array '{name}' has dtype {arr.dtype}; expected real numbers")
    if x.ndim != 2:
        raise DataError(f"{path}: array 'x' has shape {x.shape}; expected 2-D (points x features)")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise DataError(f"{path}: array 'y' has shape {arrays['y'].shape}; expected a vector or 2-D (points x outputs)")
    if x.shape[0] == 0 or x.shape[1] == 0 or y.shape[1] == 0:
        raise DataError(f"{path}: empty data (x {x.shape}, y {arrays['y'].shape}); expected at least one point, "
                        "one feature and one output")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{path}: 'x' has {x.shape[0]} points but 'y' has {y.shape[0]}; expected the same number")
    x, y = x.astype(np.float64), y.astype(np.float64)
    _finite(x, "array 'x'", str(path))
    _finite(y, "array 'y'", str(path))
    feats = tuple(f"x{j}" for j in range(x.shape[1]))
    targs = tuple(f"y{j}" for j in range(y.shape[1]))
    return Table(x, y, feats, targs, str(path))


def _read_csv(path: Path, target: Optional[Sequence[str]]) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise DataError(f"{path}: empty file; expected a header row naming the columns, then one row per point")
    header = [c.strip() for c in rows[0]]
    if len(set(header)) != len(header) or any(not c for c in header):
        raise DataError(f"{path}: the header row {header} has empty or repeated column names; expected unique names")
    if not target:
        raise DataError(f"{path}: a CSV file needs its target columns named (--target COL[,COL...]); "
                        f"columns are {header}")
    missing = [t for t in target if t not in header]
    if missing:
        raise DataError(f"{path}: target column(s) {missing} not found; columns are {header}")
    if len(set(target)) != len(target):
        raise DataError(f"{path}: target columns {list(target)} repeat a name; expected distinct columns")
    if len(rows) == 1:
        raise DataError(f"{path}: the file has a header but no data rows; expected at least one point")
    values = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} cells; expected {len(header)} to match the header")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                what = "an empty cell" if not cell.strip() else f"non-numeric cell {cell!r}"
                raise DataError(f"{path}, line {line}, column {header[j]!r}: {what}; expected a number") from None
            if not np.isfinite(values[i, j]):
                raise DataError(f"{path}, line {line}, column {header[j]!r}: {cell.strip()!r} is not finite; "
                                "expected finite numbers (remove or impute those points first)")
    t_idx = [header.index(t) for t in target]
    f_idx = [j for j in range(len(header)) if j not in t_idx]
    if not f_idx:
        raise DataError(f"{path}: every column is a target; expected at least one feature column")
    return Table(values[:, f_idx], values[:, t_idx], tuple(header[j] for j in f_idx), tuple(target), str(path))


def read_table(path, target: Optional[Sequence[str]] = None) -> Table:
    """Read one data file (.npz with arrays x and y, or .csv with a header and `target` columns) as float64.

    Args:
        path: the file, .npz or .csv (by its extension, in any case).
        target: the CSV's target column names, as a sequence or one comma-separated string; None
            (default) for .npz files, which hold their targets in array ``y``.

    Returns:
        The file's points as a `Table`.

    Raises:
        DataError: if the file is missing, of an unknown type, unreadable or malformed (see the module
            docstring).
    """
    path = Path(path)
    if isinstance(target, str):
        target = [t.strip() for t in target.split(",") if t.strip()]
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, target)
    if suffix == ".csv":
        return _read_csv(path, target)
    raise DataError(f"{path}: unknown file type {suffix or '(none)'!r}; expected .npz or .csv")


def check_pair(train: Table, test: Table) -> None:
    """The test table must have the training table's features and outputs (counts, and names if both are CSV).

    Args:
        train: the training table.
        test: the test table.

    Raises:
        DataError: if the numbers of feature or output columns differ, or (both CSV) the feature names or
            their order differ.
    """
    if train.x.shape[1] != test.x.shape[1]:
        raise DataError(f"{test.path}: {test.x.shape[1]} feature columns but the training file {train.path} has "
                        f"{train.x.shape[1]}; expected the same features")
    if train.y.shape[1] != test.y.shape[1]:
        raise DataError(f"{test.path}: {test.y.shape[1]} output columns but the training file {train.path} has "
                        f"{train.y.shape[1]}; expected the same outputs")
    both_csv = train.path.lower().endswith(".csv") and test.path.lower().endswith(".csv")
    if both_csv and train.features != test.features:
        raise DataError(f"{test.path}: feature columns {list(test.features)} differ from the training file's "
                        f"{list(train.features)}; expected the same names in the same order")


@dataclass(frozen=True)
class Preprocessing:
    """x -> (x - x_mean) / x_scale and y -> (y - y_mean) / y_scale, each only if its statistics are set.

    The statistics are the training set's per-column mean and standard deviation (ddof = 0); a
    column that is constant on the training set keeps scale 1 (it is only centred).

    Attributes:
        mode: one of `STANDARDIZE`: 'none', 'features', 'targets' or 'both'.
        x_mean: the features' training-set means, or None (default) if features are not standardized.
        x_scale: the features' training-set standard deviations (1 for constant columns), or None.
        y_mean: the targets' training-set means, or None (default) if targets are not standardized.
        y_scale: the targets' training-set standard deviations (1 for constant columns), or None.
        constant_features: the number of feature columns constant on the training set (default 0).
    """

    mode: str
    x_mean: Optional[np.ndarray] = None
    x_scale: Optional[np.ndarray] = None
    y_mean: Optional[np.ndarray] = None
    y_scale: Optional[np.ndarray] = None
    constant_features: int = 0

    def apply_x(self, x: np.ndarray) -> np.ndarray:
        """The inputs as the network sees them.

        Args:
            x: the inputs (points x features).

        Returns:
            The standardized inputs, or `x` itself if features are not standardized.
        """
        return x if self.x_mean is None else (x - self.x_mean) / self.x_scale

    def apply_y(self, y: np.ndarray) -> np.ndarray:
        """The targets as the network is trained on (and tested against) them.

        Args:
            y: the targets (points x outputs).

        Returns:
            The standardized targets, or `y` itself if targets are not standardized.
        """
        return y if self.y_mean is None else (y - self.y_mean) / self.y_scale

    def describe(self) -> str:
        """One sentence saying what was done to the data, and the units the test loss is in.

        Returns:
            The sentence.
        """
        parts = {"none": "data used as given (no standardization)",
                 "features": "features standardized with training-set mean and std; targets as given",
                 "targets": "targets standardized with training-set mean and std; features as given",
                 "both": "features and targets standardized with training-set mean and std"}[self.mode]
        const = self.constant_features
        note = f" ({const} feature column(s) constant on the training set, only centred)" if const else ""
        units = ("L in squared standardized target units" if self.y_mean is not None
                 else "L in squared target units")
        return f"{parts}{note}; {units}"

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready: the mode and every statistic used (None where not applied).

        Returns:
            A dict with keys standardize, description, constant_features, x_mean, x_scale, y_mean and
            y_scale (statistics as lists of floats).
        """
        conv = (lambda a: None if a is None else [float(v) for v in a])
        return {"standardize": self.mode, "description": self.describe(),
                "constant_features": self.constant_features, "x_mean": conv(self.x_mean),
                "x_scale": conv(self.x_scale), "y_mean": conv(self.y_mean), "y_scale": conv(self.y_scale)}


def _stats(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray, int]:
    mean, std = a.mean(axis=0), a.std(axis=0)
    return mean, np.where(std > 0, std, 1.0), int(np.sum(std == 0))


def fit_preprocessing(x_train: np.ndarray, y_train: np.ndarray, mode: str = "none") -> Preprocessing:
    """Standardization statistics from the training set for mode 'none', 'features', 'targets' or 'both'.

    Args:
        x_train: the training inputs (points x features).
        y_train: the training targets (points x outputs).
        mode: which of x and y to standardize: 'none' (default), 'features', 'targets' or 'both'.

    Returns:
        The `Preprocessing` holding the statistics used.

    Raises:
        ValueError: if `mode` is not one of `STANDARDIZE`.
    """
    if mode not in STANDARDIZE:
        raise ValueError(f"standardize: expected one of {STANDARDIZE}, got {mode!r}")
    xm = xs = ym = ys = None
    const = 0
    if mode in ("features", "both"):
        xm, xs, const = _stats(np.asarray(x_train, dtype=np.float64))
    if mode in ("targets", "both"):
        ym, ys, _ = _stats(np.asarray(y_train, dtype=np.float64))
    return Preprocessing(mode, xm, xs, ym, ys, const)


__all__ = ["Preprocessing", "STANDARDIZE", "Table", "check_pair", "fit_preprocessing", "read_table"]
