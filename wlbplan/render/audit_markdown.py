"""The audit as a pull-request comment or a GitHub job summary.

The one-line result comes first, then a CAUTION block naming the targets that could not
be inspected, then one table of findings, worst first. GitHub refuses comments over
64 KiB, so an audit that would not fit drops its last (least severe) rows and says how
many; the CAUTION block is kept before any row.
"""

from __future__ import annotations

from collections.abc import Iterator

from wlbplan.core.findings import Audit, Finding
from wlbplan.core.rules import LEVELS
from wlbplan.render.audit_text import counts_phrase, ordered, plural
from wlbplan.render.markdown import LIMIT, byte_size, md_escape
from wlbplan.render.safe import safe_clipped

_TABLE_HEAD = ("| Level | Rule | Target | Finding |", "| --- | --- | --- | --- |")
_ERROR_CHARS = 300  # one unreachable target's reason in the CAUTION block
_FOOTER = ("_{} left out to fit the comment: run `wlbplan audit` (or `--format json`) "
           "for all of them._")


def render(audit: Audit) -> str:
    # Fixed parts first; what is left goes to the CAUTION items, then to the table rows.
    fixed = [summary_line(audit), _caution_head(audit), _clean_targets(audit),
             _FOOTER.format(plural(len(audit.findings), "finding")), *_TABLE_HEAD,
             _more_targets(len(audit.unreachable))]
    budget = LIMIT - sum(byte_size(part) + 2 for part in fixed)
    caution, budget = _fit(list(_caution_items(audit)), budget)
    rows, _ = _fit(list(_rows(audit)), budget)
    blocks = [summary_line(audit), _caution_block(audit, caution)]
    if rows:
        blocks.append("\n".join([*_TABLE_HEAD, *rows]))
    if len(rows) < len(audit.findings):
        blocks.append(_FOOTER.format(plural(len(audit.findings) - len(rows), "finding")))
    blocks.append(_clean_targets(audit))
    return "\n\n".join(block for block in blocks if block) + "\n"


def summary_line(audit: Audit) -> str:
    return f"**Audit:** {counts_phrase(audit)}"


def _caution_head(audit: Audit) -> str:
    count = plural(len(audit.unreachable), "target")
    return f"> [!CAUTION]\n> Could not inspect {count}; nothing else was checked there:"


def _caution_block(audit: Audit, items: list[str]) -> str:
    if not audit.unreachable:
        return ""
    if len(items) < len(audit.unreachable):
        items = [*items, _more_targets(len(audit.unreachable) - len(items))]
    return "\n".join([_caution_head(audit), *items])


def _more_targets(count: int) -> str:
    return f"> - _and {plural(count, 'more target')}, left out to fit the comment_"


def _caution_items(audit: Audit) -> Iterator[str]:
    for target in audit.unreachable:
        reason = safe_clipped(target.error or "", _ERROR_CHARS)
        yield f"> - **{md_escape(target.target)}**: {md_escape(reason)}"


def _clean_targets(audit: Audit) -> str:
    names = [f"**{md_escape(t.target)}**" for t in audit.targets
             if not t.findings and t.error is None]
    return "No findings for " + ", ".join(names) + "." if names else ""


def _rows(audit: Audit) -> Iterator[str]:
    """Worst first over all targets, so truncation drops notes before errors."""
    by_target = [(index, f) for index, t in enumerate(audit.targets) for f in ordered(t.findings)]
    by_target.sort(key=lambda item: (-LEVELS.index(item[1].level), item[0]))
    for _, finding in by_target:
        yield _row(finding)


def _row(finding: Finding) -> str:
    text = _cell(finding.message)
    if finding.hint:
        text += f"<br>*Hint:* {_cell(finding.hint)}"
    level = f"**{finding.level}**" if finding.level == "error" else finding.level
    return f"| {level} | `{finding.rule_id}` | {md_escape(finding.target)} | {text} |"


def _cell(text: str) -> str:
    """One table cell, on one line (a newline would end the row) and clipped, so that one
    oversized host value cannot push the other findings out of the comment."""
    return md_escape(safe_clipped(text))


def _fit(items: list[str], budget: int) -> tuple[list[str], int]:
    """The leading items whose lines fit in ``budget`` bytes, and the bytes left."""
    kept: list[str] = []
    for item in items:
        cost = byte_size(item) + 1
        if cost > budget:
            break
        kept.append(item)
        budget -= cost
    return kept, budget

