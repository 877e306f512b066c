"""The audit as text for a terminal or a CI log: per target its findings, worst first,
each with its hint below it (coloured by level on a terminal), the findings on no one
target, what was accepted (a count and the reason per ignore, as scanners show what they
skipped: a fleet-wide acceptance is one line, not one per pool), then one ``Audit: …``
line.

``ordered`` and the summary wording are pure and shared with the other audit renderers,
so every format sorts and counts the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.text import Text

from wlbplan.core.findings import Acceptance, Audit, Finding, TargetAudit
from wlbplan.core.rules import LEVELS, Level
from wlbplan.render.console import make_console
from wlbplan.render.safe import safe

_STYLES: dict[Level, str] = {"error": "red", "warning": "yellow", "note": "cyan"}
_LEVEL_WIDTH = max(len(level) for level in LEVELS)
_INDENT = "  "
_HANG = " " * (len(_INDENT) + _LEVEL_WIDTH + 2)  # continuation lines start under the rule id


# ---------------------------------------------------------------------------- shared view

def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first, then by rule id; ties keep the audit's order (sorted() is stable)."""
    return sorted(findings, key=lambda f: (-LEVELS.index(f.level), f.rule_id))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def level_counts(findings: Iterable[Finding]) -> str:
    """``1 error, 2 warnings, 0 notes``: every level, worst first, zeros included."""
    levels = [f.level for f in findings]
    return ", ".join(plural(levels.count(level), level) for level in reversed(LEVELS))


def counts_phrase(audit: Audit) -> str:
    """``1 error, 2 warnings, 0 notes on 2 targets (1 unreachable); 3 accepted``, or ``no
    findings on …``: accepted findings are not counted, only said."""
    head = level_counts(audit.counted) if audit.counted else "no findings"
    text = f"{head} on {plural(len(audit.targets), 'target')}"
    if audit.unreachable:
        text += f" ({len(audit.unreachable)} unreachable)"
    if audit.suppressed:
        text += f"; {len(audit.suppressed)} accepted"
    return text


def accepted_phrase(acceptance: Acceptance) -> str:
    """``until 2025-06-01: REASON (audit.ignore, line 4)``, for an acceptance in force."""
    text = f"until {acceptance.until}" if acceptance.until else "no end date"
    if acceptance.reason:
        text += f": {safe(acceptance.reason)}"
    return f"{text} ({acceptance.ignore.origin})"


def expired_phrase(acceptance: Acceptance) -> str:
    """``acceptance expired on 2025-03-02 (it held until 2025-03-01: REASON)``."""
    held = f"it held until {acceptance.until}"
    if acceptance.reason:
        held += f": {safe(acceptance.reason)}"
    return f"acceptance expired on {acceptance.expired_on} ({held})"


def summary_line(audit: Audit) -> str:
    return f"Audit: {counts_phrase(audit)}."


# ---------------------------------------------------------------------------------- text

def render(audit: Audit, *, color: bool = False) -> str:
    console, buffer = make_console(color)
    blocks = [*(_target(t) for t in audit.targets), _general(audit.general),
              _accepted(audit.suppressed)]
    for block in blocks:
        if block:
            for line in block:
                console.print(line)
            console.print()
    console.print(Text(summary_line(audit), style="bold"))
    return buffer.getvalue()


def _target(target: TargetAudit) -> list[Text]:
    # Text, never markup: names and messages print as they are, brackets and all.
    name = (safe(target.target), "bold")
    shown = [f for f in target.findings if not f.suppressed]
    accepted = len(target.findings) - len(shown)
    more = f" ({accepted} accepted)" if accepted else ""
    if target.error is not None:
        lines = [Text.assemble(name, ": ", ("unreachable", "red"), ", could not be inspected",
                               more)]
    elif not shown:
        return [Text.assemble(name, ": no findings", more)]
    else:
        lines = [Text.assemble(name, f": {level_counts(shown)}{more}")]
    for finding in ordered(shown):
        lines += _finding(finding)
    return lines


def _general(findings: Iterable[Finding]) -> list[Text]:
    shown = [f for f in findings if not f.suppressed]
    if not shown:
        return []
    lines = [Text.assemble(("ignore list", "bold"), f": {level_counts(shown)}")]
    for finding in ordered(shown):
        lines += _finding(finding)
    return lines


def _accepted(findings: Iterable[Finding]) -> list[Text]:
    """One line per rule and acceptance, with how many findings it covers."""
    groups = Counter((f.rule_id, f.acceptance) for f in findings if f.acceptance)
    if not groups:
        return []
    width = len(str(max(groups.values())))
    id_width = max(len(rule_id) for rule_id, _ in groups)
    lines = [Text("Accepted, not counted:", style="bold")]
    for (rule_id, acceptance), count in sorted(groups.items(), key=lambda g: g[0][0]):
        lines.append(Text.assemble(_INDENT, f"{count:>{width}}  ",
                                   (f"{safe(rule_id):<{id_width}}", "bold"), "  ",
                                   accepted_phrase(acceptance)))
    return lines


def _finding(finding: Finding) -> list[Text]:
    level = (f"{finding.level:<{_LEVEL_WIDTH}}", _STYLES.get(finding.level, ""))
    # A message is one line: a line break a host put in it shows as \n, never as a line.
    lines = [Text.assemble(_INDENT, level, "  ", (safe(finding.rule_id), "bold"), "  ",
                           safe(finding.message))]
    if finding.hint:
        lines.append(Text(f"{_HANG}hint: {safe(finding.hint)}", style="dim"))
    if finding.acceptance is not None:  # not suppressed, so expired
        lines.append(Text(f"{_HANG}{expired_phrase(finding.acceptance)}", style="yellow"))
    return lines
