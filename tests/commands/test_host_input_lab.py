"""What a host says is input too (issue 16 #3, #14, #15): a CA certificate name that could
leave its folder, an xe that prints nothing, a key the appliance's stunnel cannot load.
Each refuses (or is reported for) that host, over both connectors; the other target goes
on. Run as an operator would: the CLI in a subprocess, on a real lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from wlbplan.lab import control, stunnel, xe_state

pytestmark = pytest.mark.lab

HOSTILE = "wlbplan-wlb-0/../../../../evil.pem"


def wlbplan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([sys.executable, "-m", "wlbplan", *map(str, args)],
                          capture_output=True, text=True, timeout=180, env=env, check=False)


def audit(spec: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """Exit code and each target's findings by rule id."""
    done = wlbplan("audit", spec, "--format", "json", "--fail-on", "never")
    document = json.loads(done.stdout)
    return done.returncode, {t["name"]: {f["rule_id"]: f for f in t["findings"]}
                             for t in document["targets"]}


@pytest.fixture(params=["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[control.Lab]:
    """Two targets, reached through the local connector or over SSH."""
    made = control.up(tmp_path / "lab", targets=2, hosts=2, ssh=request.param == "ssh")
    try:
        yield made
    finally:
        control.down(made.dir)


def _list_a_ca_named(lab: control.Lab, name: str) -> None:
    """The pool's certificate records list ``name``: what a tampered coordinator (or an
    old xapi reading its folder) can report; xapi's own install would refuse the name."""
    state_path = lab.layout("pool1").pool_state
    state = xe_state.load(state_path)
    state["ca_certificates"].append(name)
    xe_state.save(state_path, state)


def test_a_listed_name_that_leaves_its_folder_refuses_that_pool(lab: control.Lab) -> None:
    _list_a_ca_named(lab, HOSTILE)
    done = wlbplan("plan", lab.spec_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"pool1: the coordinator lists a CA certificate named {HOSTILE!r}" in done.stderr
    assert "not a safe certificate name" in done.stderr
    assert "pool.uninstall_ca" not in done.stdout
    assert "pool1.01" not in done.stdout
    assert "pool2.01.pool.install_ca" in done.stdout  # the other target is planned
    _, found = audit(lab.spec_path)
    unreachable = found["pool1"]["WLB-TARGET-UNREACHABLE"]
    assert "not a safe certificate name" in unreachable["message"]
    assert "WLB-POOL-VERIFY-OFF" in found["pool2"]


def test_an_xe_that_prints_nothing_refuses_that_pool(lab: control.Lab, tmp_path: Path) -> None:
    silent = tmp_path / "silent-xe"
    silent.write_text("#!/bin/sh\nexit 0\n")
    silent.chmod(0o755)
    data = yaml.safe_load(lab.spec_path.read_text())
    data["targets"][0]["pool"]["xe"] = str(silent)
    spec = tmp_path / "silent.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    done = wlbplan("plan", spec)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"pool1: the coordinator's '{silent}' printed nothing" in done.stderr
    assert "pool1.01" not in done.stdout  # no plan for a pool that is not there
    assert "pool2.01.pool.install_ca" in done.stdout  # the other target is planned
    _, found = audit(spec)
    assert set(found["pool1"]) == {"WLB-TARGET-UNREACHABLE"}
    assert "printed nothing" in found["pool1"]["WLB-TARGET-UNREACHABLE"]["message"]


def test_a_der_encoded_key_is_reported_before_the_next_restart(lab: control.Lab) -> None:
    layout = lab.layout("pool1")
    key = serialization.load_pem_private_key(layout.key.read_bytes(), password=None)
    layout.key.write_bytes(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    _, found = audit(lab.spec_path)
    finding = found["pool1"]["WLB-FILE-UNREADABLE"]
    assert finding["level"] == "error"
    assert "DER-encoded" in finding["message"]
    assert str(layout.key) in finding["message"]
    assert "PRIVATE" not in json.dumps(found)
    assert "WLB-FILE-UNREADABLE" not in found["pool2"]
    # What the finding warns of: the appliance's stunnel does not start with that key.
    assert stunnel.restart(layout).returncode != 0
