"""``defaults.timeout``, the one knob over every connect and every command (issue 9): the
narrower keys that came before it (``command_timeout``, ``ssh.connect_timeout``) still
win where set, and the command line's ``--timeout`` wins over all of them. A host that
accepts TCP and never answers, and one whose command hangs, each cost that much."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wlbplan.errors import ConnectError
from wlbplan.model.spec import Spec
from wlbplan.run.pipeline import inspect_each
from wlbplan.run.sessions import Fleet
from wlbplan.spec import load_spec_text


def _spec(defaults: str = "", target_ssh: str = "") -> Spec:
    text = ("version: 1\n"
            + (f"defaults:\n{defaults}" if defaults else "")
            + "targets:\n"
              "  - name: t1\n"
              "    pool: {coordinator: 127.0.0.1}\n"
              "    wlb: {address: wlb.example.com, ssh_host: 127.0.0.1}\n"
              "    certificate: {source: self-signed}\n"
            + (f"    ssh: {target_ssh}\n" if target_ssh else ""))
    spec, diagnostics = load_spec_text(text, Path("s.yaml"))
    assert spec is not None, diagnostics
    return spec


def _bounds(spec: Spec) -> tuple[float, float]:
    """(connect, command) timeouts the runners of the spec's one target get."""
    sessions = Fleet(spec).sessions(spec.targets[0])
    ssh = sessions.pool.target  # type: ignore[attr-defined]  # an SshRunner
    return ssh.connect_timeout, ssh.command_timeout


@pytest.mark.parametrize(("defaults", "target_ssh", "expected"), [
    ("", "", (10, 120)),                                            # as before the knob
    ("  timeout: 7\n", "", (7, 7)),                                 # the one knob
    ("  timeout: 7\n  command_timeout: 300\n", "", (7, 300)),       # narrower key wins
    ("  timeout: 7\n  ssh: {connect_timeout: 3}\n", "", (3, 7)),
    ("  timeout: 7\n", "{connect_timeout: 2}", (2, 7)),             # a target's own
    ("  command_timeout: 30\n", "", (10, 30)),
])
def test_the_knob_and_the_keys_that_narrow_it(defaults: str, target_ssh: str,
                                               expected: tuple[float, float]) -> None:
    assert _bounds(_spec(defaults, target_ssh)) == expected


def test_the_command_line_overrides_every_key() -> None:
    spec = _spec("  timeout: 7\n  command_timeout: 300\n  ssh: {connect_timeout: 3}\n",
                 "{connect_timeout: 2}")
    assert _bounds(spec.with_timeout(1.5)) == (1.5, 1.5)
    assert spec.with_timeout(1.5).digest == spec.digest  # still the same spec file


@pytest.mark.parametrize("value", ["0", "-1", ".inf", ".nan", "86401", "'10'"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused(value: str) -> None:
    spec, diagnostics = load_spec_text(
        "version: 1\ndefaults:\n  timeout: " + value + "\ntargets: []\n", Path("s.yaml"))
    assert spec is None
    assert any("defaults.timeout" in d.format() for d in diagnostics), diagnostics


@pytest.mark.parametrize("value", ["0", "nan", "86401"])
def test_the_option_refuses_what_is_not_a_timeout(value: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "wlbplan", "plan", str(tmp_path / "s.yaml"),
                           "--timeout", value], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 1
    assert "--timeout" in done.stderr
    assert "Traceback" not in done.stderr



def test_a_host_that_accepts_tcp_and_never_answers_costs_the_timeout(
        silent_port: int, tmp_path: Path) -> None:
    spec = _spec(f"  timeout: 1\n  ssh: {{port: {silent_port}, known_hosts: "
                 f"{tmp_path / 'known_hosts'}}}\n")
    started = time.monotonic()
    (result,) = inspect_each(spec, spec.targets)
    took = time.monotonic() - started
    assert isinstance(result, ConnectError), result
    assert f"timed out after 1s connecting to 127.0.0.1:{silent_port}" in str(result)
    assert 1 <= took < 4, took  # both hosts at once, each bounded by the one knob
    assert "--timeout SECONDS, or defaults.timeout" in str(result)


def test_a_hung_command_costs_the_timeout_from_the_command_line(tmp_path: Path) -> None:
    xe = tmp_path / "xe"
    xe.write_text("#!/bin/sh\nexec sleep 3600\n")
    xe.chmod(0o755)
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\ndefaults: {timeout: 600}\ntargets:\n  - name: t1\n"
                    f"    pool: {{coordinator: xs1, connection: local, xe: {xe}}}\n"
                    "    wlb: {address: wlb.example.com, connection: local}\n"
                    "    certificate: {source: self-signed}\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "wlbplan", "plan", str(spec), "--timeout",
                           "1"], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "NO_COLOR": "1"})
    assert time.monotonic() - started < 15
    assert done.returncode == 1, done.stderr
    assert "is unreachable: " in done.stderr
    assert "did not finish within 1s" in done.stderr
