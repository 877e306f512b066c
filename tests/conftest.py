"""Fixtures the data-driven suites share (differ cases, audit cases, audit properties), and
the hypothesis profiles every property test runs under."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from differ_fixtures import Registry, registry
from hypothesis import settings
from pool_connectors import CONNECTORS

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


# The step walks of tests/run parametrize the connector with their step (run/conftest.py).
_STEP_WALKS = {"fresh_step", "rotation_step"}


@pytest.fixture
def pool_connector(request: pytest.FixtureRequest) -> str:
    """How the test's lab reaches the pool (tests/pool_connectors.py): ``xe`` unless the
    test is marked ``connectors``, which runs it over each."""
    return str(getattr(request, "param", "xe"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("connectors") is None:
        return
    if not _STEP_WALKS & set(metafunc.fixturenames):
        metafunc.parametrize("pool_connector", CONNECTORS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``connectors(xenapi_not={PARAM: VALUE or (VALUES…)}, why=...)``: not over XenAPI
    with that parameter value (what the other connector's case proves as well; ``why`` says so)."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("connectors")
        params = getattr(getattr(item, "callspec", None), "params", {})
        unwanted = marker.kwargs.get("xenapi_not", {}) if marker is not None else {}
        if params.get("pool_connector") == "xenapi" and any(
                params.get(name) in (values if isinstance(values, tuple) else (values,))
                for name, values in unwanted.items()):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
