"""Fixtures the data-driven suites share (differ cases, audit cases, audit properties), and
the hypothesis profiles every property test runs under."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from differ_fixtures import Registry, registry
from hypothesis import settings

# "ci", the default (`make test`): the same examples on every run and no example database,
# so a failure in CI is a failure on every machine. "dev": fresh random examples each run,
# and the database replays what failed before; use it to hunt (HYPOTHESIS_PROFILE=dev).
# Neither sets a deadline: two cores shared by parallel workers make timings noise.
# How many examples the parsers of untrusted text get is property_settings.PARSER_EXAMPLES.
settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# After every test: no private key or password in what it captured or left (issue 10).
pytest_plugins = ("leakscan",)


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
