"""The audit as JSON for tools and dashboards (``audit --format json``).

Described by ``schemas/audit.schema.json``. ``failed`` is the verdict under ``fail_on``,
the same one the command's exit status gives, so a consumer need not re-derive it. An
accepted finding stays in its target's list with ``suppressed: true`` and its acceptance
(reason, until), and is left out of the summary's counts.
``rules`` holds the catalogue entries of the rules that appear, keyed by id, so the
document explains itself without the catalogue at hand.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from wlbplan.core.findings import Acceptance, Audit, FailOn, Finding, TargetAudit
from wlbplan.core.rules import CATALOGUE
from wlbplan.model.text import printable_json
from wlbplan.render.audit_text import ordered
from wlbplan.render.planjson import redact_text

TOOL = "wlbplan"

Doc = dict[str, Any]


def render(audit: Audit, *, fail_on: FailOn = "error") -> str:
    return printable_json(json.dumps(to_json(audit, fail_on=fail_on), indent=2,
                                     ensure_ascii=False)) + "\n"


def to_json(audit: Audit, *, fail_on: FailOn = "error") -> Doc:
    return {
        "format_version": audit.format_version,
        "tool": {"name": TOOL, "version": audit.tool_version},
        "spec": audit.spec_path,
        "created": audit.created,
        "fail_on": fail_on or "never",
        "failed": audit.fails(fail_on),
        "summary": {**audit.counts(), "accepted": len(audit.suppressed),
                    "targets": len(audit.targets), "unreachable": len(audit.unreachable)},
        "targets": [_target(t) for t in audit.targets],
        "general": [_finding(f) for f in ordered(audit.general)],
        "rules": _rules(audit),
    }


def schema() -> Doc:
    """The packaged JSON Schema of this document."""
    return json.loads(_schema_text())  # type: ignore[no-any-return]


@cache
def _schema_text() -> str:
    return (resources.files("wlbplan") / "schemas" / "audit.schema.json").read_text("utf-8")


def _target(target: TargetAudit) -> Doc:
    return {
        "name": target.target,
        "status": "unreachable" if target.error is not None else "audited",
        "error": None if target.error is None else redact_text(target.error),
        "line": target.line,
        "findings": [_finding(f) for f in ordered(target.findings)],
    }


def _finding(finding: Finding) -> Doc:
    return {
        "rule_id": finding.rule_id,
        "level": finding.level,
        "message": redact_text(finding.message),
        "hint": redact_text(finding.hint),
        "about": finding.about,
        "spec_path": finding.spec_path,
        "line": finding.line,
        "fingerprint": finding.fingerprint,
        "suppressed": finding.suppressed,
        "acceptance": None if finding.acceptance is None else _acceptance(finding.acceptance),
    }


def _acceptance(acceptance: Acceptance) -> Doc:
    ignore = acceptance.ignore
    return {
        "ignore": ignore.text,
        "reason": ignore.reason,
        "until": None if ignore.until is None else ignore.until.isoformat(),
        "expired": acceptance.expired,
        "expired_on": None if acceptance.expired_on is None else acceptance.expired_on.isoformat(),
        "origin": "cli" if ignore.line is None else "spec",
        "line": ignore.line,
    }


def _rules(audit: Audit) -> Doc:
    """Catalogue order; an id missing from the catalogue (a bug) is left out, not fatal."""
    seen = {f.rule_id for f in audit.findings}
    return {rule.id: {"level": rule.level, "title": rule.title, "help": rule.help}
            for rule in CATALOGUE.values() if rule.id in seen}
