"""The plan as a pull-request comment, Atlantis/tfcmt style.

The one-line result comes first, then a warning when trust is removed or verification
turned off, then one collapsed ``<details>`` per target with a ``diff`` fence and the
numbered steps. GitHub refuses comments over 64 KiB: every field a host chose is cut at
``FIELD_CHARS`` first, then a plan that still would not fit drops its commands, then
shows the last targets by their one-line summary only, and says so. A target is never
left out because of what a host said.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.planfile import step_id
from wlbplan.model.text import visible
from wlbplan.render.safe import safe_clipped
from wlbplan.render.text import SIGNS, acts, change_rows, target_counts, waiting

LIMIT = 60_000  # bytes: GitHub's 65 536 less room for what CI bots add around it
# The plan's own symbols, as in the text plan and the legend (one vocabulary): GitHub colours
# `+` and `-` lines and leaves `~` plain, which still reads as "changed in place".
_DIFF_SIGNS = {"+": "+", "-": "-", "~": "~", " ": " "}
# `~` (strikethrough) and `&` (entities) too: a name or message is shown as it is.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&])")
# A zero-width space after `@` keeps `@org/team` from notifying anyone; it shows unchanged.
_NO_MENTION = "@&#8203;"
_BRIEF_FOOTER = ("_Details of {} left out to fit the comment: run `wlbplan show PLAN`._")


def render(plan: Plan) -> str:
    if not acts(plan) and not plan.failed and not waiting(plan) and \
            not any(t.blockers for t in plan.targets):
        return _no_changes(plan)
    head = _head(plan)
    shown = [t for t in plan.targets if t.failure is None and (t.changes or t.steps or t.notes)]
    for compact in (False, True):
        sections = [_target(t, compact) for t in shown]
        text = _join(head, sections)
        if byte_size(text) <= LIMIT:
            return text
    return _briefed(head, sections, shown)


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
        lines += [f"> - **{md_escape(name)}**: {md_escape(safe_clipped(b))}"
                  for name, b in blocked]
    unchanged = [t.target for t in plan.targets if t.status == "no_changes"]
    if unchanged:
        lines += ["", "No changes for " + ", ".join(f"**{md_escape(n)}**" for n in unchanged)
                  + "."]
    return "\n".join(lines)


_VERDICT = {"refused": "no plan, refused", "unreachable": "no plan, unreachable",
            "waiting": "nothing to apply yet, waiting on you"}


def _verdict(target: TargetPlan) -> str:
    reason = safe_clipped(target.reason or "")
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


def _title(target: TargetPlan) -> str:
    return (f"<b>{html_text(target.target)}</b> (stage: {html_text(target.stage)}): "
            f"{target_counts(target)}")


def _target(target: TargetPlan, compact: bool) -> str:
    lines = [f"<details><summary>{_title(target)}</summary>", ""]
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
        # Every line keeps its diff sign: host text is clipped and on one line.
        lines.append(f"{_DIFF_SIGNS[SIGNS[change.action]]} {safe_clipped(change.path)}")
        for depth, sign, text in change_rows(change):
            lines.append(f"{_DIFF_SIGNS[sign]}     {'    ' * depth}{safe_clipped(text)}")
        lines.append(f"#     {safe_clipped(change.reason)}")
    return lines


def _steps(target: TargetPlan, compact: bool) -> list[str]:
    lines = []
    for index, step in enumerate(target.steps, 1):
        summary = md_escape(safe_clipped(step.summary))
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
    items = [f"- {md_escape(safe_clipped(n))}" for n in notes]
    return ["", "**Notes**", "", *items] if items else []


def _briefed(head: str, sections: list[str], targets: list[TargetPlan]) -> str:
    """The leading targets in full (compact), every other one by its summary line."""
    kept: list[str] = []
    for section in sections:
        rest = targets[len(kept) + 1:]
        if byte_size(_join(head, [*kept, section, *_brief(rest)])) > LIMIT:
            break
        kept.append(section)
    return _join(head, [*kept, *_brief(targets[len(kept):], LIMIT - byte_size(head))])


def _brief(targets: list[TargetPlan], room: int = LIMIT) -> list[str]:
    """One line per target; only a spec with thousands of them runs out of ``room``."""
    if not targets:
        return []
    count = f"{len(targets)} target" + ("s" if len(targets) > 1 else "")
    footer = _BRIEF_FOOTER.format(count)
    room -= byte_size(footer) + 200
    lines: list[str] = []
    for index, target in enumerate(targets):
        line = f"- {_title(target)}"
        room -= byte_size(line) + 1
        if room < 0:
            lines.append(f"- _and {len(targets) - index} more_")
            break
        lines.append(line)
    return ["\n".join(lines), footer]


def _join(head: str, sections: list[str]) -> str:
    return "\n\n".join([head, *sections]) + "\n"


def byte_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _fence(lines: Iterable[str], lang: str, indent: str = "") -> list[str]:
    body = [safe_clipped(line) for line in lines]
    # A fence longer than any backtick run inside it cannot be closed early by the content.
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    tick = "`" * max(3, longest + 1)
    return [f"{indent}{tick}{lang}", *(indent + line for line in body), f"{indent}{tick}"]


def _code(text: str) -> str:
    """A code span no backtick run in ``text`` can close early (CommonMark's rule)."""
    text = visible(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{tick}{pad}{text}{pad}{tick}"


def html_text(text: str) -> str:
    """Text inside the HTML of ``<summary>``: escaped, one line, no live mention."""
    return html.escape(visible(text)).replace("@", _NO_MENTION)


def md_escape(text: str) -> str:
    """Plain text that markdown must not interpret (names like ``*_orig`` or ``<pool>``),
    on one line (every unprintable character escaped visibly) and mentioning no one."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text)).replace("@", _NO_MENTION)
