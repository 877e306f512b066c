"""The audit as SARIF 2.1.0, for GitHub code scanning (``upload-sarif``).

Every result points at the spec file, at the line of the setting it concerns, so an
alert sits where the fix goes. The driver lists the whole catalogue: code scanning closes
an alert whose rule ran and reported nothing, and shows a rule's help beside its alerts.
``partialFingerprints`` carries the finding's own fingerprint (no dates, no line), so an
alert survives edits that move lines around. An accepted finding stays a result, with an
``external`` suppression whose justification is the reason (the ignore list is outside
the analysed file, as a baseline is); an expired acceptance is said in the message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from wlbplan.core.findings import Acceptance, Audit, Finding
from wlbplan.core.rules import CATALOGUE, Rule
from wlbplan.model.text import printable_json
from wlbplan.render.audit_text import expired_phrase, ordered
from wlbplan.render.safe import safe

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/wlbplan/wlbplan"
FINGERPRINT_KEY = "wlbplanFinding/v1"
SRCROOT = "%SRCROOT%"

Doc = dict[str, Any]


def render(audit: Audit, *, base: Path | None = None) -> str:
    """``base``: where relative URIs start (default: the current directory)."""
    return printable_json(json.dumps(to_sarif(audit, base=base), indent=2,
                                     ensure_ascii=False)) + "\n"


def to_sarif(audit: Audit, *, base: Path | None = None) -> Doc:
    rules = list(CATALOGUE.values())
    index = {rule.id: n for n, rule in enumerate(rules)}
    location = artifact_location(audit.spec_path, Path.cwd() if base is None else base)
    findings = [*(f for t in audit.targets for f in ordered(t.findings)), *ordered(audit.general)]
    results = [_result(f, index, location) for f in findings]
    run = {
        "tool": {"driver": {"name": "wlbplan", "version": audit.tool_version,
                            "informationUri": INFORMATION_URI,
                            "rules": [_rule(r) for r in rules]}},
        # An unreachable target was not checked: the run did not do all it should.
        "invocations": [{"executionSuccessful": not audit.unreachable}],
        "results": results,
    }
    return {"$schema": SCHEMA, "version": VERSION, "runs": [run]}


def artifact_location(spec_path: str, base: Path) -> Doc:
    """The spec as a URI relative to ``base`` (``%SRCROOT%``) when it lies under it, else
    as an absolute ``file:`` URI. Lexical only (no symlinks resolved): no I/O."""
    given = PurePath(spec_path)
    absolute = PurePath(os.path.normpath(given if given.is_absolute() else base / given))
    try:
        relative = absolute.relative_to(os.path.normpath(base))
    except ValueError:
        return {"uri": Path(absolute).as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}


# GitHub code scanning ranks alerts tagged "security" by this score (a string, 0.0-10.0):
# 7.0+ high, 4.0+ medium, below that low.
_SECURITY_SEVERITY = {"error": "7.5", "warning": "5.0", "note": "2.0"}


def _rule(rule: Rule) -> Doc:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.help},
        "help": {"text": rule.help},
        "defaultConfiguration": {"level": rule.level},
        "properties": {"tags": ["security"],
                       "security-severity": _SECURITY_SEVERITY[rule.level]},
    }


def _result(finding: Finding, index: dict[str, int], location: Doc) -> Doc:
    text = safe(finding.message)
    if finding.hint:
        text += " — " + safe(finding.hint)
    if finding.acceptance is not None and not finding.suppressed:
        text += " — " + expired_phrase(finding.acceptance)
    physical: Doc = {"artifactLocation": dict(location)}
    if finding.line is not None and finding.line >= 1:
        physical["region"] = {"startLine": finding.line}
    result: Doc = {"ruleId": finding.rule_id}
    if finding.rule_id in index:  # an id missing from the catalogue is a bug, not fatal
        result["ruleIndex"] = index[finding.rule_id]
    result |= {
        "level": finding.level,
        "message": {"text": text},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {"target": finding.target, "about": finding.about,
                       "specPath": finding.spec_path},
    }
    if finding.acceptance is not None and finding.suppressed:
        result["suppressions"] = [_suppression(finding.acceptance)]
    return result


def _suppression(acceptance: Acceptance) -> Doc:
    ignore = acceptance.ignore
    justification = (safe(acceptance.reason) if acceptance.reason
                     else f"accepted with {ignore.origin}")
    suppression: Doc = {"kind": "external", "status": "accepted",
                        "justification": justification,
                        "properties": {"ignore": ignore.text, "origin": ignore.origin}}
    if ignore.until is not None:
        suppression["properties"]["until"] = ignore.until.isoformat()
    return suppression
