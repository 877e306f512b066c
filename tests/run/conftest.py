"""Fixtures for the apply / rollback / lock suite (helpers live in applylab.py)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from applylab import Children, Rotation, running_lab, step_params

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
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[control.Lab]:
    """A fresh lab (one target, two hosts) for this test only: cheap (~0.3 s). Its xapi
    mode is ``current`` unless a test parametrizes ``lab`` indirectly (e.g. ``ch82``)."""
    xapi = getattr(request, "param", "current")
    with running_lab(tmp_path / "lab", hosts=2, xapi=xapi) as made:
        yield made


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``fresh_step`` / ``rotation_step``: every step index of the plan, read from a real
    lab when the tests are collected. A module may define ``step_marks(test, kind, index,
    actions)`` to mark known bugs on some steps."""
    module_marks = getattr(metafunc.module, "step_marks", None)
    marks_for = (functools.partial(module_marks, metafunc.function.__name__)
                 if module_marks is not None else None)
    for name, kind in (("fresh_step", "fresh"), ("rotation_step", "rotation")):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, step_params(kind, marks_for))


@pytest.fixture(scope="module")
def rotation_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotation]:
    made = Rotation(tmp_path_factory.mktemp("rotation"))
    try:
        made.build()
        yield made
    finally:
        made.down()


@pytest.fixture
def rotation(rotation_lab: Rotation) -> Rotation:
    return rotation_lab.ready()
