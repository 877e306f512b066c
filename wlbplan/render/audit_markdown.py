"""The audit as a pull-request comment or a GitHub job summary, for one pool or a fleet.

The one-line result comes first, then a CAUTION block naming the targets that could not
be inspected, then a summary table (one row per target with findings, worst first), then
each of those targets' findings in its own ``<details>`` block, worst first; accepted
findings come last, marked as such. GitHub refuses comments over 64 KiB, so an audit that
would not fit drops its least severe rows (accepted ones first, then notes, warnings…)
and says how many; the summary table and the CAUTION block are kept before any row, and
are themselves shortened only for fleets of thousands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from wlbplan.core.findings import Audit, Finding, TargetAudit
from wlbplan.core.rules import LEVELS
from wlbplan.render.audit_text import (
    accepted_phrase,
    counts_phrase,
    expired_phrase,
    level_counts,
    ordered,
    plural,
)
from wlbplan.render.markdown import LIMIT, byte_size, html_text, md_escape
from wlbplan.render.safe import safe_clipped

_SUMMARY_HEAD = ("| Target | Errors | Warnings | Notes | Accepted |",
                 "| --- | --: | --: | --: | --: |")
_DETAILS_HEAD = ("| Level | Rule | Finding |", "| --- | --- | --- |")
_GENERAL = "ignore list"  # the heading of the findings on no one target
_ERROR_CHARS = 300  # one unreachable target's reason in the CAUTION block
_CLEAN_BYTES = 4000  # the "No findings for …" line, before "and N more"
_FOOTER = ("_{} left out to fit the comment: run `wlbplan audit` (or `--format json`) "
           "for all of them._")


@dataclass(frozen=True)
class _Group:
    """A target's findings (or the audit's own, ``target`` None), in the order shown."""

    name: str
    findings: tuple[Finding, ...]
    target: TargetAudit | None

    @property
    def counted(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]


def render(audit: Audit) -> str:
    groups = _groups(audit)
    rows = list(_rows(groups))
    clean = _clean_targets(audit)
    # Fixed parts first; what is left goes to the CAUTION items, the summary rows, then
    # the findings' rows.
    fixed = [summary_line(audit), _caution_head(audit), clean, *_SUMMARY_HEAD,
             _more_targets(len(audit.failed_targets)), _more_summary(len(groups)),
             _FOOTER.format(plural(len(rows), "finding"))]
    budget = LIMIT - sum(byte_size(part) + 2 for part in fixed)
    caution, budget = _fit(list(_caution_items(audit)), budget)
    summary, budget = _fit([_summary_row(g) for g in groups], budget)
    kept = _most_rows_within(len(rows), budget,
                             lambda count: _details(groups, rows[:count]))
    blocks = [summary_line(audit), _caution_block(audit, caution)]
    if groups:
        more = _more_summary(len(groups) - len(summary)) if len(summary) < len(groups) else ""
        blocks.append("\n".join([*_SUMMARY_HEAD, *summary, *([more] if more else [])]))
    blocks.append(_details(groups, rows[:kept]))
    if kept < len(rows):
        blocks.append(_FOOTER.format(plural(len(rows) - kept, "finding")))
    blocks.append(clean)
    return "\n\n".join(block for block in blocks if block) + "\n"


def summary_line(audit: Audit) -> str:
    return f"**Audit:** {counts_phrase(audit)}"


# --------------------------------------------------------------------- groups and rows


def _groups(audit: Audit) -> list[_Group]:
    """The targets with something to show, worst first (spec order between equals), then
    the findings on no one target."""
    def worst(indexed: tuple[int, TargetAudit]) -> tuple[int, ...]:
        levels = [f.level for f in indexed[1].findings if not f.suppressed]
        return (*(-levels.count(level) for level in reversed(LEVELS)), indexed[0])

    shown = [(n, t) for n, t in enumerate(audit.targets) if t.findings]
    groups = [_Group(t.target, t.findings, t) for _, t in sorted(shown, key=worst)]
    if audit.general:
        groups.append(_Group(_GENERAL, audit.general, None))
    return groups


def _rows(groups: Sequence[_Group]) -> Iterator[tuple[int, _Group, Finding]]:
    """Every finding, most important first over all groups, so that cutting from the end
    drops accepted findings, then notes, then warnings, before any error."""
    ranked = [(_rank(f), index, group, f) for index, group in enumerate(groups)
              for f in _shown_order(group.findings)]
    ranked.sort(key=lambda item: (item[0], item[1]))
    for rank, _, group, finding in ranked:
        yield rank, group, finding


def _rank(finding: Finding) -> int:
    return len(LEVELS) if finding.suppressed else -LEVELS.index(finding.level) + len(LEVELS) - 1


def _shown_order(findings: Sequence[Finding]) -> list[Finding]:
    """Counted findings worst first, then the accepted ones."""
    return [*ordered(f for f in findings if not f.suppressed),
            *ordered(f for f in findings if f.suppressed)]


# ----------------------------------------------------------------------- the summary


def _summary_row(group: _Group) -> str:
    levels = [f.level for f in group.counted]
    counts = [str(levels.count(level)) for level in reversed(LEVELS)]
    if counts[0] != "0":
        counts[0] = f"**{counts[0]}**"
    accepted = len(group.findings) - len(group.counted)
    name = f"**{md_escape(group.name)}**" if group.target else f"_{_GENERAL}_"
    if group.target is not None and group.target.error is not None:
        name += " (unreachable" + (", accepted)" if not group.counted else ")")
    return f"| {name} | {' | '.join(counts)} | {accepted} |"


def _more_summary(count: int) -> str:
    return f"| _and {plural(count, 'more target')}, left out to fit the comment_ | | | | |"


# ----------------------------------------------------------------------- the details


def _details(groups: Sequence[_Group], rows: Sequence[tuple[int, _Group, Finding]]) -> str:
    """One ``<details>`` block per group with a row kept, the rows in the group's order."""
    kept = {id(finding) for _, _, finding in rows}
    # One block alone is open: a single pool's audit reads without a click.
    opening = "<details open>" if len(groups) == 1 else "<details>"
    blocks = []
    for group in groups:
        shown = [f for f in _shown_order(group.findings) if id(f) in kept]
        if not shown:
            continue
        lines = [f"{opening}<summary>{_details_title(group)}</summary>", "",
                 *_DETAILS_HEAD, *(_row(f) for f in shown)]
        if len(shown) < len(group.findings):
            left = plural(len(group.findings) - len(shown), "less severe finding")
            lines += ["", f"_and {left}, left out to fit the comment_"]
        blocks.append("\n".join([*lines, "", "</details>"]))
    return "\n\n".join(blocks)


