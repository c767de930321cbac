"""Resumable training: a trained ensemble's state saved to one file while it trains, and picked up again.

A run that takes longer than a sitting (the `cpu` preset's largest ensembles train for more than an hour on
one core) saves a snapshot every `every_s` seconds: the members' parameters and optimizer state, the step,
the loss histories so far and what the stopping rule has decided.  Started again with the same arguments, the
trainer continues from the snapshot, and the result is the one an uninterrupted run gives, bit for bit (the
steps are the same updates in the same order; tests/test_checkpoint.py compares them).  On another number of
devices of the same kind (members sharded over more cores, say) it continues to within float32 rounding of the
uninterrupted run, as any sharded run agrees with one device (tests/test_stopping.py).  A snapshot made with
other arguments, data, kind of device or library versions (its fingerprint differs), one whose arrays do not
have the shapes this run expects, or an unreadable file is set aside with a CheckpointWarning (renamed
`<name>.stale`) and training starts from step 0.  The file is removed once the run has finished; only
process 0 writes it.

With a `deadline` the run saves a snapshot and raises TrainingInterrupted at the first segment boundary past it,
so that a background job can end cleanly before a sitting does.
"""
from __future__ import annotations

import hashlib
import os
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import jax
import numpy as np
import optax

from ntkuq._src.checks import check_int, check_positive
from ntkuq.errors import CheckpointWarning, InputTypeError

FORMAT = 2
"""The snapshot layout's version; a snapshot of another version is set aside."""


@dataclass(frozen=True)
class Checkpoint:
    """Where and how often a training run saves its state (`train_ensemble(..., checkpoint=...)`).

    Attributes:
        path: the snapshot file (`finite_width_study` takes a folder and names one file per point by its key).
        every_s: save at most this often, in seconds of training (default 300; 0: after every segment).
        segment: the most steps trained between two chances to save, >= 1 (default 1000); it changes neither the
            result nor the compiled code, only how much an interruption can lose.
        deadline: a time.time() value: at the end of the first segment that finishes past it the run saves and
            raises TrainingInterrupted (default None: never); a call always trains at least one segment.

    Raises:
        InputTypeError: path is not a str or path-like, or every_s, segment or deadline not a number.
        ValueError: every_s < 0 or NaN, segment < 1, or a deadline that is not a finite positive number.
    """

    path: Path
    every_s: float = 300.0
    segment: int = 1000
    deadline: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise InputTypeError(f"path: expected a file or folder path, got {type(self.path).__name__}")
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "every_s", check_positive(self.every_s, "every_s", allow_zero=True, allow_inf=True))
        object.__setattr__(self, "segment", check_int(self.segment, "segment"))
        if self.deadline is not None:
            object.__setattr__(self, "deadline", check_positive(self.deadline, "deadline"))

    def for_point(self, key: str) -> "Checkpoint":
        """The same policy with the file `path / (key + '.npz')`: one snapshot per point of a study.

        Args:
            key: the point's key (`ntkuq.study.store.point_key`).

        Returns:
            A Checkpoint whose path is the point's file in this folder.
        """
        return Checkpoint(self.path / f"{key}.npz", self.every_s, self.segment, self.deadline)

    def past_deadline(self) -> bool:
        """Whether the deadline (if any) has passed."""
        return self.deadline is not None and time.time() >= self.deadline

    def require_writable(self) -> None:
        """Refuse, before any training, a snapshot file that cannot be written.

        Raises:
            ValueError: its folder cannot be created or written to (the OSError's message is quoted).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            probe = self.path.with_name(f"{self.path.name}.{os.getpid()}.probe")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise ValueError(f"checkpoint: expected a writable folder for {self.path}, got {type(err).__name__}: "
                             f"{err}") from None


def fingerprint(*parts: Any) -> str:
    """A digest of a run's arguments and data, to tell a snapshot of this run from any other.

    Besides the parts, the digest covers the snapshot layout (FORMAT), the versions of jax, jaxlib and optax,
    the backend and whether float64 is enabled: a snapshot from other code or another kind of device is not
    continued.

    Args:
        parts: numbers, strings, reprs and arrays (arrays enter by dtype, shape and bytes).

    Returns:
        The sha256 hex digest.
    """
    h = hashlib.sha256(f"ntkuq-checkpoint-{FORMAT}".encode())
    env = (jax.__version__, getattr(jax.lib, "__version__", ""), optax.__version__, jax.default_backend(),
           bool(jax.config.jax_enable_x64))
    for p in (*env, *parts):
        if isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


def save(path: Path, digest: str, arrays: Dict[str, np.ndarray], leaves: list) -> None:
    """Write a snapshot atomically (a temporary file of this process, flushed to disk, then os.replace).

    Only process 0 writes (under jax.distributed every process holds the same full arrays, `to_host`).

    Args:
        path: the snapshot file.
        digest: the run's fingerprint.
        arrays: named arrays and numbers (histories, counters).
        leaves: the training state's leaves (parameters, then optimizer state), in tree order.
    """
    if jax.process_index() != 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    payload = {f"a_{k}": np.asarray(v) for k, v in arrays.items()}
    payload.update({f"leaf_{i:04d}": np.asarray(v) for i, v in enumerate(leaves)})
    with open(tmp, "wb") as f:
        np.savez(f, digest=np.asarray(digest), n_leaves=np.asarray(len(leaves)), **payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path, digest: str, shapes: Dict[str, tuple]) -> Optional[Dict[str, Any]]:
    """The snapshot at path if it belongs to this run, else None (a foreign or broken file is set aside).

    Args:
        path: the snapshot file.
        digest: the run's fingerprint.
        shapes: the expected shape of each named array (a snapshot with other shapes is set aside).

    Returns:
        None when there is no usable snapshot, else a dict of the named arrays and 'leaves' (a list).

    Warns:
        CheckpointWarning: the file exists but belongs to another run, has other shapes or cannot be read; it is
            set aside (`set_aside`) and training starts over.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["digest"]) != digest:
                return set_aside(path, "it was made by a run with other arguments, data, devices or versions")
            out = {k[2:]: z[k] for k in z.files if k.startswith("a_")}
            out["leaves"] = [z[f"leaf_{i:04d}"] for i in range(int(z["n_leaves"]))]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        return set_aside(path, f"it cannot be read ({type(err).__name__}: {err})")
    wrong = [k for k, shape in shapes.items() if k not in out or out[k].shape != tuple(shape)]
    if wrong:
        return set_aside(path, f"its arrays {wrong} do not have this run's shapes")
    return out


