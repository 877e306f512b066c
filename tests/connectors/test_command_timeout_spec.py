"""``defaults.command_timeout``: one definition (the schema states the default, the code
reads it), validated like every number of the spec, and given by the sessions to every
runner of every target, so that nothing a target runs is unbounded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from wlbplan.errors import CommandTimeout
from wlbplan.model.spec import Defaults
from wlbplan.run.pipeline import inspect_each
from wlbplan.spec import load_spec, load_spec_text, schema_text

TARGET = """\
targets:
  - name: t1
    pool: {{coordinator: xs1.example.com, connection: local, xe: {xe}}}
    wlb: {{address: wlb.example.com, connection: local}}
    certificate: {{source: self-signed}}
"""


def _spec_text(xe: str = "xe", timeout: str | None = None) -> str:
    defaults = f"defaults:\n  command_timeout: {timeout}\n" if timeout is not None else ""
    return f"version: 1\n{defaults}{TARGET.format(xe=xe)}"


def test_the_default_is_the_schemas() -> None:
    stated = json.loads(schema_text())["properties"]["defaults"]["properties"]
    default = stated["command_timeout"]["default"]
    assert isinstance(default, int | float)
    assert default > 0
    assert Defaults().command_timeout == default
    spec, _ = load_spec_text(_spec_text(), Path("s.yaml"))
    assert spec is not None
    assert spec.defaults.command_timeout == default


def test_a_given_timeout_is_read() -> None:
    spec, _ = load_spec_text(_spec_text(timeout="2.5"), Path("s.yaml"))
    assert spec is not None
    assert spec.defaults.command_timeout == 2.5


@pytest.mark.parametrize("value", ["0", "-1", ".inf", ".nan", "86401", "'10'", "true"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused(value: str) -> None:
    spec, diagnostics = load_spec_text(_spec_text(timeout=value), Path("s.yaml"))
    assert spec is None
    assert any("command_timeout" in d.format() for d in diagnostics), diagnostics


def test_every_command_of_a_target_is_bounded_by_it(tmp_path: Path) -> None:
    xe = tmp_path / "xe"
    xe.write_text("#!/bin/sh\nexec sleep 3600\n")
    xe.chmod(0o755)
    path = tmp_path / "spec.yaml"
    path.write_text(_spec_text(xe=str(xe), timeout="0.5"))
    started = time.monotonic()
    (result,) = inspect_each(load_spec(path), load_spec(path).targets)
    assert time.monotonic() - started < 10
    assert isinstance(result, CommandTimeout), result
    assert "is unreachable" in str(result)
    assert "within 0.5s" in str(result)
