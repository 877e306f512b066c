"""The plan as a pull-request comment, Atlantis/tfcmt style.

The one-line result comes first, then a warning when trust is removed or verification
turned off, then one collapsed ``<details>`` per target with a ``diff`` fence and the
numbered steps. GitHub refuses comments over 64 KiB, so a plan that would not fit drops
its commands first, then whole targets, and says so.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.planfile import step_id
from wlbplan.render.planjson import redact_text
from wlbplan.render.text import SIGNS, acts, change_rows, target_counts, waiting

LIMIT = 60_000  # bytes: GitHub's 65 536 less room for what CI bots add around it
_DIFF_SIGNS = {"+": "+", "-": "-", "~": "!", " ": " "}  # `!` is highlighted as a change
# `~` (strikethrough) and `&` (entities) too: a name or message is shown as it is.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&])")


def render(plan: Plan) -> str:
    if not acts(plan) and not plan.failed and not waiting(plan) and \
            not any(t.blockers for t in plan.targets):
        return _no_changes(plan)
    head = _head(plan)
    for compact in (False, True):
        sections = [_target(t, compact) for t in plan.targets
                    if t.failure is None and (t.changes or t.steps or t.notes)]
        text = _join(head, sections)
        if byte_size(text) <= LIMIT:
            return text
    return _truncated(head, sections)


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    line = f"**Plan:** {c['add']} to add, {c['change']} to change, {c['remove']} to remove"
    if plan.failed:
        line += f" — **{len(plan.failed)} target(s) not planned**"
    return line


def _no_changes(plan: Plan) -> str:
    lines = ["**No changes.** The pool's trust in its WLB appliance matches the spec."]
    lines += _notes([n for t in plan.targets for n in t.notes])
    return "\n".join(lines) + "\n"


def _head(plan: Plan) -> str:
    lines = [summary_line(plan)]
    warnings = [w for t in plan.targets for w in _warnings(t)]
    if warnings:
        lines += ["", "> [!WARNING]"] + [f"> - {w}" for w in warnings]
    for target in plan.targets:
        if target.failure is not None or target.status == "waiting":
            lines += ["", _verdict(target)]
    blocked = [(t.target, b) for t in plan.targets for b in t.blockers]
    if blocked:
        lines += ["", "> [!CAUTION]", "> An apply would refuse or fail:"]
        lines += [f"> - **{md_escape(name)}**: {md_escape(' '.join(redact_text(b).split()))}"
                  for name, b in blocked]
    unchanged = [t.target for t in plan.targets if t.status == "no_changes"]
    if unchanged:
        lines += ["", "No changes for " + ", ".join(f"**{md_escape(n)}**" for n in unchanged) + "."]
    return "\n".join(lines)


_VERDICT = {"refused": "no plan, refused", "unreachable": "no plan, unreachable",
            "waiting": "nothing to apply yet, waiting on you"}


def _verdict(target: TargetPlan) -> str:
    reason = " ".join(redact_text(target.reason).split())
    return (f"**{md_escape(target.target)}**: {_VERDICT[target.status]}: "
            f"{md_escape(reason)}")


def _warnings(target: TargetPlan) -> list[str]:
    """What a reviewer must not miss: the pool trusting less, or checking nothing."""
    name = f"**{md_escape(target.target)}**"
    out = []
    removed = [c.path for c in target.changes
               if c.action == "delete" and c.path.startswith("pool.trust")]
    if removed:
        out.append(f"{name} removes trust from the pool: "
                   + ", ".join(_code(p.removeprefix("pool.trust")[1:-1]) for p in removed))
    if any(c.path == "pool.wlb-verify-cert" and c.after is False for c in target.changes):
        out.append(f"{name} turns certificate verification off (`wlb-verify-cert=false`)")
    return out


def _target(target: TargetPlan, compact: bool) -> str:
    title = (f"<b>{html.escape(target.target)}</b> (stage: {html.escape(target.stage)}): "
             f"{target_counts(target)}")
    lines = [f"<details><summary>{title}</summary>", ""]
    if target.changes:
        lines += _fence(_diff_lines(target), "diff")
    if target.steps:
        lines += ["", "**Steps**", ""]
        lines += _steps(target, compact)
    lines += _notes(target.notes)
    lines += ["", "</details>"]
    return "\n".join(lines)


def _diff_lines(target: TargetPlan) -> list[str]:
    lines: list[str] = []
    for change in target.changes:
        if lines:
            lines.append("")
        lines.append(f"{_DIFF_SIGNS[SIGNS[change.action]]} {change.path}")
        for depth, sign, text in change_rows(change):
            lines.append(f"{_DIFF_SIGNS[sign]}     {'    ' * depth}{text}")
        lines.append(f"#     {redact_text(change.reason)}")
    return lines


def _steps(target: TargetPlan, compact: bool) -> list[str]:
    lines = []
    for index, step in enumerate(target.steps, 1):
        summary = md_escape(redact_text(step.summary))
        lines.append(f"{index}. {_code(step_id(target.target, index, step))} on {step.on}: "
                     f"{summary}")
        if compact:
            continue
        lines += _fence(step.commands, "sh", indent="   ")
        if step.undo:
            lines += ["   Undo:", *_fence(step.undo, "sh", indent="   ")]
    if compact:
        lines += ["", "_Commands left out to fit the comment: run `wlbplan show PLAN`._"]
    return lines


def _notes(notes: Iterable[str]) -> list[str]:
    items = [f"- {md_escape(redact_text(n))}" for n in notes]
    return ["", "**Notes**", "", *items] if items else []


def _truncated(head: str, sections: list[str]) -> str:
    kept: list[str] = []
    footer = "_{} more targets left out to fit the comment: run `wlbplan show PLAN`._"
    for section in sections:
        left = len(sections) - len(kept) - 1
        if byte_size(_join(head, [*kept, section, footer.format(left)])) > LIMIT:
            break
        kept.append(section)
    return _join(head, [*kept, footer.format(len(sections) - len(kept))])


def _join(head: str, sections: list[str]) -> str:
    return "\n\n".join([head, *sections]) + "\n"


def byte_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _fence(lines: Iterable[str], lang: str, indent: str = "") -> list[str]:
    body = [redact_text(line) for line in lines]
    # A fence longer than any backtick run inside it cannot be closed early by the content.
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    tick = "`" * max(3, longest + 1)
    return [f"{indent}{tick}{lang}", *(indent + line for line in body), f"{indent}{tick}"]


def _code(text: str) -> str:
    tick = "``" if "`" in text else "`"
    return f"{tick}{text}{tick}"


def md_escape(text: str) -> str:
    """Plain text that markdown must not interpret (names like ``*_orig`` or ``<pool>``)."""
    return _MD_SPECIAL.sub(r"\\\1", text)
