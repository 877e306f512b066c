"""Audit JSON: the packaged schema describes it, counts agree, the verdict follows fail_on."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from audit_samples import (
    ACCEPT_VERIFY_OFF,
    LEFTOVER,
    NASTY,
    POOL1_SORTED,
    SPEC,
    UNREACHABLE_ERROR,
    VERIFY_OFF,
    accepted,
    clean,
    make_audit,
    sample,
    unreachable,
    warnings_only,
)

from wlbplan.core.findings import Audit, TargetAudit
from wlbplan.core.ignores import accept
from wlbplan.core.rules import CATALOGUE
from wlbplan.render import audit_json, render_audit

VALIDATOR = jsonschema.Draft202012Validator(audit_json.schema())


def doc_of(audit: Audit, **kwargs) -> dict:
    return json.loads(audit_json.render(audit, **kwargs))


def test_the_schema_is_a_valid_2020_12_schema_and_is_packaged() -> None:
    jsonschema.Draft202012Validator.check_schema(audit_json.schema())
    packaged = Path(audit_json.__file__).parent.parent / "schemas" / "audit.schema.json"
    assert json.loads(packaged.read_text("utf-8")) == audit_json.schema()
    assert audit_json.schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("make", [sample, clean, warnings_only, accepted])
@pytest.mark.parametrize("fail_on", ["error", "warning", "note", None])
def test_rendered_output_validates(make, fail_on) -> None:
    VALIDATOR.validate(doc_of(make(), fail_on=fail_on))


def test_document_head() -> None:
    doc = doc_of(sample())
    assert doc["format_version"] == "1.1"
    assert doc["tool"] == {"name": "wlbplan", "version": "0.1.0"}
    assert doc["spec"] == SPEC
    assert doc["created"] == "2025-01-31T09:30:00Z"
    assert doc["summary"] == {"error": 3, "warning": 2, "note": 1, "accepted": 0,
                              "targets": 3, "unreachable": 1}
    assert doc["general"] == []


def test_accepted_findings_stay_listed_marked_suppressed_and_are_not_counted() -> None:
    doc = doc_of(accepted(), fail_on="warning")
    VALIDATOR.validate(doc)
    assert doc["summary"] == {"error": 2, "warning": 1, "note": 2, "accepted": 2,
                              "targets": 3, "unreachable": 1}
    pool1, _, pool3 = doc["targets"]
    by_id = {f["rule_id"]: f for f in pool1["findings"]}
    assert by_id["WLB-POOL-VERIFY-OFF"]["suppressed"] is True
    assert by_id["WLB-POOL-VERIFY-OFF"]["acceptance"] == {
        "ignore": "WLB-POOL-VERIFY-OFF@2025-06-01",
        "reason": "lab pool <b>: verification | later", "until": "2025-06-01",
        "expired": False, "expired_on": None, "origin": "spec", "line": 4}
    assert by_id["WLB-CERT-EXPIRED"]["suppressed"] is False
    assert by_id["WLB-CERT-EXPIRED"]["acceptance"]["expired_on"] == "2025-01-31"
    assert by_id["WLB-KEY-PERMISSIONS"]["acceptance"] is None
    (down,) = pool3["findings"]
    assert down["suppressed"] is True
    assert down["acceptance"]["origin"] == "cli"
    assert down["acceptance"]["reason"] == ""
    (unused,) = doc["general"]
    assert (unused["rule_id"], unused["level"]) == ("WLB-IGNORE-UNUSED", "note")
    assert "WLB-IGNORE-UNUSED" in doc["rules"]


@pytest.mark.parametrize(("fail_on", "failed"), [("error", True), ("warning", True)])
def test_an_accepted_finding_does_not_make_the_document_fail(fail_on, failed) -> None:
    only = make_audit(TargetAudit("pool1", (VERIFY_OFF, LEFTOVER), 3))
    assert doc_of(only, fail_on="warning")["failed"] is True
    silenced = accept(only, [ACCEPT_VERIFY_OFF])
    assert doc_of(silenced, fail_on="warning")["failed"] is False
    assert doc_of(accepted(), fail_on=fail_on)["failed"] is failed  # KEY-PERMISSIONS stays


def test_a_suppressed_finding_must_carry_an_acceptance_in_force() -> None:
    doc = doc_of(accepted())
    finding = next(f for f in doc["targets"][0]["findings"] if f["suppressed"])
    finding["acceptance"]["expired"] = True
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(doc)


@pytest.mark.parametrize("make", [sample, accepted])
def test_summary_agrees_with_the_findings(make) -> None:
    doc = doc_of(make())
    every = [*(f for t in doc["targets"] for f in t["findings"]), *doc["general"]]
    levels = [f["level"] for f in every if not f["suppressed"]]
    for level in ("error", "warning", "note"):
        assert doc["summary"][level] == levels.count(level)
    assert doc["summary"]["accepted"] == sum(f["suppressed"] for f in every)


@pytest.mark.parametrize(("make", "fail_on", "failed"), [
    (sample, "error", True), (sample, None, False),
    (warnings_only, "error", False), (warnings_only, "warning", True),
    (warnings_only, "note", True), (clean, "note", False),
])
def test_failed_follows_fail_on(make, fail_on, failed) -> None:
    doc = doc_of(make(), fail_on=fail_on)
    assert doc["fail_on"] == (fail_on or "never")
    assert doc["failed"] is failed


def test_render_audit_passes_fail_on() -> None:
    assert json.loads(render_audit(warnings_only(), "json", fail_on="warning"))["failed"] is True
    assert json.loads(render_audit(warnings_only(), "json"))["failed"] is False


def test_targets_and_findings() -> None:
    audit = sample()
    pool1, pool2, pool3 = doc_of(audit)["targets"]
    assert [f["rule_id"] for f in pool1["findings"]] == list(POOL1_SORTED)
    assert (pool1["status"], pool1["error"], pool1["line"]) == ("audited", None, 3)
    assert (pool2["name"], pool2["findings"]) == ("pool_2", [])
    assert (pool3["status"], pool3["error"]) == ("unreachable", UNREACHABLE_ERROR)
    by_id = {f.rule_id: f for f in audit.findings}
    for item in pool1["findings"] + pool3["findings"]:
        finding = by_id[item["rule_id"]]
        assert item == {"rule_id": finding.rule_id, "level": finding.level,
                        "message": finding.message, "hint": finding.hint,
                        "about": finding.about, "spec_path": finding.spec_path,
                        "line": finding.line, "fingerprint": finding.fingerprint,
                        "suppressed": False, "acceptance": None}
    assert pool1["findings"][2]["message"] == NASTY  # JSON carries text as it is


def test_rules_are_those_that_appear_in_catalogue_order() -> None:
    rules = doc_of(sample())["rules"]
    appearing = {*POOL1_SORTED, "WLB-TARGET-UNREACHABLE"}
    assert list(rules) == [r for r in CATALOGUE if r in appearing]
    for rule_id, entry in rules.items():
        rule = CATALOGUE[rule_id]
        assert entry == {"level": rule.level, "title": rule.title, "help": rule.help}
    assert doc_of(clean())["rules"] == {}


@pytest.mark.parametrize("breakage", [
    lambda d: d.update(extra=1),
    lambda d: d["summary"].update(skipped=0),
    lambda d: d["targets"][0]["findings"][0].update(level="fatal"),
    lambda d: d["targets"][0]["findings"][0].update(fingerprint="xyz"),
    lambda d: d["targets"][0]["findings"][0].update(line=0),
    lambda d: d["targets"][0].update(status="unreachable"),  # without an error
    lambda d: d["targets"][2].update(error=None),
    lambda d: d["rules"].update({"lowercase-id": d["rules"]["WLB-CERT-EXPIRED"]}),
    lambda d: d.update(fail_on="fatal"),
    lambda d: d["tool"].update(name="other"),
])
def test_the_schema_rejects_what_the_renderer_never_writes(breakage) -> None:
    doc = copy.deepcopy(doc_of(sample()))
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(doc)


def test_empty_unreachable_error_still_validates() -> None:
    VALIDATOR.validate(doc_of(make_audit(unreachable("p", ""))))
