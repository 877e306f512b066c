"""Audit JSON: the packaged schema describes it, counts agree, the verdict follows fail_on."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from audit_samples import (
    NASTY,
    POOL1_SORTED,
    SPEC,
    UNREACHABLE_ERROR,
    clean,
    make_audit,
    sample,
    unreachable,
    warnings_only,
)

from wlbplan.core.findings import Audit
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


@pytest.mark.parametrize("make", [sample, clean, warnings_only])
@pytest.mark.parametrize("fail_on", ["error", "warning", "note", None])
def test_rendered_output_validates(make, fail_on) -> None:
    VALIDATOR.validate(doc_of(make(), fail_on=fail_on))


def test_document_head() -> None:
    doc = doc_of(sample())
    assert doc["format_version"] == "1.0"
    assert doc["tool"] == {"name": "wlbplan", "version": "0.1.0"}
    assert doc["spec"] == SPEC
    assert doc["created"] == "2025-01-31T09:30:00Z"
    assert doc["summary"] == {"error": 3, "warning": 2, "note": 1, "targets": 3,
                              "unreachable": 1}


def test_summary_agrees_with_the_findings() -> None:
    doc = doc_of(sample())
    levels = [f["level"] for t in doc["targets"] for f in t["findings"]]
    for level in ("error", "warning", "note"):
        assert doc["summary"][level] == levels.count(level)


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
                        "line": finding.line, "fingerprint": finding.fingerprint}
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
