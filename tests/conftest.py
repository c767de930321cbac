"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest

import ntkuq

ntkuq.enable_float64()  # the library's documented switch (see ntkuq/__init__.py); every test runs in float64

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real MNIST/CIFAR-10 folder ($NTKUQ_DATA_DIR, else ../shared/data next to the repo).

    Exported as NTKUQ_DATA_DIR.
    """
    env = os.environ.get("NTKUQ_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data not available: set NTKUQ_DATA_DIR or provide {path} "
                    "(mnist/*.gz, cifar10/cifar-10-batches-bin/*.bin)")
    monkeypatch.setenv("NTKUQ_DATA_DIR", str(path))
    return path
