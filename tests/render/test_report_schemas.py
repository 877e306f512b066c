"""SARIF and JUnit outputs checked against the published schemas (tests/data/schemas: the
OASIS SARIF 2.1.0 schema and Jenkins' junit-10.xsd, with their licences), for a plain
audit, one with accepted findings and a 200-target fleet."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from audit_samples import accepted, clean, fleet, make_audit, sample
from lxml import etree

from wlbplan.core.findings import Audit
from wlbplan.core.ignores import accept
from wlbplan.model.ignore import Ignore
from wlbplan.render import junit, sarif

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "schemas"
SARIF = jsonschema.Draft4Validator(
    json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text("utf-8")))
JUNIT = etree.XMLSchema(etree.parse(str(SCHEMAS / "junit-10.xsd")))


def big_fleet() -> Audit:
    return accept(make_audit(*fleet(200)), [Ignore("WLB-CERT-NO-SAN", reason="replaced in Q3"),
                                           Ignore("WLB-KEY-MISMATCH")])


AUDITS: list[Callable[[], Audit]] = [sample, clean, accepted, big_fleet]


def test_the_copied_schemas_are_the_published_ones() -> None:
    jsonschema.Draft4Validator.check_schema(SARIF.schema)
    assert SARIF.schema["id"] == ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/"
                                  "os/schemas/sarif-schema-2.1.0.json")
    assert "MIT License" in (SCHEMAS / "junit-10.xsd").read_text("utf-8")
    assert (SCHEMAS / "sarif-LICENSE.md").exists()


@pytest.mark.parametrize("make", AUDITS, ids=lambda m: m.__name__)
def test_sarif_validates(make: Callable[[], Audit]) -> None:
    SARIF.validate(sarif.to_sarif(make(), base=Path("/work/repo")))


def test_an_accepted_finding_is_an_external_suppression_with_the_reason() -> None:
    results = sarif.to_sarif(accepted(), base=Path("/work/repo"))["runs"][0]["results"]
    suppressed = {r["ruleId"]: r["suppressions"] for r in results if "suppressions" in r}
    assert suppressed == {
        "WLB-POOL-VERIFY-OFF": [{
            "kind": "external", "status": "accepted",
            "justification": "lab pool <b>: verification | later",
            "properties": {"ignore": "WLB-POOL-VERIFY-OFF@2025-06-01",
                           "origin": "audit.ignore, line 4", "until": "2025-06-01"}}],
        "WLB-TARGET-UNREACHABLE": [{
            "kind": "external", "status": "accepted", "justification": "accepted with --ignore",
            "properties": {"ignore": "WLB-TARGET-UNREACHABLE:pool3", "origin": "--ignore"}}],
    }
    expired = next(r for r in results if r["ruleId"] == "WLB-CERT-EXPIRED")
    assert expired["message"]["text"].endswith(
        " — acceptance expired on 2025-01-31 (it held until 2025-01-30: renewal ordered)")
    unused = next(r for r in results if r["ruleId"] == "WLB-IGNORE-UNUSED")
    assert unused["level"] == "note"
    assert "region" not in unused["locations"][0]["physicalLocation"]  # from --ignore


def test_the_sarif_schema_catches_a_broken_suppression() -> None:
    doc = sarif.to_sarif(accepted(), base=Path("/work/repo"))
    broken = copy.deepcopy(doc)
    result = next(r for r in broken["runs"][0]["results"] if "suppressions" in r)
    result["suppressions"][0]["kind"] = "baseline"  # not inSource or external
    with pytest.raises(jsonschema.ValidationError):
        SARIF.validate(broken)


@pytest.mark.parametrize("make", AUDITS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("fail_on", ["error", "warning", None])
def test_junit_validates(make: Callable[[], Audit], fail_on: Any) -> None:
    document = etree.fromstring(junit.render(make(), fail_on=fail_on).encode("utf-8"))
    JUNIT.assertValid(document)


def test_the_junit_schema_catches_what_jenkins_refuses() -> None:
    document = etree.fromstring(junit.render(sample()).encode("utf-8"))
    document.set("skipped", "0")  # junit-10.xsd has no such attribute on testsuites
    assert not JUNIT.validate(document)


def test_accepted_cases_are_skipped_with_the_acceptance_as_message() -> None:
    root = etree.fromstring(junit.render(accepted(), fail_on="warning").encode("utf-8"))
    pool1 = root.find("testsuite[@name='pool1']")
    assert pool1 is not None
    skipped = pool1.find("testcase[@name='WLB-POOL-VERIFY-OFF']/skipped")
    assert skipped is not None
    assert skipped.get("message") == ("accepted until 2025-06-01: lab pool <b>: verification "
                                      "| later (audit.ignore, line 4)")
    assert pool1.get("skipped") == "1"
    # The expired acceptance fails again and says why.
    failure = pool1.find("testcase[@name='WLB-CERT-EXPIRED']/failure")
    assert failure is not None
    assert "acceptance expired on 2025-01-31" in (failure.text or "")
    # An accepted unreachable target is skipped, not in error.
    pool3 = root.find("testsuite[@name='pool3']")
    assert pool3 is not None
    assert (pool3.get("errors"), pool3.get("skipped")) == ("0", "1")
    assert root.get("errors") == "0"
    general = root.find("testsuite[@name='ignore list']")
    assert general is not None
    (case,) = general.findall("testcase")
    assert case.get("name") == "WLB-IGNORE-UNUSED"
    assert case.find("system-out") is not None
