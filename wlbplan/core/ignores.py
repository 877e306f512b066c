"""Accepted findings: which findings an ignore list silences, until when, and the ignores
that matched nothing.

An ignore matches a finding by rule id, and by target when it names one. While it is in
force the finding is suppressed: reported with the reason, never counted, never failing.
From the day after ``until`` (the run's UTC date decides) the finding counts again and
carries the expired acceptance, so the report says since when. An ignore that matched
nothing on the targets inspected is itself a note (``WLB-IGNORE-UNUSED``): left in place
it would silence the finding when it comes back. Pure: the audit in, the audit out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Iterable, Sequence

from wlbplan.core.findings import Acceptance, Audit, Finding
from wlbplan.core.plan import parse_time
from wlbplan.core.rules import CATALOGUE, rule
from wlbplan.model.ignore import Ignore

UNUSED = "WLB-IGNORE-UNUSED"


def run_date(audit: Audit) -> dt.date:
    """The day the audit ran, in UTC: the day ``until`` is compared with."""
    return parse_time(audit.created).date()


def accept(audit: Audit, ignores: Sequence[Ignore], today: dt.date | None = None) -> Audit:
    """``audit`` with every finding an ignore matches marked, and a note per ignore that
    matched nothing. ``today``: the run's UTC date (by default, from ``audit.created``)."""
    day = run_date(audit) if today is None else today
    used: set[Ignore] = set()
    targets = tuple(
        dataclasses.replace(t, findings=tuple(_judged(f, ignores, day, used) for f in t.findings))
        for t in audit.targets)
    checked = {t.target for t in audit.targets if t.error is None}
    # An ignore of WLB-IGNORE-UNUSED may silence the others' notes: judged in a second pass.
    first = [i for i in ignores if i.rule != UNUSED and i not in used and _could_match(i, checked)]
    notes = tuple(_judged(_unused(i, day), ignores, day, used) for i in first)
    second = [i for i in ignores if i.rule == UNUSED and i not in used and _could_match(i, checked)]
    general = (*audit.general, *notes, *(_unused(i, day) for i in second))
    return dataclasses.replace(audit, targets=targets, general=general)


def _could_match(ignore: Ignore, checked: set[str]) -> bool:
    """Whether an ignore had findings to match: a target that was not inspected (not
    selected, or unreachable) had nothing checked, so nothing can be said of the ignore."""
    return ignore.target in checked if ignore.target is not None else bool(checked)


def _judged(finding: Finding, ignores: Iterable[Ignore], today: dt.date,
            used: set[Ignore]) -> Finding:
    matching = [i for i in ignores if matches(i, finding)]
    if not matching:
        return finding
    used.update(matching)
    # The first ignore in force wins (the spec's entries come before --ignore); with all
    # of them expired, the one that held the longest says since when the finding counts.
    in_force = [i for i in matching if not i.expired(today)]
    if in_force:
        return dataclasses.replace(finding, acceptance=Acceptance(in_force[0]))
    latest = max(matching, key=lambda i: i.until or dt.date.min)
    return dataclasses.replace(finding, acceptance=Acceptance(latest, expired=True))


def matches(ignore: Ignore, finding: Finding) -> bool:
    return ignore.rule == finding.rule_id and ignore.target in (None, finding.target)


def _unused(ignore: Ignore, today: dt.date) -> Finding:
    message = f"{ignore.text} ({ignore.origin}) matched no finding"
    if ignore.expired(today):
        message += f"; it expired after {ignore.until}"
    return Finding(UNUSED, rule(UNUSED).level, ignore.target or "", message,
                   hint="remove it, or correct its rule id or target",
                   about=f"ignore:{ignore.text}",
                   spec_path="" if ignore.line is None else "audit.ignore", line=ignore.line)


def rule_problem(rule_id: str) -> str | None:
    """Why ``rule_id`` is not a catalogued rule (with the closest id), or None when it is."""
    if rule_id in CATALOGUE:
        return None
    by_lower = {known.lower(): known for known in CATALOGUE}
    close = difflib.get_close_matches(rule_id.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"; did you mean {by_lower[close[0]]}?" if close else ""
    return f"unknown rule id {rule_id!r}{hint} (wlbplan audit --list-rules lists them)"


def target_problem(ignore: Ignore, known: Sequence[str]) -> str | None:
    """Why the target an ignore names is not one of ``known``, or None when it is."""
    if ignore.target is None or ignore.target in known:
        return None
    close = difflib.get_close_matches(ignore.target, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; targets: {', '.join(known)}"
    return f"{ignore.text}: no target named {ignore.target!r}{hint}"
