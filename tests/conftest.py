"""Fixtures the data-driven suites share (differ cases, audit cases, audit properties)."""

from __future__ import annotations

from pathlib import Path

import pytest
from differ_fixtures import Registry, registry


@pytest.fixture(scope="session")
def reg() -> Registry:
    """The session's test certificates by name (tests/differ_fixtures.py)."""
    return registry()


@pytest.fixture(scope="session")
def spec_dir(tmp_path_factory: pytest.TempPathFactory, reg: Registry) -> Path:
    """Where in-memory case specs say they live: ``certs/NAME.pem`` beside them, for the
    relative paths a case's spec uses."""
    folder = tmp_path_factory.mktemp("case_specs")
    reg.write(folder / "certs")
    return folder
