"""The plan as terraform-like text: legend, ``+ ~ -`` changes with before → after, the
ordered steps with their commands and undo, notes, and the ``Plan: …`` line.

``change_rows`` and the line helpers are pure and shared with the markdown renderer.
Colour only when asked: the CLI decides (NO_COLOR, non-TTY), the renderer never looks at
the environment, so the same plan always renders to the same text.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.text import Text

from wlbplan.core.diff import Change
from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.planfile import step_id
from wlbplan.core.steps import Step
from wlbplan.render.safe import safe

LEGEND = (
    "wlbplan compared the spec with what the pools and appliances have.\n"
    "Actions are indicated with the following symbols:\n"
    "  + create\n"
    "  ~ update in-place\n"
    "  - remove"
)
NO_CHANGES = "No changes. The pool's trust in its WLB appliance matches the spec."
WIDTH = 100
ARROW = "→"

SIGNS = {"create": "+", "update": "~", "delete": "-"}
_STYLES = {"+": "green", "~": "yellow", "-": "red", " ": ""}
# Reviewer-relevant fields of a certificate summary, in the order they are shown.
FIELDS = (
    ("name", "name"), ("role", "role"), ("subject", "subject"), ("sans", "SANs"),
    ("issuer", "issuer"), ("serial", "serial"), ("fingerprint", "fingerprint"),
    ("not_after", "not after"), ("key", "key"),
    # The request stage's pending key and CSR.
    ("type", "key type"), ("bits", "key bits"), ("matches_key", "matches key"),
)
_LABEL_WIDTH = max(len(label) for _, label in FIELDS) + 1

Row = tuple[int, str, str]
"""(depth, sign, text): one line of a change's detail, before any styling."""


# ---------------------------------------------------------------------------- shared view

def plan_line(plan: Plan) -> str:
    """The last line, terraform's wording with wlbplan's ``remove``; then what stands in
    the way, so that the last line never reads as converged when a target is not."""
    if acts(plan):
        c = plan.counts()
        line = f"Plan: {c['add']} to add, {c['change']} to change, {c['remove']} to remove."
    elif plan.failed or waiting(plan) or any(t.blockers for t in plan.targets):
        line = "No changes to apply."
    else:
        return NO_CHANGES
    return " ".join([line, *verdicts(plan)])


def waiting(plan: Plan) -> list[str]:
    return [t.target for t in plan.targets if t.status == "waiting"]


def verdicts(plan: Plan) -> list[str]:
    """Sentences naming the targets that are not simply planned or unchanged."""
    out = []
    for status, words in (("refused", "refused"), ("unreachable", "unreachable"),
                          ("waiting", "waiting on you")):
        names = [t.target for t in plan.targets if t.status == status]
        if names:
            out.append(f"{', '.join(names)}: {words}.")
    blocked = [t.target for t in plan.targets if t.blockers]
    if blocked:
        out.append(f"{', '.join(blocked)}: an apply would refuse or fail (see above).")
    return out


def acts(plan: Plan) -> bool:
    # Changes without steps would be a planner bug; still never call that "No changes".
    return plan.has_changes or any(t.changes for t in plan.targets)


def target_counts(target: TargetPlan) -> str:
    actions = [c.action for c in target.changes]
    return (f"{actions.count('create')} to add, {actions.count('update')} to change, "
            f"{actions.count('delete')} to remove")