def set_aside(path: Path, reason: str) -> None:
    """Rename an unusable snapshot to `<name>.stale` and warn; returns None (no snapshot).

    Args:
        path: the snapshot file.
        reason: why it is not used, for the warning.

    Warns:
        CheckpointWarning: naming the file, the reason and where it was put.
    """
    stale = path.with_name(path.name + ".stale")
    os.replace(path, stale)
    warnings.warn(f"checkpoint {path}: not used, {reason}; set aside as {stale.name}, training starts at step 0",
                  CheckpointWarning, stacklevel=3)


def fit_members(leaves: list, n_members: int, shapes: list) -> Optional[list]:
    """A snapshot's member-leading leaves padded for this run's devices (the snapshot may come from other devices).

    A chunk of m members is padded to a multiple of the device count with copies of its last member (which
    train exactly like it and are dropped), so the same chunk has m, m + 1, ... rows on different numbers of
    devices.  The real members are kept and the copies made again for the rows wanted.

    Args:
        leaves: the snapshot's leaves, each with the (padded) members first.
        n_members: m, the real members of the chunk.
        shapes: the (shape, dtype) pairs this run's fresh chunk has, leaf by leaf.

    Returns:
        The leaves with the wanted shapes, or None when they differ in more than the padding.
    """
    if len(leaves) != len(shapes):
        return None
    out = []
    for v, (shape, dtype) in zip(leaves, shapes):
        v = np.asarray(v)
        if v.dtype != dtype or v.ndim != len(shape) or v.shape[1:] != tuple(shape[1:]) or not (
                v.ndim and min(v.shape[0], shape[0]) >= n_members):
            return None
        v = v[:n_members]
        out.append(np.concatenate([v, np.repeat(v[-1:], shape[0] - n_members, axis=0)]) if shape[0] > n_members
                   else v)
    return out


def remove(path: Path) -> None:
    """Delete a finished run's snapshot (nothing if absent).

    Args:
        path: the snapshot file.
    """
    path.unlink(missing_ok=True)


__all__ = ["FORMAT", "Checkpoint", "fingerprint", "fit_members", "load", "remove", "save", "set_aside"]
