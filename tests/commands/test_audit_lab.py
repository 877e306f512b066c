"""``wlbplan audit`` on a real lab, as a nightly job runs it (subprocess): exit codes,
every output format, the faults operators meet, an unreachable target, both connectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pool_connectors import OVER_BOTH, forwarded, up, use_logins

from wlbplan.lab import control, faults

pytestmark = pytest.mark.lab

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "audit.schema.json"


def wlbplan(*args: str | Path, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **forwarded()}
    return subprocess.run([sys.executable, "-m", "wlbplan", *map(str, args)],
                          capture_output=True, text=True, timeout=180, cwd=cwd,
                          env={**base, **(env or {})})


def audit_json(spec: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = wlbplan("audit", spec, "--format", "json", *args)
    assert result.returncode in (0, 1, 2), result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    return result.returncode, document


def rules_of(document: dict[str, Any], target: str) -> dict[str, str]:
    (found,) = [t for t in document["targets"] if t["name"] == target]
    return {f["rule_id"]: f["level"] for f in found["findings"]}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    """Two targets as a new lab starts: self-signed appliances, verification off."""
    made = control.up(tmp_path_factory.mktemp("audit") / "lab", targets=2, hosts=2)
    yield made
    control.down(made.dir)


@pytest.fixture
def applied(tmp_path: Path, pool_connector: str) -> Iterator[control.Lab]:
    """One target after `wlbplan apply`: trusted and verified; its pool reached by
    ``pool_connector``."""
    made = up(tmp_path / "lab", pool_connector, hosts=2)
    try:
        with pytest.MonkeyPatch.context() as env:
            use_logins(made, env)
            done = wlbplan("apply", made.spec_path, "--auto-approve")
            assert done.returncode == 0, done.stdout + done.stderr
            yield made
    finally:
        control.down(made.dir)


# ------------------------------------------------------------------ a fresh lab


def test_fresh_lab_has_warnings_and_exits_by_fail_on(fresh: control.Lab) -> None:
    default = wlbplan("audit", fresh.spec_path)
    assert default.returncode == 0, default.stdout + default.stderr  # --fail-on error
    assert "WLB-POOL-VERIFY-OFF" in default.stdout
    strict = wlbplan("audit", fresh.spec_path, "--fail-on", "warning")
    assert strict.returncode == 2, strict.stderr
    assert strict.stdout == default.stdout
    never = wlbplan("audit", fresh.spec_path, "--fail-on", "never")
    assert never.returncode == 0


def test_json_names_the_same_findings_on_every_target(fresh: control.Lab) -> None:
    code, document = audit_json(fresh.spec_path)
    assert code == 0
    for name in ("pool1", "pool2"):
        assert rules_of(document, name) == {
            "WLB-POOL-VERIFY-OFF": "warning",
            "WLB-CERT-SELF-SIGNED-CA": "warning",
            "WLB-SPEC-DRIFT": "warning",
        }
    assert document["summary"]["warning"] == 6


def test_accepting_a_fresh_labs_warnings_in_the_spec(fresh: control.Lab) -> None:
    """What a new lab shows, accepted in the spec (fleet-wide) and on the command line
    (one target): nothing fails --fail-on warning, every report still lists it."""
    data = yaml.safe_load(fresh.spec_path.read_text())
    data["audit"] = {"ignore": [
        {"rule": "WLB-POOL-VERIFY-OFF", "reason": "turned on by the next apply"},
        {"rule": "WLB-CERT-SELF-SIGNED-CA", "until": "2999-12-31", "reason": "lab"}]}
    spec = fresh.spec_path.with_name("accepting.yaml")
    spec.write_text(yaml.safe_dump(data))
    code, document = audit_json(spec, "--fail-on", "warning", "--ignore",
                                "WLB-SPEC-DRIFT:pool1", "--ignore", "WLB-SPEC-DRIFT:pool2")
    assert code == 0
    assert document["summary"] | {"accepted": 6} == document["summary"]
    assert (document["summary"]["warning"], document["general"]) == (0, [])
    found = [f for t in document["targets"] for f in t["findings"]]
    assert len(found) == 6
    assert all(f["suppressed"] for f in found)


def test_target_option_audits_one(fresh: control.Lab) -> None:
    _, document = audit_json(fresh.spec_path, "--target", "pool2")
    assert [t["name"] for t in document["targets"]] == ["pool2"]


def test_sarif_points_at_the_spec(fresh: control.Lab) -> None:
    result = wlbplan("audit", fresh.spec_path.name, "--format", "sarif",
                     cwd=fresh.spec_path.parent)
    assert result.returncode == 0, result.stderr
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert len(results) == 6
    spec_lines = fresh.spec_path.read_text().splitlines()
    for item in results:
        location = item["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == fresh.spec_path.name
        line = spec_lines[location["region"]["startLine"] - 1]
        assert line.strip(), "a finding points at a blank line"


def test_junit_has_a_suite_per_target(fresh: control.Lab) -> None:
    result = wlbplan("audit", fresh.spec_path, "--format", "junit", "--fail-on", "warning")
    assert result.returncode == 2
    suites = ET.fromstring(result.stdout).findall("testsuite")
    assert [s.get("name") for s in suites] == ["pool1", "pool2"]
    failed = {c.get("name") for c in suites[0].iter("testcase") if c.find("failure") is not None}
    assert failed == {"WLB-POOL-VERIFY-OFF", "WLB-CERT-SELF-SIGNED-CA", "WLB-SPEC-DRIFT"}


def test_github_annotations_and_job_summary(fresh: control.Lab, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = wlbplan("audit", fresh.spec_path, "--format", "github",
                     env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert all(line.startswith("::warning file=") for line in lines)
    assert summary.read_text().startswith("**Audit:**")


def test_markdown_starts_with_the_result(fresh: control.Lab) -> None:
    result = wlbplan("audit", fresh.spec_path, "--format", "markdown")
    assert result.stdout.startswith("**Audit:**")


# --------------------------------------------------------- after apply, and faults


@OVER_BOTH
def test_after_apply_only_the_self_signed_warning_remains(applied: control.Lab) -> None:
    code, document = audit_json(applied.spec_path, "--fail-on", "warning")
    assert rules_of(document, "pool1") == {"WLB-CERT-SELF-SIGNED-CA": "warning"}
    assert code == 2


@pytest.mark.connectors(xenapi_not={"fault": "key-mismatch"},
                        why="the appliance's key alone: the pool plays no part")
@pytest.mark.parametrize(("fault", "expected"), [
    ("expire", {"WLB-CERT-EXPIRED", "WLB-POOL-REFUSES-WLB"}),
    ("cn-mismatch", {"WLB-POOL-REFUSES-WLB"}),
    ("key-mismatch", {"WLB-KEY-MISMATCH"}),
    ("by-ip", {"WLB-POOL-BY-IP", "WLB-POOL-REFUSES-WLB"}),
])
def test_a_fault_is_an_error_finding(applied: control.Lab, fault: str,
                                     expected: set[str]) -> None:
    faults.inject(applied.dir, fault)
    code, document = audit_json(applied.spec_path)
    found = rules_of(document, "pool1")
    assert expected <= set(found), found
    assert code == 2
    assert "PRIVATE" not in json.dumps(document)


def test_unreachable_target_exits_1_and_reports_the_rest(fresh: control.Lab,
                                                          tmp_path: Path) -> None:
    data = yaml.safe_load(fresh.spec_path.read_text())
    data["targets"][1]["pool"]["xe"] = str(tmp_path / "no-such-xe")
    spec = tmp_path / "broken.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    result = wlbplan("audit", spec, "--format", "json")
    assert result.returncode == 1
    assert "could not audit pool2" in result.stderr
    document = json.loads(result.stdout)
    assert rules_of(document, "pool2") == {"WLB-TARGET-UNREACHABLE": "error"}
    assert "WLB-POOL-VERIFY-OFF" in rules_of(document, "pool1")
    assert document["summary"]["unreachable"] == 1


# ------------------------------------------------------------------ over SSH


@pytest.mark.ssh
def test_audit_over_ssh_matches_local(tmp_path: Path) -> None:
    made = control.up(tmp_path / "lab", hosts=1, ssh=True)
    try:
        _, over_ssh = audit_json(made.spec_path)
        local = control.up(tmp_path / "local", hosts=1)
        try:
            _, here = audit_json(local.spec_path)
        finally:
            control.down(local.dir)
    finally:
        control.down(made.dir)
    assert rules_of(over_ssh, "pool1") == rules_of(here, "pool1")


def test_one_run_writes_several_reports(fresh: control.Lab, tmp_path: Path) -> None:
    sarif, junit = tmp_path / "audit.sarif", tmp_path / "audit.xml"
    result = wlbplan("audit", fresh.spec_path, "--report", f"sarif={sarif}",
                     "--report", f"junit={junit}", "--fail-on", "warning")
    assert result.returncode == 2, result.stderr
    assert result.stdout.rstrip().endswith("on 2 targets.")  # text on stdout, as asked
    assert len(json.loads(sarif.read_text())["runs"][0]["results"]) == 6
    failures = ET.fromstring(junit.read_text()).get("failures")
    assert failures == "6"
    assert f"Wrote {sarif}." in result.stderr


@pytest.mark.parametrize("bad", ["sarif", "pdf=out.pdf", "sarif="])
def test_bad_report_option_is_a_usage_error(fresh: control.Lab, bad: str) -> None:
    result = wlbplan("audit", fresh.spec_path, "--report", bad)
    assert result.returncode == 1
    assert "FORMAT=FILE" in result.stderr
    assert result.stdout == ""


def test_a_held_apply_lock_is_flagged_until_released(fresh: control.Lab) -> None:
    from wlbplan.run import lock
    from wlbplan.run.sessions import open_sessions
    from wlbplan.spec import load_spec

    spec = load_spec(fresh.spec_path)
    target = spec.target("pool1")
    with open_sessions(spec, target) as sessions:
        held = lock.acquire(sessions.pool, target)  # as a dead apply leaves it
        try:
            _, document = audit_json(fresh.spec_path)
        finally:
            assert lock.release(sessions.pool, target, held.id)
    (finding,) = [f for t in document["targets"] if t["name"] == "pool1"
                  for f in t["findings"] if f["rule_id"] == "WLB-POOL-LOCKED"]
    assert held.id in finding["message"]
    assert "WLB-POOL-LOCKED" not in rules_of(document, "pool2")
    _, after = audit_json(fresh.spec_path)
    assert "WLB-POOL-LOCKED" not in rules_of(after, "pool1")
