"""Real MNIST and CIFAR-10: verified files, pickle-free parsers and preprocessing into a `tasks.TaskData`.

Every data file is resolved by one function, `data_file`: first ``$NTKUQ_DATA_DIR`` in the canonical layout
(``mnist/*.gz``, ``cifar10/cifar-10-batches-bin/*.bin``), then the download cache (`storage.cache_dir`, same
layout), downloading into it with pooch when needed.  Every file is checked against its published SHA256
(memoized per (path, size, mtime), so each file is hashed once per process).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ntkuq._src.checks import is_integer
from ntkuq._src.storage import cache_dir
from ntkuq.data.subsets import TaskData
from ntkuq.errors import DataIntegrityError, DataUnavailableError

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_ARCHIVE_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
CIFAR10_DIR = "cifar-10-batches-bin"

SHA256 = {  # relative path in the data folder / cache -> sha256 of the canonical file
    "mnist/train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "mnist/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "mnist/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    f"cifar10/{CIFAR10_DIR}/data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    f"cifar10/{CIFAR10_DIR}/data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    f"cifar10/{CIFAR10_DIR}/data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    f"cifar10/{CIFAR10_DIR}/data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    f"cifar10/{CIFAR10_DIR}/data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    f"cifar10/{CIFAR10_DIR}/test_batch.bin": "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}
FILES = {  # (name, split) -> files in the data folder: (images, labels) for MNIST, the batches for CIFAR-10
    ("mnist", "train"): ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"),
    ("mnist", "test"): ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
    ("cifar10", "train"): tuple(f"cifar10/{CIFAR10_DIR}/data_batch_{i}.bin" for i in range(1, 6)),
    ("cifar10", "test"): (f"cifar10/{CIFAR10_DIR}/test_batch.bin",),
}
NAMES = ("mnist", "cifar10")
IMAGE_SIZE = {"mnist": 28, "cifar10": 32}
SPLITS = ("train", "test")
N_CLASSES = 10
IMAGE_STANDARDIZE = ("feature", "image", None)
STD_FLOOR = 1e-8
CIFAR_RECORD = 1 + 3 * 32 * 32


# ----------------------------------------------------------------------------------------------- files

@functools.lru_cache(maxsize=None)
def _sha256_memo(path: str, size: int, mtime_ns: int) -> str:
    """SHA256 of a file; the key (path, size, mtime) invalidates the memo when the file changes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    """SHA256 of a file, computed once per process for each (path, size, mtime).

    Args:
        path: the file.

    Returns:
        The hexadecimal SHA256 digest.
    """
    st = os.stat(path)
    return _sha256_memo(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def verify(path: Path, expected: str) -> Path:
    """Return `path` if its SHA256 is `expected`, else raise DataIntegrityError.

    Args:
        path: the file.
        expected: its expected hexadecimal SHA256 digest.

    Returns:
        `path` as a Path.

    Raises:
        DataIntegrityError: if the file's SHA256 differs (corrupted or truncated file).
    """
    actual = sha256(path)
    if actual != expected:
        raise DataIntegrityError(f"{path}: SHA256 mismatch (corrupted or truncated file): "
                                 f"expected {expected}, got {actual}")
    return Path(path)


def _download(rel: str, cache: Path) -> None:
    """Download `rel` (or, for CIFAR-10, the archive holding it) into `cache` with pooch.

    pooch is imported here: data that is already on disk, e.g. on a GPU machine without pooch, never needs it.
    """
    import pooch

    try:
        if rel.startswith("mnist/"):
            name = rel.split("/")[-1]
            pooch.retrieve(MNIST_URL + name, f"sha256:{SHA256[rel]}", fname=name, path=cache / "mnist")
        else:  # extracts cifar-10-batches-bin/ next to the archive (pooch re-extracts missing members)
            pooch.retrieve(CIFAR10_URL, f"sha256:{CIFAR10_ARCHIVE_SHA256}", fname="cifar-10-binary.tar.gz",
                           path=cache / "cifar10", processor=pooch.Untar(extract_dir="."))
    except OSError as exc:  # includes requests' and urllib's connection errors
        raise DataUnavailableError(_unavailable_message(rel, cache, exc)) from exc
    except ValueError as exc:  # pooch: the downloaded file failed its hash check
        raise DataIntegrityError(f"download for {rel} failed its SHA256 check: {exc}") from exc


def _unavailable_message(rel: str, cache: Path, exc: Exception) -> str:
    """What to download, from where, and where to put it."""
    data_dir = os.environ.get("NTKUQ_DATA_DIR")
    where = f"(now {data_dir})" if data_dir else "(not set)"
    if rel.startswith("mnist/"):
        url, name = MNIST_URL + rel.split("/")[-1], rel.split("/")[-1]
        what = (f"Download {url} (sha256 {SHA256[rel]}) and put it at either\n"
                f"  $NTKUQ_DATA_DIR/{rel}  with NTKUQ_DATA_DIR {where}, or\n"
                f"  {cache / 'mnist' / name}  (the download cache; NTKUQ_CACHE_DIR moves it).")
    else:
        what = (f"Download {CIFAR10_URL} (sha256 {CIFAR10_ARCHIVE_SHA256}) and either\n"
                f"  extract it so that $NTKUQ_DATA_DIR/{rel} exists, with NTKUQ_DATA_DIR {where}, or\n"
                f"  put the archive at {cache / 'cifar10' / 'cifar-10-binary.tar.gz'}  "
                f"(the download cache, extracted automatically; NTKUQ_CACHE_DIR moves it).")
    return f"{rel} not found locally and the download failed ({type(exc).__name__}: {exc}).\n{what}"


def data_file(rel: str) -> Path:
    """Path of a verified data file: $NTKUQ_DATA_DIR/rel if present, else the cache (downloading if needed).

    A corrupted file in the cache is moved aside (renamed ``*.corrupt``) and downloaded again.

    Args:
        rel: the file's relative path in the data folder, one of the keys of `SHA256`.

    Returns:
        The path of the file, verified against its SHA256.

    Raises:
        ValueError: if `rel` is not a known data file.
        DataIntegrityError: if the file is corrupted and could not be replaced by a good download.
        DataUnavailableError: if the file is nowhere on disk and could not be downloaded.
    """
    if rel not in SHA256:
        raise ValueError(f"rel: expected one of {sorted(SHA256)}, got {rel!r}")
    data_dir = os.environ.get("NTKUQ_DATA_DIR")
    if data_dir and (Path(data_dir).expanduser() / rel).is_file():
        return verify(Path(data_dir).expanduser() / rel, SHA256[rel])
    cache = cache_dir()
    path = cache / rel
    if path.is_file():
        actual = sha256(path)
        if actual == SHA256[rel]:
            return path
        # a bad file in our own cache: keep it aside (named in the error) and fetch it again
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        try:
            _download(rel, cache)
        except DataUnavailableError as exc:
            raise DataIntegrityError(f"{rel}: the cached file {path} is corrupted (SHA256 {actual}, expected "
                                     f"{SHA256[rel]}; truncated or damaged?); it was moved to {bad.name} and "
                                     f"downloading it again failed:\n{exc}") from exc
    else:
        bad = path.with_name(path.name + ".corrupt")
        try:
            _download(rel, cache)
        except DataUnavailableError as exc:
            if not bad.is_file():
                raise
            raise DataIntegrityError(f"{rel}: the cached copy was found corrupted earlier and set aside as {bad}; "
                                     f"downloading it again failed:\n{exc}") from exc
    if not path.is_file():
        raise DataUnavailableError(_unavailable_message(rel, cache, FileNotFoundError(f"{path} missing")))
    return verify(path, SHA256[rel])


# --------------------------------------------------------------------------------------------- parsers

def parse_idx_gz(path: Path, magic: int) -> np.ndarray:
    """Parse a gzip-compressed IDX file of unsigned bytes (magic 0x803 images, 0x801 labels).

    Args:
        path: the .gz file.
        magic: the expected magic number (its low byte is the number of dimensions).

    Returns:
        The data as a uint8 array of the dimensions in the file's header.

    Raises:
        DataIntegrityError: if the gzip stream is unreadable or truncated, the magic number is wrong, or the
            header or data are truncated.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError) as exc:
        raise DataIntegrityError(f"{path}: unreadable or truncated gzip stream ({exc})") from exc
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = hex(int.from_bytes(raw[:4], "big")) if len(raw) >= 4 else "a file under 4 bytes"
        raise DataIntegrityError(f"{path}: bad IDX magic number: expected {magic:#x}, got {found}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataIntegrityError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(dims)):
        raise DataIntegrityError(f"{path}: IDX dims {dims} need {int(np.prod(dims))} data bytes, "
                                 f"file has {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def parse_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes (CHW) -> (N,32,32,3), labels.

    Args:
        path: the .bin batch file.

    Returns:
        (images, labels): uint8 images (N, 32, 32, 3) and int64 labels (N,).

    Raises:
        DataIntegrityError: if the file's size is not a positive multiple of the record size.
    """
    raw = np.fromfile(path, np.uint8)
    if raw.size == 0 or raw.size % CIFAR_RECORD:
        raise DataIntegrityError(f"{path}: size {raw.size} bytes is not a positive multiple of the "
                                 f"{CIFAR_RECORD}-byte record (truncated or not a CIFAR-10 binary batch)")
    rec = raw.reshape(-1, CIFAR_RECORD)
    images = np.ascontiguousarray(rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, rec[:, 0].astype(np.int64)


@functools.lru_cache(maxsize=None)
def load_raw(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N,28,28) for MNIST or (N,32,32,3) for CIFAR-10, and int64 labels (read-only, cached).

    Args:
        name: 'mnist' or 'cifar10'.
        split: 'train' or 'test'.

    Returns:
        (images, labels), both read-only arrays.

    Raises:
        ValueError: if `name` or `split` is unknown.
        DataIntegrityError: if the numbers of images and labels differ or a label is out of 0..9 (and,
            from `data_file` and the parsers, for corrupted files).
    """
    _check_name_split(name, split)
    files = [data_file(rel) for rel in FILES[(name, split)]]
    if name == "mnist":
        images, labels = parse_idx_gz(files[0], 0x803), parse_idx_gz(files[1], 0x801).astype(np.int64)
    else:
        parts = [parse_cifar_bin(f) for f in files]
        images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if len(images) != len(labels) or not len(labels) or labels.max() >= N_CLASSES:
        raise DataIntegrityError(f"{name}/{split}: expected as many labels as images and labels in "
                                 f"0..{N_CLASSES - 1}, got {len(images)} images, {len(labels)} labels")
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _check_name_split(name: str, split: str) -> None:
    """Raise ValueError for an unknown data set name or split."""
    if name not in NAMES:
        raise ValueError(f"name: expected one of {NAMES}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")


# ----------------------------------------------------------------------------------------------- tasks

def _features(images: np.ndarray, grayscale: bool, downsample: int) -> np.ndarray:
    """uint8 images -> flattened float64 features in [0, 1], optionally grayscale and average-pooled."""
    x = images
    if grayscale and x.ndim == 4:
        x = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    if downsample > 1:
        n, h, w = x.shape[:3]
        x = x.reshape(n, h // downsample, downsample, w // downsample, downsample, *x.shape[3:])
        x = x.mean(axis=(2, 4), dtype=np.float64)
    return np.divide(x, 255.0, dtype=np.float64).reshape(len(x), -1)


def _per_image(x: np.ndarray) -> np.ndarray:
    """Each row to zero mean and unit mean square (norm sqrt(d))."""
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(x.std(axis=1, keepdims=True), STD_FLOOR)


def load_task(name: str, *, n_test: Optional[int] = 1000, grayscale: bool = False, downsample: int = 1,
              standardize: Optional[str] = "feature", center_targets: bool = False, seed: int = 0) -> TaskData:
    """Load a preprocessed classification task: the whole training split as pool and a seeded test subset.

    standardize='feature' uses the training pool's per-feature mean and std (features whose training std is
    below 1e-8 are only centred, so test pixels that are never lit in training stay finite); 'image' makes
    each image zero-mean with unit mean square; None leaves pixels in [0, 1].  Targets are one-hot (k=10),
    minus 1/k if center_targets.  The test subset is the first n_test of a seeded permutation (None: all).

    Args:
        name: 'mnist' or 'cifar10'.
        n_test: size of the test subset (default 1000; None: the whole test split).
        grayscale: CIFAR-10 only: luminance 0.299 R + 0.587 G + 0.114 B instead of three channels
            (default False).
        downsample: average-pool the images by this factor (it must divide the image size; default 1).
        standardize: 'feature' (default), 'image' or None (see above).
        center_targets: subtract 1/k from the one-hot targets (default False).
        seed: the permutation that picks the test subset (default 0).

    Returns:
        The task as a `TaskData` with float64 features, one-hot targets, the options in `info` and the
        integer labels.

    Raises:
        ValueError: if `name`, `standardize`, `downsample` or `n_test` is not valid.
    """
    _check_name_split(name, "train")
    if standardize not in IMAGE_STANDARDIZE:
        raise ValueError(f"standardize: expected one of {IMAGE_STANDARDIZE}, got {standardize!r}")
    size = IMAGE_SIZE[name]
    if not is_integer(downsample) or downsample < 1 or size % downsample:
        raise ValueError(f"downsample: expected a positive integer dividing the image size {size}, "
                         f"got {downsample!r}")
    x_tr, l_tr = load_raw(name, "train")
    x_te, l_te = load_raw(name, "test")
    if n_test is None:
        n_test = len(x_te)
    if not is_integer(n_test) or not 1 <= n_test <= len(x_te):
        raise ValueError(f"n_test: expected None or an integer in [1, {len(x_te)}], got {n_test!r}")
    test_idx = np.random.default_rng(seed).permutation(len(x_te))[:n_test]
    x_train = _features(x_tr, grayscale, downsample)
    x_test = _features(x_te[test_idx], grayscale, downsample)
    if standardize == "feature":
        mean = x_train.mean(axis=0)
        x_train -= mean
        x_test -= mean
        std = np.sqrt(np.einsum("ij,ij->j", x_train, x_train) / len(x_train))
        std[std < STD_FLOOR] = 1.0
        x_train /= std
        x_test /= std
    elif standardize == "image":
        x_train, x_test = _per_image(x_train), _per_image(x_test)
    eye = np.eye(N_CLASSES) - (1.0 / N_CLASSES if center_targets else 0.0)
    options = dict(n_test=n_test, grayscale=grayscale, downsample=downsample, standardize=standardize,
                   center_targets=center_targets, seed=seed)
    return TaskData(name, x_train, eye[l_tr], x_test, eye[l_te[test_idx]], options, np.array(l_tr), l_te[test_idx])


__all__ = ["CIFAR10_ARCHIVE_SHA256", "CIFAR10_DIR", "CIFAR10_URL", "CIFAR_RECORD", "FILES", "IMAGE_SIZE",
           "IMAGE_STANDARDIZE", "MNIST_URL", "NAMES", "N_CLASSES", "SHA256", "SPLITS", "STD_FLOOR", "data_file",
           "load_raw", "load_task", "parse_cifar_bin", "parse_idx_gz", "sha256", "verify"]
