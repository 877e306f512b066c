"""Fixtures for the CA-signed suite (helpers live in calab.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from calab import LabCA, running_lab

from wlbplan.lab import control


@pytest.fixture(autouse=True)
def _lab_tools(request: pytest.FixtureRequest) -> None:
    """Skip (saying what is missing) where the lab cannot run: it needs the real openssl
    and stunnel, and sshd for the ``ssh`` tests."""
    missing = [tool for tool in ("openssl",) if shutil.which(tool) is None]
    if shutil.which("stunnel4") is None and shutil.which("stunnel") is None:
        missing.append("stunnel4")
    if request.node.get_closest_marker("ssh") is not None and shutil.which("sshd") is None \
            and not Path("/usr/sbin/sshd").exists():
        missing.append("openssh-server (sshd)")
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)}")


@pytest.fixture
def ca(tmp_path: Path) -> LabCA:
    """A root and an intermediate CA for this test (openssl CLI, keys in tmp_path)."""
    return LabCA.make(tmp_path / "ca")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[control.Lab]:
    """A fresh local lab (one target, two hosts, current xapi), taken down afterwards."""
    with running_lab(tmp_path / "lab", hosts=2) as made:
        yield made
