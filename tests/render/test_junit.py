"""JUnit XML: a suite per target, a case per rule checked, failures under fail_on, and an
unreachable target as one case in error."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from audit_samples import (
    EXPIRED,
    KEY_MODE,
    NASTY,
    NASTY_HINT,
    UNREACHABLE_ERROR,
    clean,
    make_audit,
    sample,
    unreachable,
    warnings_only,
)

from wlbplan.core.findings import Audit, FailOn
from wlbplan.core.rules import CATALOGUE
from wlbplan.render import junit, render_audit

NOT_PER_TARGET = ("WLB-TARGET-UNREACHABLE", "WLB-IGNORE-UNUSED")
CHECKED = len(CATALOGUE) - len(NOT_PER_TARGET)


def parse(audit: Audit, fail_on: FailOn = "error") -> ET.Element:
    return ET.fromstring(junit.render(audit, fail_on=fail_on))


def case(root: ET.Element, target: str, rule_id: str) -> ET.Element:
    found = root.find(f"./testsuite[@name='{target}']/testcase[@name='{rule_id}']")
    assert found is not None
    return found


def totals(element: ET.Element) -> tuple[int, int, int]:
    return tuple(int(element.get(a, "-1")) for a in ("tests", "failures", "errors"))


def test_declaration_and_root() -> None:
    out = junit.render(sample())
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')
    assert out.endswith("</testsuites>\n")
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    assert root.get("name") == "wlbplan audit"
    assert totals(root) == (2 * CHECKED + 1, 2, 1)


def test_one_suite_per_target_one_case_per_rule_checked() -> None:
    root = parse(sample())
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["pool1", "pool_2", "pool3"]
    assert [totals(s) for s in suites] == [(CHECKED, 2, 0), (CHECKED, 0, 0), (1, 0, 1)]
    assert all(s.get("skipped") == "0" for s in suites)
    names = [c.get("name") for c in suites[0].findall("testcase")]
    assert names == [r for r in CATALOGUE if r not in NOT_PER_TARGET]
    assert {c.get("classname") for c in suites[0].findall("testcase")} == {"wlbplan.pool1"}


def test_failure_carries_the_first_message_its_level_and_every_finding() -> None:
    failure = case(parse(sample()), "pool1", "WLB-CERT-EXPIRED").find("failure")
    assert failure is not None
    assert failure.get("message") == EXPIRED.message
    assert failure.get("type") == "error"
    assert failure.text == f"error: {EXPIRED.message}\n  hint: renew it"
    no_hint = case(parse(sample()), "pool1", "WLB-KEY-PERMISSIONS").find("failure")
    assert no_hint is not None
    assert no_hint.text == f"error: {KEY_MODE.message}"


def test_findings_below_fail_on_pass_with_system_out() -> None:
    expiring = case(parse(sample()), "pool1", "WLB-CERT-EXPIRING")
    assert expiring.find("failure") is None
    out = expiring.find("system-out")
    assert out is not None
    # Angle brackets and ampersands survive the round trip through XML; the message's own
    # line break is shown as \n, the one between message and hint is the format's.
    shown = NASTY.replace("\n", "\\n")
    assert out.text == f"warning: {shown}\n  hint: {NASTY_HINT}"
    assert case(parse(sample()), "pool1", "WLB-CERT-NO-SAN").find("system-out") is None


@pytest.mark.parametrize(("fail_on", "failures"), [("error", 2), ("warning", 4), ("note", 5),
                                                   (None, 0)])
def test_fail_on_decides_what_fails(fail_on: FailOn, failures: int) -> None:
    root = parse(sample(), fail_on)
    assert totals(root) == (2 * CHECKED + 1, failures, 1)
    outs = len(root.findall(".//system-out"))
    assert outs == 5 - failures


def test_a_warning_fails_with_its_level_as_type() -> None:
    root = parse(warnings_only(), "warning")
    failure = case(root, "pool1", "WLB-POOL-VERIFY-OFF").find("failure")
    assert failure is not None
    assert failure.get("type") == "warning"
    assert totals(root) == (CHECKED, 1, 0)  # the note stays below the bar
    assert case(root, "pool1", "WLB-TRUST-LEFTOVER").find("system-out") is not None


def test_unreachable_target_is_one_case_in_error_whatever_fail_on() -> None:
    for fail_on in ("error", None):
        suite = parse(sample(), fail_on).find("./testsuite[@name='pool3']")
        assert suite is not None
        (only,) = suite.findall("testcase")
        assert (only.get("name"), only.get("classname")) == ("WLB-TARGET-UNREACHABLE",
                                                             "wlbplan.pool3")
        error = only.find("error")
        assert error is not None
        assert error.get("message") == UNREACHABLE_ERROR
        assert "hint: check SSH access" in (error.text or "")


def test_clean_audit_passes() -> None:
    root = parse(clean())
    assert totals(root) == (2 * CHECKED, 0, 0)
    assert root.find(".//failure") is None


def test_text_xml_cannot_hold_is_escaped_visibly_and_markup_is_escaped() -> None:
    out = render_audit(make_audit(unreachable("p", "bad \x1b[0m\x00 </error><x a='1'>")), "junit")
    assert "<x a=" not in out
    error = ET.fromstring(out).find(".//error")
    assert error is not None
    assert error.get("message") == "bad \\x1b[0m\\x00 </error><x a='1'>"
