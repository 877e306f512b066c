"""A pool that reaches WLB by IP: without credentials the plan leaves the reconnect as a
manual step and `wlbplan audit` keeps flagging it, run after run, until the pool is
reconnected by name (issue: CA-signed certificates, "audit keeps flagging it")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from calab import (
    FQDN,
    LabCA,
    ca_certificate,
    lock_dir,
    said,
    snapshot,
    snapshot_diff,
    verify_flag,
    wlbplan,
    write_spec,
)

from wlbplan.lab import control, faults

CREDS = {"username_env": "T_WLB_USER", "password_env": "T_WLB_PASS",
         "xenserver_username_env": "T_XS_USER", "xenserver_password_env": "T_XS_PASS"}


def findings(spec: Path) -> dict[str, dict[str, Any]]:
    result = wlbplan("audit", spec, "--format", "json")
    assert result.returncode in (0, 2), said(result)
    (target,) = json.loads(result.stdout)["targets"]
    return {f["rule_id"]: f for f in target["findings"]}


def test_by_ip_stays_flagged_until_reconnected(lab: control.Lab, ca: LabCA,
                                               tmp_path: Path) -> None:
    faults.inject(lab.dir, "by-ip")
    port = lab.targets[0].port
    # verify: false lets the chain be installed while the pool is still reached by IP.
    spec = write_spec(lab, tmp_path / "by-ip.yaml", ca_certificate(ca, tmp_path))
    data = yaml.safe_load(spec.read_text())
    data["targets"][0]["verify"] = False
    spec.write_text(yaml.safe_dump(data, sort_keys=False))

    for stage in ("request", "install"):
        applied = wlbplan("apply", spec, "--auto-approve")
        assert applied.returncode == 0, said(applied)
        if stage == "request":  # the request stage leaves a key waiting, and audit says so
            assert findings(spec)["WLB-REQUEST-PENDING"]["level"] == "note"
    plan = wlbplan("plan", spec)
    assert f"xe pool-initialize-wlb wlb_url={FQDN}:{port}" in plan.stdout, said(plan)

    for _ in range(2):  # a nightly audit says it every night, not once
        found = findings(spec)
        assert "WLB-REQUEST-PENDING" not in found  # installed: the key waits no more
        flagged = found["WLB-POOL-BY-IP"]
        assert flagged["level"] == "warning"
        assert "127.0.0.1" in flagged["message"]
        assert f"xe pool-initialize-wlb wlb_url={FQDN}:{port}" in flagged["hint"]
        assert flagged["line"] is not None

    # Asking for verification changes nothing on the pool: the plan refuses, audit says why.
    data["targets"][0]["verify"] = True
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = findings(spec)
    assert "WLB-POOL-BY-IP" in refused
    assert "reconnect the pool to WLB by its FQDN" in refused["WLB-SPEC-UNPLANNABLE"]["message"]
    assert verify_flag(lab) == "false"

    # With credentials, apply reconnects by name; the finding goes away.
    data["targets"][0]["wlb"]["credentials"] = CREDS
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    account = json.loads(lab.layout("pool1").wlb_accounts.read_text())
    env = {"T_WLB_USER": account["username"], "T_WLB_PASS": account["password"],
           "T_XS_USER": "root", "T_XS_PASS": "xs-secret"}
    applied = wlbplan("apply", spec, "--auto-approve", env=env)
    assert applied.returncode == 0, said(applied)
    assert verify_flag(lab) == "true"
    after = findings(spec)
    assert "WLB-POOL-BY-IP" not in after
    assert "WLB-POOL-REFUSES-WLB" not in after


def test_audit_changes_nothing_anywhere(lab: control.Lab, tmp_path: Path) -> None:
    """Read-only means it: every file of the appliance and of every pool host keeps its
    bytes and mode, no lock is taken, nothing is written beside the spec."""
    folder = tmp_path / "specs"
    folder.mkdir()
    spec = folder / "spec.yaml"
    spec.write_text(lab.spec_path.read_text())
    faults.inject(lab.dir, "key-mismatch")  # findings of every level to render
    before, locks = snapshot(lab), sorted(lock_dir(lab).rglob("*"))
    beside = sorted(folder.rglob("*"))
    for fmt in ("text", "json", "markdown", "sarif", "junit", "github"):
        result = wlbplan("audit", spec, "--format", fmt)
        assert result.returncode == 2, said(result)
        assert "PRIVATE" not in result.stdout + result.stderr
    assert snapshot_diff(before, snapshot(lab)) == []
    assert sorted(lock_dir(lab).rglob("*")) == locks
    assert sorted(folder.rglob("*")) == beside
