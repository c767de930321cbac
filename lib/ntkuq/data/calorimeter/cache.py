"""The disk cache of simulated showers: one .npz (no pickle) per (config, n_showers, seed, stream).

Files are ``<cache_dir>/calorimeter/<cache_key>.npz`` holding the arrays of `Showers` (no hcal
array without an HCAL).  The key hashes the configuration in the flat field layout that
CalorimeterConfig had before its ECAL and HCAL became `Section` values (ecal fields at the top
level, the HCAL's prefixed ``hcal_`` with a ``hcal`` switch), so files written before that change
are still found: the simulated output did not change with it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from ntkuq._src import storage
from ntkuq.data.calorimeter.config import DEFAULT_HCAL, CalorimeterConfig
from ntkuq.data.calorimeter.simulator import CODE_VERSION, DEFAULT_CHUNK_SIZE, Showers, simulate

default_cache_dir = storage.cache_dir
"""The cache folder, `ntkuq._src.storage.cache_dir` (the same folder as the MNIST/CIFAR-10 downloads)."""

_ARRAYS = ("energies", "ecal", "hcal", "T", "alpha", "n_spots", "impact")


def _key_fields(config: CalorimeterConfig) -> dict:
    """The configuration as a flat dict, the layout the cache key hashes.

    Top-level fields, the ECAL's fields, ``hcal`` (a bool) and the HCAL's fields prefixed ``hcal_``
    (`DEFAULT_HCAL`'s without an HCAL).
    """
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in ("ecal", "hcal")}
    fields.update(dataclasses.asdict(config.ecal))
    fields.update({f"hcal_{k}": v for k, v in dataclasses.asdict(config.hcal or DEFAULT_HCAL).items()})
    fields["hcal"] = config.hcal is not None
    return fields


def cache_key(config: CalorimeterConfig, n_showers: int, seed: int, stream: int = 0,
              chunk_size: int = DEFAULT_CHUNK_SIZE) -> str:
    """SHA256 over every config field, n_showers, seed, stream, chunk_size and CODE_VERSION.

    Args:
        config: the calorimeter; hashed in the flat field layout of `_key_fields`.
        n_showers: the number of simulated showers.
        seed: the random seed of `simulate`.
        stream: the random stream of `simulate` (default 0; the task uses 0 for training, 1 for testing).
        chunk_size: showers per vectorized chunk of `simulate` (default DEFAULT_CHUNK_SIZE); part of the
            random stream, so part of the key.

    Returns:
        The key as 64 hexadecimal characters (the cache file's name without ``.npz``).
    """
    payload = dict(config=_key_fields(config), n_showers=int(n_showers), seed=int(seed),
                   stream=int(stream), chunk_size=int(chunk_size), version=CODE_VERSION)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path, config: CalorimeterConfig, n: int) -> Optional[Showers]:
    """The showers stored at path, or None if the file is unreadable or its arrays have the wrong shapes."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in _ARRAYS if k in f.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    expect = dict(energies=(n,), T=(n,), alpha=(n,), n_spots=(n,), impact=(n, 2))
    for name, section in config.sections:
        expect[name] = (n,) + section.shape
    if any(k not in arrays or arrays[k].shape != s for k, s in expect.items()):
        return None
    return Showers(hcal=arrays.get("hcal") if config.hcal is not None else None, config=config,
                   **{k: arrays[k] for k in _ARRAYS if k != "hcal"})


def _write_cache(path: Path, showers: Showers) -> None:
    """Store the showers' arrays at path as an uncompressed .npz, atomically."""
    arrays = {k: getattr(showers, k) for k in _ARRAYS if getattr(showers, k) is not None}
    storage.atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)


def load_calorimeter(n_showers: int, config: Optional[CalorimeterConfig] = None, seed: int = 0,
                     cache_dir=None, *, stream: int = 0, progress: bool = False,
                     use_cache: bool = True) -> Showers:
    """`simulate(config, n_showers, seed, stream=stream)`, cached on disk as an .npz (no pickle).

    The file is written atomically (`ntkuq._src.storage.atomic_write`) and recomputed if unreadable or
    of the wrong shape.

    Args:
        n_showers: how many showers, as for `simulate`.
        config: the calorimeter (default: ``CalorimeterConfig()``).
        seed: the random seed, as for `simulate` (default 0).
        cache_dir: the cache folder (default: `default_cache_dir()`); the file is
            ``<cache_dir>/calorimeter/<cache_key>.npz``.
        stream: the random stream, as for `simulate` (default 0).
        progress: a tqdm bar over chunks while simulating, as for `simulate` (default False).
        use_cache: False simulates without reading or writing the cache (default True).

    Returns:
        The `Showers`, read from the cache or simulated (and then cached).
    """
    config = CalorimeterConfig() if config is None else config
    if not use_cache:
        return simulate(config, n_showers, seed, stream=stream, progress=progress)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / "calorimeter" / f"{cache_key(config, n_showers, seed, stream)}.npz"
    if path.exists():
        cached = _read_cache(path, config, int(n_showers))
        if cached is not None:
            return cached
    showers = simulate(config, n_showers, seed, stream=stream, progress=progress)
    _write_cache(path, showers)
    return showers


__all__ = ["cache_key", "load_calorimeter"]
