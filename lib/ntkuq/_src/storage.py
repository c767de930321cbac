"""Where the library keeps its files and how it writes them: one cache-folder rule, one atomic write.

Downloads (`ntkuq.data`) and simulated showers (`ntkuq.data.calorimeter`) share the cache folder of
`cache_dir`; result rows (`ntkuq.study`), executed notebooks, calorimeter cache files and the
`ntkuq` command's output files (`atomic_write_all`) are all written here, so a reader (or a restarted
run) sees either the old file or the whole new one, never a partial file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Dict, List, Tuple


def cache_dir() -> Path:
    """The cache folder of the library.

    $NTKUQ_CACHE_DIR if set, else the platform's user cache folder for 'ntkuq'
    (``pooch.os_cache('ntkuq')``: $XDG_CACHE_HOME/ntkuq or ~/.cache/ntkuq on Linux).

    Returns:
        The cache folder's path (not created here).
    """
    env = os.environ.get("NTKUQ_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("ntkuq"))


def _umask() -> int:
    """The process umask (read without changing it where /proc allows, else set and restored at once)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o022)  # pragma: no cover
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def new_file_mode() -> int:
    """The mode a newly created file gets under the current umask.

    Returns:
        0666 & ~umask, e.g. 0644 or 0664.
    """
    return 0o666 & ~_umask()


def atomic_write(path: os.PathLike, write: Callable[[IO], None], *, binary: bool = False) -> None:
    """Write a file so that readers see either the old file or the whole new one.

    The temporary file is renamed over `path` (os.replace, atomic on one file system) only after
    `write` returns; if `write` raises, the temporary file is removed, `path` is left as it was and
    the exception propagates.  The file gets the mode any new file would (0666 less the umask), not
    the 0600 of `tempfile.mkstemp`, so results stay readable by the group like other outputs.

    Args:
        path: the destination; its folder is created if missing.
        write: called with an open file handle (a temporary file in the same folder) to fill it.
        binary: open the temporary file in binary mode ("wb") instead of text mode ("w"); default False.

    Raises:
        BaseException: whatever `write` (or the write itself) raises, re-raised after the temporary file
            is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_write`).

    Args:
        path: the destination; its folder is created if missing.
        text: the file's new contents.
    """
    atomic_write(path, lambda fh: fh.write(text))


def atomic_write_all(blobs: Dict[str, bytes]) -> None:
    """Write several files all or nothing: each to a temporary name beside it first, then rename them all.

    If any write fails, no destination is touched and every temporary file is removed.

    Args:
        blobs: destination path -> the file's bytes; missing folders are created.
    """
    staged: List[Tuple[str, Path]] = []
    try:
        for path, data in blobs.items():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((tmp, target))
            os.fchmod(fd, new_file_mode())  # like any new file (mkstemp's would be 0600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


__all__ = ["atomic_write", "atomic_write_all", "atomic_write_text", "cache_dir", "new_file_mode"]