def show(value: Any) -> str:
    """One value as a reviewer reads it, on one line; PEMs never pass."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ", ".join(show(v) for v in value) if value else "(none)"
    return safe(str(value))


def change_rows(change: Change) -> list[Row]:
    """The fields that matter: all of them for create/delete, the differing ones for update."""
    sign = SIGNS[change.action]
    before, after = change.before, change.after
    if isinstance(before, list) or isinstance(after, list):
        return _chain_rows(before or [], after or [])
    if isinstance(before, dict) or isinstance(after, dict):
        return _cert_rows(0, sign, before, after)
    label = change.path.rsplit(".", 1)[-1]
    return [(0, sign, _pair(label, before, after, sign))]


def _pair(label: str, before: Any, after: Any, sign: str) -> str:
    head = f"{safe(label)}:".ljust(_LABEL_WIDTH)
    if sign == "+":
        return f"{head} {show(after)}"
    if sign == "-":
        return f"{head} {show(before)}"
    return f"{head} {show(before)} {ARROW} {show(after)}"


def _cert_rows(depth: int, sign: str, before: Any, after: Any) -> list[Row]:
    old, new = before or {}, after or {}
    rows = []
    for key, label in FIELDS:
        if key not in old and key not in new:
            continue
        if sign == "~" and old.get(key) == new.get(key):
            continue
        rows.append((depth, sign, _pair(label, old.get(key, "(unknown)"),
                                        new.get(key, "(unknown)"), sign)))
    return rows


def _chain_rows(before: list[Any], after: list[Any]) -> list[Row]:
    """Compare position by position: the leaf with the leaf, the next CA with the next."""
    rows: list[Row] = []
    for i in range(max(len(before), len(after))):
        old: dict[str, Any] | None = before[i] if i < len(before) else None
        new: dict[str, Any] | None = after[i] if i < len(after) else None
        name = f"certificate {i + 1} ({_position(i, new or old or {})})"
        if old == new:
            rows.append((0, " ", f"{name}: unchanged, {show((new or {}).get('subject'))}"))
            continue
        sign = "+" if old is None else "-" if new is None else "~"
        rows.append((0, sign, name))
        rows += _cert_rows(1, sign, old, new)
    return rows


def _position(index: int, cert: dict[str, Any]) -> str:
    if index == 0:
        return "leaf"
    return "root" if cert.get("subject") == cert.get("issuer") else "intermediate"


def step_title(target: str, index: int, step: Step) -> str:
    return safe(f"{step_id(target, index, step)} [{step.on}]: {step.summary}")


# ---------------------------------------------------------------------------- text

def render(plan: Plan, color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, force_terminal=color, no_color=not color,
        color_system="standard" if color else None, width=WIDTH, highlight=False,
        soft_wrap=True, markup=False, emoji=False, legacy_windows=False,
        _environ={},  # NO_COLOR, COLUMNS, FORCE_COLOR… are the CLI's business, not ours
    )
    for line in _lines(plan):
        console.print(line)
    return buffer.getvalue()


def _lines(plan: Plan) -> Iterator[Text]:
    blank = False
    for line in _sections(plan):
        # Every section ends with a blank line; never print two in a row.
        if blank and not line.plain:
            continue
        blank = not line.plain
        yield line


def _sections(plan: Plan) -> Iterator[Text]:
    if acts(plan):
        yield Text(LEGEND)
        yield Text()
    for target in plan.targets:
        yield from _target_lines(target)
    yield Text(plan_line(plan), style="bold")


def _target_lines(target: TargetPlan) -> Iterator[Text]:
    if target.failure is not None or target.status == "waiting":
        yield from _verdict_lines(target)
    elif not target.changes and not target.steps:
        yield Text(f"Target {safe(target.target)}: no changes.", style="bold")
    else:
        yield Text(f"Target {safe(target.target)} (stage: {safe(target.stage)}): "
                   f"{target_counts(target)}", style="bold")
        yield Text()
    for change in target.changes:
        yield from _change_lines(change)
    if target.steps:
        yield from _step_lines(target)
    if target.blockers:
        yield Text("  Stands in the way of an apply:", style="bold red")
        yield from (Text(f"    - {safe(blocker)}") for blocker in target.blockers)
    if target.notes:
        yield Text("  Notes:", style="bold")
        yield from (Text(f"    - {safe(note)}") for note in target.notes)
    yield Text()


_VERDICT_HEAD = {
    "refused": ("no plan: refused", "Reason", "red"),
    "unreachable": ("no plan: unreachable", "Reason", "red"),
    "waiting": ("nothing to apply yet: waiting on you", "Next", "yellow"),
}


def _verdict_lines(target: TargetPlan) -> Iterator[Text]:
    head, label, style = _VERDICT_HEAD[target.status]
    yield Text(f"Target {safe(target.target)}: {head}.", style=f"bold {style}")
    # One line: a reason quoting host text never starts a line of its own (indenting it
    # would not do: the Actions runner trims leading spaces before looking for "::").
    yield Text(f"  {label}: {safe(target.reason or '')}")


def _change_lines(change: Change) -> Iterator[Text]:
    sign = SIGNS[change.action]
    yield Text(f"  {sign} {safe(change.path)}", style=_STYLES[sign])
    for depth, row_sign, text in change_rows(change):
        yield Text("      " + "    " * depth + f"{row_sign} {text}", style=_STYLES[row_sign])
    yield Text(f"      # {safe(change.reason)}", style="dim")
    yield Text()


def _step_lines(target: TargetPlan) -> Iterator[Text]:
    yield Text("  Steps, in order (a failure undoes the steps already done, last first):",
               style="bold")
    for index, step in enumerate(target.steps, 1):
        yield Text(f"    {index}. {step_title(target.target, index, step)}")
        yield from _commands("run: ", step.commands)
        yield from _commands("undo:", step.undo or ("(nothing to undo)",))
    yield Text()


def _commands(label: str, commands: tuple[str, ...]) -> Iterator[Text]:
    for n, command in enumerate(commands):
        head = label if n == 0 else " " * len(label)
        yield Text.assemble(f"         {head} ", (safe(command), "cyan"))
