"""The audit as JUnit XML, for CI test reports: one suite per target, one test case per
rule checked on it.

A rule fails when it has a finding at or above ``fail_on`` (the same verdict as the exit
status); findings below it keep the case passing and go to ``<system-out>``. A target
that could not be inspected is one case in error: nothing else was checked there, and
reporting the other rules as passed would claim checks that never ran.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from wlbplan.core.findings import Audit, FailOn, Finding, TargetAudit
from wlbplan.core.rules import CATALOGUE, at_least
from wlbplan.render.audit_text import ordered
from wlbplan.render.safe import safe

UNREACHABLE = "WLB-TARGET-UNREACHABLE"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def render(audit: Audit, *, fail_on: FailOn = "error") -> str:
    suites = [_suite(target, fail_on) for target in audit.targets]
    root = ET.Element("testsuites", name="wlbplan audit")
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(suite.get(attr, "0")) for suite in suites)))
    root.extend(suites)
    ET.indent(root)
    return DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def _suite(target: TargetAudit, fail_on: FailOn) -> ET.Element:
    findings = ordered(target.findings)
    cases = [_case(target, rule_id, [f for f in findings if f.rule_id == rule_id], fail_on)
             for rule_id in _checked(target)]
    suite = ET.Element("testsuite", name=_xml(target.target), tests=str(len(cases)),
                       failures=str(sum(c.find("failure") is not None for c in cases)),
                       errors=str(sum(c.find("error") is not None for c in cases)),
                       skipped="0")
    suite.extend(cases)
    return suite


def _checked(target: TargetAudit) -> list[str]:
    """The rules that ran on the target, in catalogue order; ids the catalogue lacks (a
    bug) still get their own case rather than vanishing."""
    if target.error is not None:
        ids = [UNREACHABLE]
    else:
        ids = [rule_id for rule_id in CATALOGUE if rule_id != UNREACHABLE]
    extra = [f.rule_id for f in target.findings if f.rule_id not in ids]
    return ids + list(dict.fromkeys(extra))


def _case(target: TargetAudit, rule_id: str, found: Sequence[Finding],
          fail_on: FailOn) -> ET.Element:
    case = ET.Element("testcase", classname=_xml(f"wlbplan.{target.target}"), name=rule_id)
    failing = [f for f in found if fail_on is not None and at_least(f.level, fail_on)]
    if rule_id == UNREACHABLE and target.error is not None:
        error = ET.SubElement(case, "error", message=_xml(target.error), type="unreachable")
        error.text = _text(found)
    elif failing:
        failure = ET.SubElement(case, "failure", message=_xml(failing[0].message),
                                type=failing[0].level)
        failure.text = _text(found)
    elif found:
        ET.SubElement(case, "system-out").text = _text(found)
    return case


def _text(found: Sequence[Finding]) -> str:
    lines = []
    for finding in found:
        lines.append(f"{finding.level}: {_xml(finding.message)}")
        if finding.hint:
            lines.append(f"  hint: {_xml(finding.hint)}")
    return "\n".join(lines)


def _xml(text: str) -> str:
    """Free text as ``safe`` shows it, which XML 1.0 can always hold: the characters it
    cannot carry at all (NUL, ESC, lone surrogates…) are unprintable, hence escaped."""
    return safe(text)
