"""Accepted findings on data: what an ignore matches, the day it expires (the run's UTC date),
what a suppressed finding no longer does, and the ignores that matched nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from wlbplan.core.findings import Audit, Finding, TargetAudit
from wlbplan.core.ignores import UNUSED, accept, rule_problem, run_date, target_problem
from wlbplan.model.ignore import Ignore, parse_option

DAY = dt.date(2025, 3, 1)
VERIFY_OFF = Finding("WLB-POOL-VERIFY-OFF", "warning", "pool1", "verification is off")
EXPIRED = Finding("WLB-CERT-EXPIRED", "error", "pool1", "expired", line=12)
VERIFY_OFF_2 = Finding("WLB-POOL-VERIFY-OFF", "warning", "pool2", "verification is off")
DOWN = Finding("WLB-TARGET-UNREACHABLE", "error", "pool3", "ssh: connection refused")


def fleet(created: str = "2025-03-01T23:59:59Z") -> Audit:
    return Audit("spec.yaml", created, (
        TargetAudit("pool1", (VERIFY_OFF, EXPIRED)),
        TargetAudit("pool2", (VERIFY_OFF_2,)),
        TargetAudit("pool3", (DOWN,), error="ssh: connection refused"),
    ))


def by_target(audit: Audit) -> dict[tuple[str, str], Finding]:
    return {(f.target, f.rule_id): f for t in audit.targets for f in t.findings}


def test_an_ignore_without_target_accepts_the_rule_on_every_target() -> None:
    made = accept(fleet(), [Ignore("WLB-POOL-VERIFY-OFF", reason="lab")], DAY)
    found = by_target(made)
    assert found["pool1", "WLB-POOL-VERIFY-OFF"].suppressed
    assert found["pool2", "WLB-POOL-VERIFY-OFF"].suppressed
    assert not found["pool1", "WLB-CERT-EXPIRED"].suppressed
    assert found["pool1", "WLB-POOL-VERIFY-OFF"].acceptance.reason == "lab"
    assert made.general == ()


def test_an_ignore_with_a_target_accepts_that_targets_finding_only() -> None:
    found = by_target(accept(fleet(), [Ignore("WLB-POOL-VERIFY-OFF", "pool2")], DAY))
    assert found["pool2", "WLB-POOL-VERIFY-OFF"].suppressed
    assert not found["pool1", "WLB-POOL-VERIFY-OFF"].suppressed


def test_a_suppressed_finding_is_not_counted_and_never_fails_the_run() -> None:
    audit = fleet()
    assert audit.fails("error")
    made = accept(audit, [Ignore("WLB-CERT-EXPIRED"), Ignore("WLB-TARGET-UNREACHABLE")], DAY)
    assert made.counts() == {"error": 0, "warning": 2, "note": 0}
    assert not made.fails("error")
    assert made.fails("warning")
    assert len(made.findings) == len(audit.findings)  # still reported
    assert [f.rule_id for f in made.suppressed] == ["WLB-CERT-EXPIRED", "WLB-TARGET-UNREACHABLE"]
    # An accepted unreachable target is still unreachable, but does not fail the run.
    assert [t.target for t in made.unreachable] == ["pool3"]
    assert made.failed_targets == ()
    assert [t.target for t in audit.failed_targets] == ["pool3"]


def test_the_acceptance_holds_through_until_and_ends_the_day_after() -> None:
    ignore = Ignore("WLB-CERT-EXPIRED", "pool1", until=DAY, reason="renewal ordered")
    on_the_day = by_target(accept(fleet(), [ignore], DAY))["pool1", "WLB-CERT-EXPIRED"]
    assert on_the_day.suppressed
    day_after = accept(fleet(), [ignore], DAY + dt.timedelta(days=1))
    found = by_target(day_after)["pool1", "WLB-CERT-EXPIRED"]
    assert not found.suppressed
    assert found.acceptance is not None
    assert found.acceptance.expired
    assert found.acceptance.expired_on == dt.date(2025, 3, 2)
    assert day_after.fails("error")
    assert day_after.general == ()  # it matched: not unused


@pytest.mark.parametrize(("created", "suppressed"), [
    ("2025-03-01T23:59:59Z", True),   # the last second of the day, UTC
    ("2025-03-02T00:00:00Z", False),  # the first of the next
])
def test_today_is_the_runs_utc_date_by_default(created: str, suppressed: bool) -> None:
    ignore = Ignore("WLB-CERT-EXPIRED", until=DAY)
    assert run_date(fleet(created)) == dt.date.fromisoformat(created[:10])
    found = by_target(accept(fleet(created), [ignore]))["pool1", "WLB-CERT-EXPIRED"]
    assert found.suppressed is suppressed


def test_the_first_ignore_in_force_wins_and_the_latest_expired_one_dates_the_end() -> None:
    old = Ignore("WLB-CERT-EXPIRED", until=dt.date(2025, 1, 1), reason="old")
    older = Ignore("WLB-CERT-EXPIRED", until=dt.date(2024, 1, 1), reason="older")
    spec = Ignore("WLB-CERT-EXPIRED", reason="from the spec", line=7)
    cli = Ignore("WLB-CERT-EXPIRED")
    found = by_target(accept(fleet(), [old, spec, cli], DAY))["pool1", "WLB-CERT-EXPIRED"]
    assert found.acceptance.ignore is spec
    found = by_target(accept(fleet(), [older, old], DAY))["pool1", "WLB-CERT-EXPIRED"]
    assert found.acceptance.ignore is old
    assert found.acceptance.expired_on == dt.date(2025, 1, 2)


def test_an_ignore_that_matches_nothing_is_a_note_pointing_at_its_line() -> None:
    unused = Ignore("WLB-CERT-EXPIRING", "pool1", until=dt.date(2025, 1, 1), reason="x", line=9)
    made = accept(fleet(), [unused, Ignore("WLB-KEY-PERMISSIONS")], DAY)
    assert [f.rule_id for f in made.general] == [UNUSED, UNUSED]
    first, second = made.general
    assert first.level == "note"
    assert first.message == ("WLB-CERT-EXPIRING:pool1@2025-01-01 (audit.ignore, line 9) "
                             "matched no finding; it expired after 2025-01-01")
    assert (first.line, first.spec_path, first.target) == (9, "audit.ignore", "pool1")
    assert second.message == "WLB-KEY-PERMISSIONS (--ignore) matched no finding"
    assert (second.line, second.target) == (None, "")
    assert made.counts()["note"] == 2


def test_nothing_is_said_of_an_ignore_for_a_target_not_inspected() -> None:
    # pool3 is unreachable and pool9 was not selected (--target): nothing was checked there.
    made = accept(fleet(), [Ignore("WLB-CERT-EXPIRED", "pool3"),
                            Ignore("WLB-CERT-EXPIRED", "pool9")], DAY)
    assert made.general == ()
    nothing = Audit("spec.yaml", "2025-03-01T00:00:00Z",
                    (TargetAudit("pool3", (DOWN,), error="down"),))
    assert accept(nothing, [Ignore("WLB-CERT-EXPIRED")], DAY).general == ()


def test_an_ignore_of_the_unused_rule_silences_the_unused_notes() -> None:
    made = accept(fleet(), [Ignore("WLB-KEY-PERMISSIONS"), Ignore(UNUSED, reason="shared list")],
                  DAY)
    (note,) = made.general
    assert note.suppressed
    assert note.acceptance.reason == "shared list"
    # With nothing to silence, it is unused itself.
    (alone,) = accept(fleet(), [Ignore(UNUSED)], DAY).general
    assert alone.message == "WLB-IGNORE-UNUSED (--ignore) matched no finding"
    assert not alone.suppressed


@pytest.mark.parametrize(("text", "expected"), [
    ("WLB-CERT-EXPIRED", Ignore("WLB-CERT-EXPIRED")),
    ("WLB-CERT-EXPIRED:pool-1.a_b", Ignore("WLB-CERT-EXPIRED", "pool-1.a_b")),
    ("WLB-CERT-EXPIRED@2025-03-01", Ignore("WLB-CERT-EXPIRED", until=DAY)),
    ("WLB-CERT-EXPIRED:p1@2025-03-01", Ignore("WLB-CERT-EXPIRED", "p1", DAY)),
])
def test_the_option_is_read_into_its_value_and_back(text: str, expected: Ignore) -> None:
    assert parse_option(text) == expected
    assert expected.text == text
    assert expected.origin == "--ignore"


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected RULE[:TARGET][@YYYY-MM-DD]"),
    ("WLB-X:a:b", "expected RULE[:TARGET][@YYYY-MM-DD]"),
    ("WLB-X@2025-03-01@2025-04-01", "expected RULE[:TARGET][@YYYY-MM-DD]"),
    ("WLB-X:", "expected RULE[:TARGET][@YYYY-MM-DD]"),
    ("WLB-X@tomorrow", "'tomorrow' is not a date YYYY-MM-DD"),
    ("WLB-X@2025-02-29", "'2025-02-29' is not a day of the calendar"),
    ("WLB-X@2025-3-1", "'2025-3-1' is not a date YYYY-MM-DD"),
])
def test_a_malformed_option_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^.*" + message.replace("[", r"\[").replace("]", r"\]")):
        parse_option(text)


def test_rule_ids_are_checked_against_the_catalogue_with_a_close_match() -> None:
    assert rule_problem("WLB-CERT-EXPIRED") is None
    assert rule_problem("wlb-cert-expird") == (
        "unknown rule id 'wlb-cert-expird'; did you mean WLB-CERT-EXPIRED? "
        "(wlbplan audit --list-rules lists them)")
    assert rule_problem("nothing like it") == (
        "unknown rule id 'nothing like it' (wlbplan audit --list-rules lists them)")


def test_targets_are_checked_against_the_spec_with_a_close_match() -> None:
    names = ["pool1", "pool2"]
    assert target_problem(Ignore("WLB-X"), names) is None
    assert target_problem(Ignore("WLB-X", "pool2"), names) is None
    assert target_problem(Ignore("WLB-X", "poool1"), names) == (
        "WLB-X:poool1: no target named 'poool1'; did you mean 'pool1'?")
    assert target_problem(Ignore("WLB-X", "zzz"), names) == (
        "WLB-X:zzz: no target named 'zzz'; targets: pool1, pool2")
