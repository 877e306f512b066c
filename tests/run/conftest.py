"""Fixtures for the apply / rollback / lock suite (helpers live in applylab.py)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from applylab import Children, Rotation, running_lab, step_params
from pool_connectors import CONNECTORS, over, use_logins

from wlbplan.lab import control


@pytest.fixture
def children() -> Iterator[Children]:
    """Child processes of this test; any still alive at teardown is killed by pid."""
    made = Children()
    try:
        yield made
    finally:
        made.stop_all()


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest,
        pool_connector: str) -> Iterator[control.Lab]:
    """A fresh lab (one target, two hosts) for this test only: cheap (~0.3 s, ~0.6 s with
    XenAPI). Its xapi mode is ``current`` unless a test parametrizes ``lab`` indirectly
    (e.g. ``ch82``); its pool is reached by ``pool_connector``."""
    xapi = getattr(request, "param", "current")
    # Its own MonkeyPatch: a test's monkeypatch.undo() leaves the login in place.
    with running_lab(tmp_path / "lab", connector=pool_connector, hosts=2,
                     xapi=xapi) as made, pytest.MonkeyPatch.context() as env:
        use_logins(made, env)
        yield made


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``fresh_step`` / ``rotation_step``: every step index of the plan, read from a real
    lab when the tests are collected. A module may define ``step_marks(test, kind, index,
    actions)`` to mark known bugs on some steps."""
    module_marks = getattr(metafunc.module, "step_marks", None)
    marks_for = (functools.partial(module_marks, metafunc.function.__name__)
                 if module_marks is not None else None)
    both = metafunc.definition.get_closest_marker("connectors") is not None
    for name, kind in (("fresh_step", "fresh"), ("rotation_step", "rotation")):
        if name not in metafunc.fixturenames:
            continue
        steps = step_params(kind, marks_for)
        if not both:
            metafunc.parametrize(name, steps)
            continue
        # Each connector with each step it walks (pool_connectors.over): one parameter.
        actions = tuple(str(step.id).split("-", 1)[-1] for step in steps)
        metafunc.parametrize(("pool_connector", name), [
            pytest.param(connector, *step.values, id=f"{connector}-{step.id}",
                         marks=step.marks)
            for connector in CONNECTORS for index, step in enumerate(steps, 1)
            if over(connector, index, actions)], indirect=["pool_connector"])


@pytest.fixture(scope="module")
def rotation_labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Rotation]]:
    """The module's rotation lab per connector, each built when a test first needs it."""
    made: dict[str, Rotation] = {}
    try:
        yield made
    finally:
        for rotation in made.values():
            rotation.down()


@pytest.fixture
def rotation(rotation_labs: dict[str, Rotation], pool_connector: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotation]:
    if pool_connector not in rotation_labs:
        made = Rotation(tmp_path_factory.mktemp(f"rotation-{pool_connector}"), pool_connector)
        made.build()
        rotation_labs[pool_connector] = made
    ready = rotation_labs[pool_connector].ready()
    assert ready.lab is not None
    with pytest.MonkeyPatch.context() as env:
        use_logins(ready.lab, env)
        yield ready
