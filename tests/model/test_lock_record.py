"""The apply lock's record as read back from the coordinator (model/lock.parse_lock): the
file is the coordinator's, so any bytes may be in it. Only the exact record wlbplan
writes is believed; anything else is the unreadable lock, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan.model.lock import UNREADABLE, LockInfo, parse_lock
from wlbplan.run.lock import owner_alive

RECORD = {"id": "5f0c6a52-5a6e-4f4e-9d0b-2a4ad0c0ffee", "owner": "ops@host", "pid": 4242,
          "created": "2026-01-01T00:00:00Z", "target": "pool1"}


def test_the_record_wlbplan_writes_is_read_back() -> None:
    assert parse_lock(json.dumps(RECORD), "pool1") == LockInfo(**RECORD)


@pytest.mark.parametrize("changed", [
    {"pid": "4242"}, {"pid": True}, {"pid": 0}, {"pid": -1}, {"pid": 2**31}, {"pid": 1.5},
    {"owner": 7}, {"created": None}, {"target": []}, {"id": 5}, {"id": ""},
    {"id": "x; rm -rf ~"}, {"id": "-rf"}, {"id": "a" * 65}, {"id": UNREADABLE},
    {"extra": 1},
])
def test_any_other_record_is_the_unreadable_lock(changed: dict[str, Any]) -> None:
    """Before, a pid given as text or an owner given as a number reached owner_alive and
    crashed plan and audit (exit 3)."""
    got = parse_lock(json.dumps({**RECORD, **changed}), "pool1")
    assert got.unreadable
    assert got.target == "pool1"
    assert owner_alive(got) is None


@pytest.mark.parametrize("text", ["", "garbage", "[1, 2]", "null", '{"id": "a"', "[" * 50_000])
def test_text_that_is_no_record_is_the_unreadable_lock(text: str) -> None:
    assert parse_lock(text, "pool1").unreadable


def test_the_unreadable_lock_says_so_in_words() -> None:
    assert "a lock file wlbplan cannot read" in parse_lock("", "pool1").describe()


# Cheap, flat, and every JSON type (2,000 examples run in CI): values of the wrong type.
ODD = st.one_of(st.sampled_from([None, True, False, 0, -1, 2**31, 2**70, 1.5, "", "4242", [],
                                 {}, ["x"], {"id": "x"}]),
                st.integers(), st.text(max_size=12))
# Records with wlbplan's five fields, each of any JSON type, sometimes one more or less.
RECORDS = st.fixed_dictionaries(
    {k: st.one_of(st.just(v), ODD) for k, v in RECORD.items()},
    optional={"more": ODD},
).map(json.dumps)


@PARSER
@given(st.one_of(st.text(max_size=200), RECORDS,
                 st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace"))))
@example('{"id": 5, "owner": 7, "pid": "x", "created": [], "target": null}')
@example(json.dumps({**RECORD, "pid": "12"}))
def test_any_text_is_a_lock_wlbplan_can_show_and_judge(text: str) -> None:
    got = parse_lock(text, "pool1")
    assert isinstance(got, LockInfo)
    assert "\n" not in got.describe()
    if not got.unreadable:
        assert type(got.pid) is int
        assert all(isinstance(v, str) for v in (got.id, got.owner, got.created, got.target))
    assert owner_alive(got) in (True, False, None)
