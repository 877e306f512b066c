"""Fixtures for the CA-signed suite (helpers live in calab.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from calab import LabCA, running_lab

from wlbplan.lab import control


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.fixture
def ca(tmp_path: Path) -> LabCA:
    """A root and an intermediate CA for this test (openssl CLI, keys in tmp_path)."""
    _need("openssl")
    return LabCA.make(tmp_path / "ca")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[control.Lab]:
    """A fresh local lab (one target, two hosts, current xapi), taken down afterwards."""
    _need("openssl")
    with running_lab(tmp_path / "lab", hosts=2) as made:
        yield made
