"""A plan over several pools gives every target its verdict, in every format: planned,
refused (the gate's reason) or unreachable (why), exit 1 when any failed, and no plan file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from wlbplan.lab import control, faults, record, xe_state

pytestmark = pytest.mark.lab
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json"


def wlbplan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wlbplan", *args], capture_output=True,
                          text=True, timeout=120, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pool1 plans; pool2 reaches WLB by IP with verify on and no credentials (refused);
    pool3's coordinator has no xe where the spec says (unreachable)."""
    folder = tmp_path_factory.mktemp("fleet")
    lab = control.up(folder / "lab", targets=3, hosts=1)
    try:
        faults.inject(lab.dir, "by-ip", "pool2")
        spec = yaml.safe_load(lab.spec_path.read_text())
        spec["targets"][2]["pool"]["xe"] = str(folder / "no-such-xe")
        path = lab.dir / "fleet.yaml"
        path.write_text(yaml.safe_dump(spec))
        yield path
    finally:
        control.down(lab.dir)


def test_text_shows_every_target_and_exits_1(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "tfplan"
    result = wlbplan("plan", str(fleet), "--out", str(out), "--detailed-exitcode")
    assert result.returncode == 1, result.stderr
    assert "Target pool1 (stage: trust)" in result.stdout
    assert "Target pool2: no plan: refused." in result.stdout
    assert "Target pool3: no plan: unreachable." in result.stdout
    assert "reconnect the pool to WLB by its FQDN" in result.stdout
    assert result.stdout.rstrip().endswith("pool2: refused. pool3: unreachable.")
    assert "pool2 (refused)" in result.stderr
    assert "pool3 (unreachable)" in result.stderr
    assert "--target pool1" in result.stderr
    assert "not saved" in result.stderr
    assert not out.exists()


def test_json_has_a_status_for_every_target_and_fits_the_schema(fleet: Path) -> None:
    result = wlbplan("plan", str(fleet), "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    seen = {t["name"]: (t["status"], bool(t["reason"])) for t in document["targets"]}
    assert seen == {"pool1": ("planned", False), "pool2": ("refused", True),
                    "pool3": ("unreachable", True)}


def test_markdown_names_every_target(fleet: Path) -> None:
    result = wlbplan("plan", str(fleet), "--format", "markdown")
    assert result.returncode == 1
    text = result.stdout
    assert text.startswith("**Plan:** ")
    assert "2 target(s) not planned" in text
    assert "**pool2**: no plan, refused: " in text
    assert "**pool3**: no plan, unreachable: " in text
    assert "<b>pool1</b>" in text


def test_leaving_the_failed_targets_out_plans_and_saves(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "tfplan"
    result = wlbplan("plan", str(fleet), "--target", "pool1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.exists()


def test_apply_stops_only_the_refused_target(fleet: Path) -> None:
    """The gate's refusal is pool2's verdict, not the apply's: pool1 is applied, pool3
    (unreachable) and pool2 are each listed with why, exit 1. Runs last on ``fleet``."""
    lab = record.load(fleet.parent)
    before = {n: xe_state.load(lab.layout(n).pool_state) for n in ("pool2", "pool3")}
    result = wlbplan("apply", str(fleet), "--auto-approve")
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert "Traceback" not in err
    assert re.search(r"^pool1: applied \(\d+ steps\)\.$", err, re.MULTILINE), err
    assert re.search(r"^pool2: not applied\.\n  cause: .*reconnect the pool to WLB by its "
                     r"FQDN", err, re.MULTILINE), err
    assert re.search(r"^pool3: not applied: it could not be inspected", err, re.MULTILINE)
    assert "Apply: 1 applied, 0 unchanged, 0 rolled back, 0 rollback incomplete, " \
           "1 not started, 1 unreachable." in err
    assert {n: xe_state.load(lab.layout(n).pool_state) for n in before} == before
    assert xe_state.load(lab.layout("pool1").pool_state)["pool"]["wlb-verify-cert"]


@pytest.fixture
def blocked(tmp_path: Path) -> Iterator[control.Lab]:
    lab = control.up(tmp_path / "lab", targets=1, hosts=1)
    try:
        yield lab
    finally:
        control.down(lab.dir)


def test_plan_says_what_stands_in_the_way_in_the_audits_words(blocked: control.Lab) -> None:
    """A held lock, a leftover journal and a key that does not match its certificate: the
    plan names each, with the same rule ids and messages as audit."""
    spec = str(blocked.spec_path)
    faults.inject(blocked.dir, "key-mismatch", "pool1")
    lock = Path(yaml.safe_load(blocked.spec_path.read_text())["targets"][0]["pool"]["state_dir"])
    lock.mkdir(parents=True, exist_ok=True)
    (lock / "apply.lock").write_text(json.dumps(
        {"id": "0f0f", "owner": "ops@elsewhere", "pid": 1, "created": "2026-01-01T00:00:00Z",
         "target": "pool1"}))
    journal = blocked.spec_path.parent / ".wlbplan" / "pool1" / "journal.jsonl"
    journal.parent.mkdir(parents=True)
    journal.write_text(json.dumps({"event": "begin", "time": "2026-01-01T00:00:00Z",
                                   "target": "pool1", "pid": 1, "host": "elsewhere"}) + "\n")

    plan = wlbplan("plan", spec)
    audit = wlbplan("audit", spec, "--format", "json")
    assert "Stands in the way of an apply:" in plan.stdout
    findings = {f["rule_id"]: f["message"] for t in json.loads(audit.stdout)["targets"]
                for f in t["findings"]}
    for rule in ("WLB-POOL-LOCKED", "WLB-KEY-MISMATCH"):
        assert f"{rule}: {findings[rule]}" in " ".join(plan.stdout.split()), plan.stdout
    assert "did not finish" in plan.stdout
    assert "wlbplan rollback" in plan.stdout

    as_json = json.loads(wlbplan("plan", spec, "--format", "json").stdout)
    jsonschema.validate(as_json, json.loads(SCHEMA.read_text()))
    assert len(as_json["targets"][0]["blockers"]) == 3
    markdown = wlbplan("plan", spec, "--format", "markdown").stdout
    assert "An apply would refuse or fail" in markdown


def test_stunnel_conf_is_read_and_other_files_are_said(blocked: control.Lab,
                                                        tmp_path: Path) -> None:
    """wlb.stunnel_conf is read: the lab's own names wlb.paths (no finding); a spec whose
    paths are other files than stunnel loads gets an error in audit and a plan blocker."""
    spec = str(blocked.spec_path)
    clean = json.loads(wlbplan("audit", spec, "--format", "json").stdout)
    rules = {f["rule_id"] for t in clean["targets"] for f in t["findings"]}
    assert "WLB-STUNNEL-CONF-MISMATCH" not in rules

    data = yaml.safe_load(blocked.spec_path.read_text())
    paths = data["targets"][0]["wlb"]["paths"]
    for key in ("cert", "key"):
        copy = tmp_path / Path(paths[key]).name
        copy.write_bytes(Path(paths[key]).read_bytes())
        copy.chmod(0o600)
        paths[key] = str(copy)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data))
    audit = json.loads(wlbplan("audit", str(other), "--format", "json").stdout)
    said = {f["rule_id"]: f["message"] for t in audit["targets"] for f in t["findings"]}
    assert "WLB-STUNNEL-CONF-MISMATCH" in said, said
    assert str(tmp_path / "server.pem") in said["WLB-STUNNEL-CONF-MISMATCH"]
    plan = wlbplan("plan", str(other))
    assert "WLB-STUNNEL-CONF-MISMATCH" in plan.stdout


def test_an_appliance_not_serving_is_said_in_plain_words(blocked: control.Lab) -> None:
    faults.inject(blocked.dir, "restart-fails")
    subprocess.run([str(blocked.layout("pool1").restart)], capture_output=True, check=False)
    plan = wlbplan("plan", str(blocked.spec_path))
    port = blocked.targets[0].port
    assert (f"WLB-APPLIANCE-NOT-SERVING: no TLS handshake on port {port}: no certificate "
            "served: nothing listens on the port (connection refused)") in plan.stdout
    assert ":error:" not in plan.stdout + plan.stderr  # never OpenSSL's raw lines
