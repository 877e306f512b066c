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
from hostile import VALUES, in_one_name
from inprocess import unprintable_lines
from inprocess import wlbplan as run_inprocess

from wlbplan.lab import control, stunnel, xe_state
from wlbplan.model.names import file_name_problem

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


# ---- names the hosts list: every hostile value, through apply and plan (issue 10) ----------

@pytest.fixture(params=["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def folder_lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[control.Lab]:
    """Two pools on Citrix Hypervisor 8.2's xapi: pool-certificate-list lists the trust
    folder's files, so every name in it is the host's to choose."""
    made = control.up(tmp_path / "lab", targets=2, hosts=1, ssh=request.param == "ssh",
                      xapi="ch82")
    try:
        yield made
    finally:
        control.down(made.dir)


def _foreign_ca(name: str) -> bytes:
    from wlbplan.lab import pki

    return pki.build(f"Foreign CA {name[:40]}", key=pki.make_key("ec", 256), ca=True).cert_pem


def test_hostile_file_names_on_the_hosts_are_data(folder_lab: control.Lab,
                                                  tmp_path: Path) -> None:
    """Every corpus value as a file name (tests/hostile.py: the canary's path spelled by
    printf, a name holds no '/'): in pool1's trust folder the unsafe ones refuse that pool,
    by name; pool2's odd but safe ones (a leading '-', '--') are read as its trust, and
    its appliance's backups listing holds every value. apply, then plan, read them all;
    no name ever runs, no file is touched."""
    canary = tmp_path / "CANARY"
    names = [n for n in (in_one_name(v, canary) for v in VALUES) if n is not None]
    unsafe = [n for n in names if file_name_problem(n)]
    safe = [n for n in names if not file_name_problem(n)]
    assert len(unsafe) >= 50
    assert {"-.pem", "-rf.pem", "--help.pem"} <= set(safe)
    refused, kept = (xe_state.coordinator(folder_lab.layout(t)).certs_dir
                     for t in ("pool1", "pool2"))
    for name in unsafe:
        (refused / name).write_bytes(_foreign_ca(name))
    foreign = {name: _foreign_ca(name) for name in safe}
    for name, pem in foreign.items():
        (kept / name).write_bytes(pem)
    appliance = folder_lab.layout("pool2").certs_dir
    for name in names:
        (appliance / f"server.pem_orig{name}").write_bytes(b"not a certificate\n")

    planned = run_inprocess("plan", folder_lab.spec_path)
    applied = run_inprocess("apply", folder_lab.spec_path, "--auto-approve")
    for done in (planned, applied):
        assert done.code == 1, done.said
        assert "Traceback" not in done.err, done.said
        assert not unprintable_lines(done), unprintable_lines(done)
        assert "pool1: the coordinator lists a CA certificate named" in done.err, done.said
        assert "not a safe certificate name" in done.err, done.said
    # plan shows the other target's steps; apply applies them and reports pool1 (issue 9).
    assert "pool2.01.pool.install_ca" in planned.out, planned.said
    assert "\npool1: not applied: it could not be inspected" in applied.err, applied.said
    assert "\npool2: applied (" in applied.err, applied.said
    assert not canary.exists()
    assert {n: (kept / n).read_bytes() for n in safe} == foreign
    assert sorted(p.name for p in refused.iterdir()) == sorted(unsafe)
