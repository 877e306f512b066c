"""The audit as text for a terminal or a CI log: per target its findings, worst first,
each with its hint below it, then one ``Audit: …`` line.

``ordered`` and the summary wording are pure and shared with the other audit renderers,
so every format sorts and counts the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from wlbplan.core.findings import Audit, Finding, TargetAudit
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
    """``1 error, 2 warnings, 0 notes on 2 targets (1 unreachable)``, or ``no findings on …``."""
    head = level_counts(audit.findings) if audit.findings else "no findings"
    text = f"{head} on {plural(len(audit.targets), 'target')}"
    if audit.unreachable:
        text += f" ({len(audit.unreachable)} unreachable)"
    return text


def summary_line(audit: Audit) -> str:
    return f"Audit: {counts_phrase(audit)}."


# ---------------------------------------------------------------------------------- text

def render(audit: Audit, *, color: bool = False) -> str:
    console, buffer = make_console(color)
    for target in audit.targets:
        for line in _target(target):
            console.print(line)
        console.print()
    console.print(Text(summary_line(audit), style="bold"))
    return buffer.getvalue()


def _target(target: TargetAudit) -> list[Text]:
    # Text, never markup: names and messages print as they are, brackets and all.
    name = (safe(target.target), "bold")
    if target.error is not None:
        lines = [Text.assemble(name, ": ", ("unreachable", "red"), ", could not be inspected")]
    elif not target.findings:
        return [Text.assemble(name, ": no findings")]
    else:
        lines = [Text.assemble(name, f": {level_counts(target.findings)}")]
    for finding in ordered(target.findings):
        lines += _finding(finding)
    return lines


def _finding(finding: Finding) -> list[Text]:
    level = (f"{finding.level:<{_LEVEL_WIDTH}}", _STYLES.get(finding.level, ""))
    # A message is one line: a line break a host put in it shows as \n, never as a line.
    lines = [Text.assemble(_INDENT, level, "  ", (safe(finding.rule_id), "bold"), "  ",
                           safe(finding.message))]
    if finding.hint:
        lines.append(Text(f"{_HANG}hint: {safe(finding.hint)}", style="dim"))
    return lines
