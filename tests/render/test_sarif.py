"""SARIF for GitHub code scanning: the whole catalogue as rules, one result per finding
pointing at the spec line, stable fingerprints, and URIs relative to the checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_samples import (
    EXPIRED,
    KEY_MODE,
    LEFTOVER,
    NASTY,
    NASTY_HINT,
    SPEC,
    clean,
    make_audit,
    sample,
)

from wlbplan.core.findings import Audit, Finding, TargetAudit
from wlbplan.core.rules import CATALOGUE
from wlbplan.render import render_audit, sarif

BASE = Path("/work/repo")
LEVELS = {"error", "warning", "note"}


def run_of(audit: Audit, base: Path = BASE) -> dict:
    doc = json.loads(sarif.render(audit, base=base))
    assert len(doc["runs"]) == 1
    return doc["runs"][0]


def result_for(run: dict, finding: Finding) -> dict:
    fp = finding.fingerprint
    return next(r for r in run["results"] if r["partialFingerprints"]["wlbplanFinding/v1"] == fp)


def test_log_head() -> None:
    doc = json.loads(sarif.render(sample(), base=BASE))
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    driver = doc["runs"][0]["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("wlbplan", "0.1.0")
    assert driver["informationUri"] == "https://github.com/wlbplan/wlbplan"


SCORES = {"error": "7.5", "warning": "5.0", "note": "2.0"}  # high, medium, low on GitHub


def test_driver_lists_every_rule_in_catalogue_order() -> None:
    rules = run_of(clean())["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CATALOGUE)
    for entry in rules:
        rule = CATALOGUE[entry["id"]]
        assert entry == {
            "id": rule.id, "name": rule.name,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.help}, "help": {"text": rule.help},
            "defaultConfiguration": {"level": rule.level},
            "properties": {"tags": ["security"], "security-severity": SCORES[rule.level]},
        }
    assert rules[0]["name"] == "WlbTargetUnreachable"


def test_results_match_the_findings_one_to_one() -> None:
    audit = sample()
    run = run_of(audit)
    results = run["results"]
    assert len(results) == len(audit.findings) == 6
    rules = run["tool"]["driver"]["rules"]
    for result in results:
        # The focused checks of the SARIF 2.1.0 schema this output relies on.
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in LEVELS
        assert result["message"]["text"]
        assert len(result["locations"]) == 1
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert physical.get("region", {"startLine": 1})["startLine"] >= 1
        assert set(result["partialFingerprints"]) == {"wlbplanFinding/v1"}
    assert {r["partialFingerprints"]["wlbplanFinding/v1"] for r in results} == {
        f.fingerprint for f in audit.findings}


def test_levels_follow_the_findings_not_the_rule_defaults() -> None:
    lowered = Finding("WLB-POOL-VERIFY-OFF", "note", "pool1", "verify: false in the spec")
    run = run_of(make_audit(TargetAudit("pool1", (lowered,))))
    assert run["results"][0]["level"] == "note"
    index = run["results"][0]["ruleIndex"]
    assert run["tool"]["driver"]["rules"][index]["defaultConfiguration"]["level"] == "warning"


def test_result_message_location_and_properties() -> None:
    run = run_of(sample())
    result = result_for(run, EXPIRED)
    assert result["ruleId"] == "WLB-CERT-EXPIRED"
    assert result["ruleIndex"] == list(CATALOGUE).index("WLB-CERT-EXPIRED")
    assert result["message"] == {"text": "CN=wlb.example.com expired on 2025-01-01 — renew it"}
    assert result["locations"] == [{"physicalLocation": {
        "artifactLocation": {"uri": SPEC, "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 12}}}]
    assert result["properties"] == {"target": "pool1", "about": "CN=wlb.example.com",
                                    "specPath": "targets[0].certificate"}
    assert result_for(run, KEY_MODE)["message"] == {"text": KEY_MODE.message}  # no hint


def test_message_text_is_carried_as_is_on_one_line() -> None:
    expiring = next(r for r in run_of(sample())["results"] if r["ruleId"] == "WLB-CERT-EXPIRING")
    assert expiring["message"]["text"] == f"{NASTY} — {NASTY_HINT}".replace("\n", "\\n")


def test_region_is_left_out_without_a_usable_line() -> None:
    run = run_of(sample())
    assert "region" not in result_for(run, LEFTOVER)["locations"][0]["physicalLocation"]
    zero = Finding("WLB-POOL-NO-WLB", "warning", "p", "m", line=0)
    result = run_of(make_audit(TargetAudit("p", (zero,))))["results"][0]
    assert "region" not in result["locations"][0]["physicalLocation"]


def test_fingerprints_are_stable_across_renders() -> None:
    first = [r["partialFingerprints"] for r in run_of(sample())["results"]]
    again = [r["partialFingerprints"] for r in run_of(sample(), Path("/elsewhere"))["results"]]
    assert first == again


def test_results_are_in_target_order_worst_first() -> None:
    ids = [(r["properties"]["target"], r["ruleId"]) for r in run_of(sample())["results"]]
    assert ids == [("pool1", "WLB-CERT-EXPIRED"), ("pool1", "WLB-KEY-PERMISSIONS"),
                   ("pool1", "WLB-CERT-EXPIRING"), ("pool1", "WLB-POOL-VERIFY-OFF"),
                   ("pool1", "WLB-TRUST-LEFTOVER"), ("pool3", "WLB-TARGET-UNREACHABLE")]


def test_execution_is_unsuccessful_when_a_target_was_not_inspected() -> None:
    assert run_of(sample())["invocations"] == [{"executionSuccessful": False}]
    assert run_of(clean())["invocations"] == [{"executionSuccessful": True}]
    assert run_of(clean())["results"] == []


@pytest.mark.parametrize(("given", "expected"), [
    ("specs/prod.yaml", {"uri": "specs/prod.yaml", "uriBaseId": "%SRCROOT%"}),
    ("./specs/../prod.yaml", {"uri": "prod.yaml", "uriBaseId": "%SRCROOT%"}),
    ("/work/repo/specs/prod.yaml", {"uri": "specs/prod.yaml", "uriBaseId": "%SRCROOT%"}),
    ("/etc/wlbplan/prod.yaml", {"uri": "file:///etc/wlbplan/prod.yaml"}),
    ("../other/prod.yaml", {"uri": "file:///work/other/prod.yaml"}),
    ("/work/repository/prod.yaml", {"uri": "file:///work/repository/prod.yaml"}),
    ("my specs/prod 100%.yaml", {"uri": "my%20specs/prod%20100%25.yaml",
                                 "uriBaseId": "%SRCROOT%"}),
])
def test_artifact_location(given: str, expected: dict) -> None:
    assert sarif.artifact_location(given, BASE) == expected


def test_default_base_is_the_current_directory(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    audit = make_audit(TargetAudit("p", (EXPIRED,)), spec=str(tmp_path / "s" / "a.yaml"))
    location = json.loads(render_audit(audit, "sarif"))["runs"][0]["results"][0]["locations"]
    assert location[0]["physicalLocation"]["artifactLocation"] == {
        "uri": "s/a.yaml", "uriBaseId": "%SRCROOT%"}


def test_a_rule_missing_from_the_catalogue_gets_no_index() -> None:
    odd = Finding("WLB-NOT-A-RULE", "warning", "p", "m")
    result = run_of(make_audit(TargetAudit("p", (odd,))))["results"][0]
    assert result["ruleId"] == "WLB-NOT-A-RULE"
    assert "ruleIndex" not in result
