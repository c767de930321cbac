"""Resumable training: a trained ensemble's state saved to one file while it trains, and picked up again.

A run that takes longer than a sitting (the `cpu` preset's largest ensembles train for more than an hour on
one core) saves a snapshot every `every_s` seconds: the members' parameters and optimizer state, the step,
the loss histories so far and what the stopping rule has decided.  Started again with the same arguments, the
trainer continues from the snapshot, and the result is the one an uninterrupted run gives, bit for bit (the
steps are the same updates in the same order; tests/test_checkpoint.py compares them).  A snapshot made with
other arguments, data or devices (its fingerprint differs) or an unreadable file is set aside with a
CheckpointWarning and training starts from step 0.  The file is removed once the run has finished.

With a `deadline` the run saves a snapshot and raises TrainingInterrupted at the first segment boundary past it,
so that a background job can end cleanly before a sitting does.
"""
from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ntkuq._src.checks import check_int, check_positive
from ntkuq.errors import CheckpointWarning, InputTypeError

FORMAT = 1
"""The snapshot layout's version; a snapshot of another version is set aside."""


@dataclass(frozen=True)
class Checkpoint:
    """Where and how often a training run saves its state (`train_ensemble(..., checkpoint=...)`).

    Attributes:
        path: the snapshot file (`finite_width_study` takes a folder and names one file per point by its key).
        every_s: save at most this often, in seconds of training (default 300; 0: after every segment).
        steps: the most steps trained between two chances to save, >= 1 (default 1000); it changes neither the
            result nor the compiled code, only how much an interruption can lose.
        deadline: a time.time() value: at the first segment boundary past it the run saves and raises
            TrainingInterrupted (default None: never).

    Raises:
        InputTypeError: path is not a str or path-like.
        ValueError: every_s < 0, steps < 1, or a deadline that is not a number.
    """

    path: Path
    every_s: float = 300.0
    steps: int = 1000
    deadline: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise InputTypeError(f"path: expected a file or folder path, got {type(self.path).__name__}")
        object.__setattr__(self, "path", Path(self.path))
        every = self.every_s
        if not (isinstance(every, (int, float)) and not isinstance(every, bool) and every >= 0):
            raise ValueError(f"every_s: expected seconds >= 0, got {every!r}")
        object.__setattr__(self, "every_s", float(every))
        object.__setattr__(self, "steps", check_int(self.steps, "steps"))
        if self.deadline is not None:
            object.__setattr__(self, "deadline", check_positive(self.deadline, "deadline"))

    def for_point(self, key: str) -> "Checkpoint":
        """The same policy with the file `path / (key + '.npz')`: one snapshot per point of a study.

        Args:
            key: the point's key (`ntkuq.study.store.point_key`).

        Returns:
            A Checkpoint whose path is the point's file in this folder.
        """
        return Checkpoint(self.path / f"{key}.npz", self.every_s, self.steps, self.deadline)

    def past_deadline(self) -> bool:
        """Whether the deadline (if any) has passed."""
        return self.deadline is not None and time.time() >= self.deadline


def fingerprint(*parts: Any) -> str:
    """A digest of a run's arguments and data, to tell a snapshot of this run from any other.

    Args:
        parts: numbers, strings, reprs and arrays (arrays enter by dtype, shape and bytes).

    Returns:
        The sha256 hex digest.
    """
    h = hashlib.sha256(f"ntkuq-checkpoint-{FORMAT}".encode())
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


def save(path: Path, digest: str, arrays: Dict[str, np.ndarray], leaves: list) -> None:
    """Write a snapshot atomically (a temporary file, then os.replace).

    Args:
        path: the snapshot file.
        digest: the run's fingerprint.
        arrays: named arrays and numbers (histories, counters).
        leaves: the training state's leaves (parameters, then optimizer state), in tree order.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = {f"a_{k}": np.asarray(v) for k, v in arrays.items()}
    payload.update({f"leaf_{i:04d}": np.asarray(v) for i, v in enumerate(leaves)})
    with open(tmp, "wb") as f:
        np.savez(f, digest=np.asarray(digest), n_leaves=np.asarray(len(leaves)), **payload)
    os.replace(tmp, path)


def load(path: Path, digest: str) -> Optional[Dict[str, Any]]:
    """The snapshot at path if it belongs to this run, else None (a foreign or broken file is set aside).

    Args:
        path: the snapshot file.
        digest: the run's fingerprint.

    Returns:
        None when there is no usable snapshot, else a dict of the named arrays and 'leaves' (a list).

    Warns:
        CheckpointWarning: the file exists but belongs to another run or cannot be read; it is renamed to
            `<name>.stale` and training starts over.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["digest"]) != digest:
                reason = "it was made by a run with other arguments, data or devices"
            else:
                out = {k[2:]: z[k] for k in z.files if k.startswith("a_")}
                out["leaves"] = [z[f"leaf_{i:04d}"] for i in range(int(z["n_leaves"]))]
                return out
    except (OSError, ValueError, KeyError, EOFError) as err:
        reason = f"it cannot be read ({type(err).__name__}: {err})"
    stale = path.with_name(path.name + ".stale")
    os.replace(path, stale)
    warnings.warn(f"checkpoint {path}: not used, {reason}; set aside as {stale.name}, training starts at step 0",
                  CheckpointWarning, stacklevel=3)
    return None


def remove(path: Path) -> None:
    """Delete a finished run's snapshot (nothing if absent).

    Args:
        path: the snapshot file.
    """
    path.unlink(missing_ok=True)


__all__ = ["FORMAT", "Checkpoint", "fingerprint", "load", "remove", "save"]
