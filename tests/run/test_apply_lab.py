"""`wlbplan apply` end to end on the real lab, as an operator runs it (subprocess), over
both connectors: what the pool and the appliance hold afterwards is read from the lab
itself (its xe, its files, a TLS handshake), never from wlbplan's own report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from applylab import (
    TARGET,
    Children,
    assert_applied,
    assert_restored,
    before,
    ca_names,
    check_undo_order,
    finish,
    fresh_plan_actions,
    history,
    host_layouts,
    install_foreign_ca,
    journal_path,
    lock_file,
    no_key_material,
    prepare_rotation,
    running_lab,
    snapshot,
    snapshot_diff,
    state_dir,
    verify_flag,
    wlbplan,
)
from pool_connectors import OVER_BOTH

from wlbplan.lab import control

pytestmark = pytest.mark.lab


def _apply_end_to_end(lab: control.Lab, *, twice: bool = True) -> None:
    spec = str(lab.spec_path)
    assert verify_flag(lab) == "false"
    result = wlbplan("apply", spec, "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert_applied(lab)
    # The journal of a finished apply is archived as applied; nothing is left behind.
    assert not journal_path(state_dir(lab)).exists()
    archived = history(state_dir(lab))
    assert [p.name.endswith("-applied.jsonl") for p in archived] == [True]
    no_key_material(result.stdout, result.stderr, archived[0].read_text())

    planned = wlbplan("plan", spec, "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes." in planned.stdout

    if not twice:
        return
    # Applying again is a no-op that changes nothing and exits 0.
    settled = snapshot(lab)
    again = wlbplan("apply", spec, "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not snapshot_diff(settled, snapshot(lab))
    assert not lock_file(lab).exists()


# The pool paths also run on Citrix Hypervisor 8.2 (xapi 1.249): only the older CA
# certificate commands, leaf-in-bundle verification.
POOL_LINES = pytest.mark.parametrize("lab", ["current", "ch82"], indirect=True)


@POOL_LINES
def test_apply_end_to_end_local(lab: control.Lab) -> None:
    planned = wlbplan("plan", str(lab.spec_path))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    offered = {"current": ("pool-install-ca-certificate", "pool-uninstall-ca-certificate"),
               "ch82": ("pool-certificate-install", "pool-certificate-uninstall")}[lab.xapi]
    shown = " ".join(planned.stdout.split())
    assert all(f" {command} " in shown for command in offered), planned.stdout
    _apply_end_to_end(lab)


@pytest.fixture
def ssh_lab(tmp_path: Path) -> Iterator[control.Lab]:
    try:
        from wlbplan.lab import sshd

        sshd.sshd_binary()
    except Exception as err:  # openssh-server missing
        pytest.skip(f"no sshd: {err}")
    with running_lab(tmp_path / "lab", hosts=2, ssh=True) as made:
        yield made


@pytest.mark.ssh
def test_apply_end_to_end_over_ssh(ssh_lab: control.Lab) -> None:
    text = ssh_lab.spec_path.read_text()
    assert "connection: ssh" in text
    assert "connection: local" not in text
    _apply_end_to_end(ssh_lab, twice=False)


@pytest.mark.ssh
def test_rollback_over_ssh_after_a_crash(ssh_lab: control.Lab, children: Children) -> None:
    """The crash-and-recover cycle over SSH: the lock lives on the coordinator."""
    was = before(ssh_lab)
    spec = str(ssh_lab.spec_path)
    proc = children.hooked({"on": "apply_complete", "step": 2, "do": "sigkill"},
                           "apply", spec, "--auto-approve")
    code, _, err = finish(proc)
    assert code == -9, err
    assert lock_file(ssh_lab).exists()
    back = wlbplan("rollback", spec, "--target", TARGET)
    assert back.returncode == 0, back.stdout + back.stderr
    assert_restored(ssh_lab, was, state_dir(ssh_lab))


def test_apply_without_auto_approve_refuses_when_stdin_is_not_a_tty(lab: control.Lab) -> None:
    was = before(lab)
    result = wlbplan("apply", str(lab.spec_path))  # stdin is a pipe, not a terminal
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--auto-approve" in result.stderr
    assert "stdin is not a terminal" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Plan: 1 to add, 1 to change, 0 to remove." in result.stdout  # shown, not applied
    assert_restored(lab, was, None)
    assert not state_dir(lab).exists() or not any(state_dir(lab).rglob("*.jsonl"))


def test_json_output_streams_one_object_per_line(lab: control.Lab) -> None:
    result = wlbplan("apply", str(lab.spec_path), "--auto-approve", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    records = [json.loads(line) for line in lines]  # every stdout line is one object
    assert all(isinstance(r, dict) for r in records)
    for record in records:
        for key in ("@level", "@message", "@timestamp", "type"):
            assert key in record, record
        assert record["@level"] in ("info", "warn", "error"), record
        stamp = dt.datetime.fromisoformat(record["@timestamp"].replace("Z", "+00:00"))
        assert stamp.tzinfo is not None
    assert records[0]["type"] == "version"
    assert records[-1]["type"] == "summary"
    assert records[-1]["targets"][0]["status"] == "applied"
    starts = [r["step"] for r in records if r["type"] == "apply_start"]
    completes = [r["step"] for r in records if r["type"] == "apply_complete"]
    assert starts == completes
    assert [int(s.split(".")[1]) for s in starts] == list(range(1, len(starts) + 1))
    assert len(starts) == len(fresh_plan_actions())
    assert records[1]["type"] == "apply_start"
    assert not any(r["@level"] == "error" for r in records)
    no_key_material(result.stdout, result.stderr)
    assert_applied(lab)


def test_json_output_of_a_failed_apply_reports_the_rollback(lab: control.Lab,
                                                            children: Children) -> None:
    was = before(lab)
    proc = children.hooked({"on": "apply_start", "step": 4, "do": "fail"},
                           "apply", str(lab.spec_path), "--auto-approve", "--format", "json")
    code, out, err = finish(proc)
    assert code == 1, err
    records = [json.loads(line) for line in out.splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds[0] == "version"
    assert kinds[-1] == "summary"
    assert "apply_errored" not in kinds or records[kinds.index("apply_errored")]["@level"] == \
        "error"
    assert "rollback_start" in kinds
    journal = check_undo_order(state_dir(lab), None)
    expected = [f"{TARGET}.{r['index']:02d}.{r['action']}" for r in reversed(journal)
                if r["event"] == "step" and r["undo"] is not None]
    undone = [r["message"].split(":")[0] for r in records if r["type"] == "rollback_complete"]
    assert undone == expected
    assert len(undone) >= 2
    summary = records[-1]["targets"][0]
    assert summary["status"] == "rolled_back"
    assert "injected failure" in summary["error"]
    assert summary["state_now"].startswith("wlb-verify-cert=false")
    no_key_material(out, err)
    assert_restored(lab, was, state_dir(lab))


def test_a_failing_target_leaves_the_others_alone(tmp_path: Path, children: Children) -> None:
    """Two pools applied in parallel: pool1 fails and is rolled back, pool2 is applied."""
    with running_lab(tmp_path / "lab", targets=2, hosts=2) as lab:
        was = before(lab, "pool1")
        proc = children.hooked({"on": "apply_start", "step": 3, "do": "fail", "target": "pool1"},
                               "apply", str(lab.spec_path), "--auto-approve")
        code, _, err = finish(proc)
        assert code == 1, err
        assert "Apply: 1 applied, 0 unchanged, 1 rolled back" in err
        assert "pool1: FAILED and rolled back" in err
        assert "pool2: applied" in err
        assert_restored(lab, was, state_dir(lab), "pool1")
        assert_applied(lab, "pool2")


@OVER_BOTH
@POOL_LINES
def test_foreign_ca_survives_apply_and_rollback(lab: control.Lab, tmp_path: Path,
                                                children: Children) -> None:
    """wlbplan only removes trust it installed: someone else's CA stays, byte for byte, on
    every host through a rolled-back apply and a successful one."""
    install_foreign_ca(lab, tmp_path, "corp-root.pem")
    held = {h.root.name: (h.certs_dir / "corp-root.pem").read_bytes() for h in host_layouts(lab)}
    assert len(held) == 2
    was = before(lab)
    proc = children.hooked({"on": "apply_complete", "step": 5, "do": "fail"},
                           "apply", str(lab.spec_path), "--auto-approve")
    code, _, err = finish(proc)
    assert code == 1, err
    assert_restored(lab, was, state_dir(lab))
    result = wlbplan("apply", str(lab.spec_path), "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_applied(lab)
    assert "corp-root.pem" in ca_names(lab)
    for host in host_layouts(lab):
        assert (host.certs_dir / "corp-root.pem").read_bytes() == held[host.root.name]
        assert held[host.root.name] in host.bundle.read_bytes()
    planned = wlbplan("plan", str(lab.spec_path), "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout
    # No removal (over XenAPI a warning bullet names it: known by name alone).
    assert "corp-root.pem" not in "".join(
        line for line in planned.stdout.splitlines() if line.lstrip().startswith("- pool."))


def test_ca_signed_rotation_plans_when_wlbplan_trust_is_the_only_one(lab: control.Lab,
                                                                      tmp_path: Path) -> None:
    """Regression: DeepDiff once saw the whole trust set replaced (self-signed → CA-signed
    with no other CA) and wlbplan.core.diff crashed (exit 3) instead of planning."""
    spec = prepare_rotation(lab, tmp_path, foreign=False)
    result = wlbplan("plan", str(spec), "--detailed-exitcode")
    assert "Internal error" not in result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pool.uninstall_ca" in result.stdout


class NotLast(AssertionError):
    """The summary is not the last JSON record."""


def test_json_output_of_a_request_stage_ends_with_the_summary(lab: control.Lab,
                                                              tmp_path: Path) -> None:
    from applylab import write_spec

    fqdn = lab.target(TARGET).fqdn
    spec = write_spec(lab, tmp_path / "request.yaml", {"source": "ca-signed", "request": {
        "common_name": fqdn, "alt_names": [f"DNS:{fqdn}"], "key": {"type": "rsa", "bits": 2048},
        "csr_out": str(tmp_path / "pool1.csr")}})
    result = wlbplan("apply", str(spec), "--auto-approve", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    no_key_material(result.stdout, result.stderr)
    assert records[0]["type"] == "version"
    assert "summary" in [r["type"] for r in records]
    if records[-1]["type"] != "summary":
        raise NotLast([r["type"] for r in records])
