"""The audit as GitHub Actions workflow commands: one annotation per finding.

``::error file=F,line=L,title=T::MESSAGE``, escaped exactly as the Actions toolkit does
(``@actions/core`` command.ts), so a message with ``%``, ``:`` or a newline cannot end the
command early or forge another. The summary is not repeated here: the command appends the
markdown rendering to ``$GITHUB_STEP_SUMMARY``. An accepted finding gets no annotation (as
scanners' actions leave out what was skipped on purpose); the job summary lists it.
"""

from __future__ import annotations

from wlbplan.core.findings import Audit, Finding
from wlbplan.core.rules import Level
from wlbplan.model.text import visible
from wlbplan.render.audit_text import expired_phrase, ordered
from wlbplan.render.planjson import redact_text

COMMANDS: dict[Level, str] = {"error": "error", "warning": "warning", "note": "notice"}


def render(audit: Audit) -> str:
    findings = [*(f for t in audit.targets for f in ordered(t.findings)), *ordered(audit.general)]
    lines = [annotation(f, audit.spec_path) for f in findings if not f.suppressed]
    # Newline-terminated like every renderer's output, even with nothing to annotate.
    return "\n".join(lines) + "\n"


def annotation(finding: Finding, file: str) -> str:
    title = f"{finding.rule_id} ({finding.target})" if finding.target else finding.rule_id
    props = {"file": file, "line": None if finding.line is None else str(finding.line),
             "title": title}
    given = ",".join(f"{k}={escape_property(v)}" for k, v in props.items() if v)
    message = finding.message
    if finding.hint:
        message += " — " + finding.hint
    if finding.acceptance is not None:  # annotated, so expired
        message += " — " + expired_phrase(finding.acceptance)
    return f"::{COMMANDS[finding.level]} {given}::{escape_data(message)}"


def escape_data(text: str) -> str:
    """The toolkit's escaping (CR and LF %-encoded, shown as line breaks inside the
    annotation), then every other unprintable character (BEL, VT, FF, ESC, NEL, U+2028…)
    escaped visibly: none may reach the log raw."""
    encoded = redact_text(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return visible(encoded)


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
