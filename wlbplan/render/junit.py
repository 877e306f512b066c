"""The audit as JUnit XML, for CI test reports: one suite per target, one test case per
rule checked on it.

A rule fails when it has a finding at or above ``fail_on`` (the same verdict as the exit
status); findings below it keep the case passing and go to ``<system-out>``. A target
that could not be inspected is one case in error: nothing else was checked there, and
reporting the other rules as passed would claim checks that never ran. A case whose
findings are all accepted is skipped, the acceptance as its message (what CI shows for a
test skipped on purpose); an accepted unreachable target is so too. The findings on no
one target (an ignore that matched nothing) have a suite of their own, ``ignore list``.
The shape validates against Jenkins' JUnit schema (xunit-plugin's junit-10.xsd).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from wlbplan.core.findings import Audit, FailOn, Finding, TargetAudit
from wlbplan.core.rules import CATALOGUE, at_least
from wlbplan.render.audit_text import accepted_phrase, expired_phrase, ordered
from wlbplan.render.safe import safe

UNREACHABLE = "WLB-TARGET-UNREACHABLE"
UNUSED = "WLB-IGNORE-UNUSED"
GENERAL_SUITE = "ignore list"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def render(audit: Audit, *, fail_on: FailOn = "error") -> str:
    suites = [_suite(target, fail_on) for target in audit.targets]
    if audit.general:
        suites.append(_general(audit.general, fail_on))
    root = ET.Element("testsuites", name="wlbplan audit")
    # junit-10.xsd allows no ``skipped`` here: the suites carry it.
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(suite.get(attr, "0")) for suite in suites)))
    root.extend(suites)
    ET.indent(root)
    return DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def _suite(target: TargetAudit, fail_on: FailOn) -> ET.Element:
    findings = ordered(target.findings)
    cases = [_case(target, rule_id, [f for f in findings if f.rule_id == rule_id], fail_on)
             for rule_id in _checked(target)]
    return _made_suite(target.target, cases)


def _general(findings: Sequence[Finding], fail_on: FailOn) -> ET.Element:
    found = ordered(findings)
    ids = list(dict.fromkeys(f.rule_id for f in found))
    holder = TargetAudit(GENERAL_SUITE)
    return _made_suite(GENERAL_SUITE, [_case(holder, rule_id,
                                             [f for f in found if f.rule_id == rule_id],
                                             fail_on) for rule_id in ids])


def _made_suite(name: str, cases: list[ET.Element]) -> ET.Element:
    suite = ET.Element("testsuite", name=_xml(name), tests=str(len(cases)),
                       failures=str(_having(cases, "failure")),
                       errors=str(_having(cases, "error")),
                       skipped=str(_having(cases, "skipped")))
    suite.extend(cases)
    return suite


def _having(cases: list[ET.Element], tag: str) -> int:
    return sum(case.find(tag) is not None for case in cases)


def _checked(target: TargetAudit) -> list[str]:
    """The rules that ran on the target, in catalogue order; ids the catalogue lacks (a
    bug) still get their own case rather than vanishing."""
    if target.error is not None:
        ids = [UNREACHABLE]
    else:
        ids = [rule_id for rule_id in CATALOGUE if rule_id not in (UNREACHABLE, UNUSED)]
    extra = [f.rule_id for f in target.findings if f.rule_id not in ids]
    return ids + list(dict.fromkeys(extra))


def _case(target: TargetAudit, rule_id: str, found: Sequence[Finding],
          fail_on: FailOn) -> ET.Element:
    case = ET.Element("testcase", classname=_xml(f"wlbplan.{target.target}"), name=rule_id)
    counted = [f for f in found if not f.suppressed]
    failing = [f for f in counted if fail_on is not None and at_least(f.level, fail_on)]
    if found and not counted:
        acceptance = found[0].acceptance
        message = "accepted " + accepted_phrase(acceptance) if acceptance else "accepted"
        ET.SubElement(case, "skipped", message=_xml(message)).text = _text(found)
    elif rule_id == UNREACHABLE and target.error is not None:
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
        label = "accepted " + finding.level if finding.suppressed else finding.level
        lines.append(f"{label}: {_xml(finding.message)}")
        if finding.hint:
            lines.append(f"  hint: {_xml(finding.hint)}")
        if finding.acceptance is not None:
            phrase = (accepted_phrase(finding.acceptance) if finding.suppressed
                      else expired_phrase(finding.acceptance))
            lines.append(f"  {_xml(phrase)}")
    return "\n".join(lines)


def _xml(text: str) -> str:
    """Free text as ``safe`` shows it, which XML 1.0 can always hold: the characters it
    cannot carry at all (NUL, ESC, lone surrogates…) are unprintable, hence escaped."""
    return safe(text)