def _details_title(group: _Group) -> str:
    # Inside <summary> is HTML, where Markdown's backslashes would show: HTML-escaped.
    name = f"<b>{html_text(group.name)}</b>" if group.target else _GENERAL
    counted = group.counted
    if group.target is not None and group.target.error is not None:
        text = f"{name}: unreachable"
    else:
        text = f"{name}: {level_counts(counted) if counted else 'no findings'}"
    accepted = len(group.findings) - len(counted)
    return text + (f" ({accepted} accepted)" if accepted else "")


def _row(finding: Finding) -> str:
    text = _cell(finding.message)
    if finding.hint:
        text += f"<br>*Hint:* {_cell(finding.hint)}"
    if finding.acceptance is not None and finding.suppressed:
        text += f"<br>*Accepted* {_cell(accepted_phrase(finding.acceptance))}"
        level = f"accepted ({finding.level})"
    else:
        if finding.acceptance is not None:
            text += f"<br>***{_cell(expired_phrase(finding.acceptance))}***"
        level = f"**{finding.level}**" if finding.level == "error" else finding.level
    return f"| {level} | `{finding.rule_id}` | {text} |"


def _cell(text: str) -> str:
    """One table cell, on one line (a newline would end the row) and clipped, so that one
    oversized host value cannot push the other findings out of the comment."""
    return md_escape(safe_clipped(text))


# ------------------------------------------------------------- unreachable and clean


def _caution_head(audit: Audit) -> str:
    count = plural(len(audit.failed_targets), "target")
    return f"> [!CAUTION]\n> Could not inspect {count}; nothing else was checked there:"


def _caution_block(audit: Audit, items: list[str]) -> str:
    """The unreachable targets that fail the run (accepted ones are in the summary)."""
    if not audit.failed_targets:
        return ""
    if len(items) < len(audit.failed_targets):
        items = [*items, _more_targets(len(audit.failed_targets) - len(items))]
    return "\n".join([_caution_head(audit), *items])


def _more_targets(count: int) -> str:
    return f"> - _and {plural(count, 'more target')}, left out to fit the comment_"


def _caution_items(audit: Audit) -> Iterator[str]:
    for target in audit.failed_targets:
        reason = safe_clipped(target.error or "", _ERROR_CHARS)
        yield f"> - **{md_escape(target.target)}**: {md_escape(reason)}"


def _clean_targets(audit: Audit) -> str:
    names = [f"**{md_escape(t.target)}**" for t in audit.targets
             if not t.findings and t.error is None]
    if not names:
        return ""
    kept, _ = _fit([f"{name}, " for name in names], _CLEAN_BYTES)
    if len(kept) == len(names):
        return "No findings for " + ", ".join(names) + "."
    return f"No findings for {''.join(kept)}and {len(names) - len(kept)} more targets."


# ------------------------------------------------------------------------- fitting


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


def _most_rows_within(total: int, budget: int, made: Callable[[int], str]) -> int:
    """The largest count of leading rows whose rendering fits ``budget`` bytes (a binary
    search: the size grows with the rows, bar a few bytes of per-target notes, and only
    counts that were checked to fit are returned)."""
    if byte_size(made(total)) <= budget:
        return total
    low, high = 0, total  # made(low) fits (nothing at all does); made(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if byte_size(made(middle)) <= budget:
            low = middle
        else:
            high = middle
    return low
