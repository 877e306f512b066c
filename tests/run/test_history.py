"""The state folder's history, read for the audit: how the newest apply with an ACME order
ended, and why it was rolled back. Every file is untrusted: one that is not a journal
wlbplan wrote, or that others could have written, is passed over."""

from __future__ import annotations

import os
import time
from pathlib import Path

from wlbplan.run.history import last_order
from wlbplan.run.journal import Journal

TARGET = "pool1"


def _apply(state: Path, stage: str, outcome: str, reason: str | None = None) -> Path:
    journal = Journal(state, TARGET)
    journal.begin({"target": TARGET, "lock_id": "L", "plan": {"stage": stage, "steps": []}})
    journal.step(1, "appliance.generate_key", None)
    archived = journal.end(outcome, reason)
    time.sleep(0.001)  # history names are stamped to the microsecond: keep them in order
    return archived


def test_none_without_a_history(tmp_path: Path) -> None:
    assert last_order(tmp_path / "state", TARGET) is None


def test_the_newest_order_and_why_it_was_rolled_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _apply(state, "order", "applied")
    _apply(state, "order", "rolled_back", "pool1.03.acme.order: the CA said: \x1b[31mno")
    _apply(state, "trust", "applied")  # a later apply without an order changes nothing
    found = last_order(state, TARGET)
    assert found is not None
    assert found.failed
    assert found.outcome == "rolled_back"
    assert found.reason is not None
    assert found.reason.startswith("pool1.03.acme.order: the CA said: ")
    assert "\x1b" not in found.reason  # host words, shown escaped
    _apply(state, "order", "applied")  # the next order worked: no longer failing
    again = last_order(state, TARGET)
    assert again is not None
    assert not again.failed


def test_files_that_are_not_trusted_journals_are_passed_over(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _apply(state, "order", "rolled_back", "the real one")
    history = state / TARGET / "history"
    (history / "99999999T999999999999Z-rolled_back.jsonl").write_text("not json\n")
    planted = history / "99999999T999999999998Z-applied.jsonl"
    planted.symlink_to(history / "99999999T999999999999Z-rolled_back.jsonl")
    found = last_order(state, TARGET)
    assert found is not None
    assert found.reason == "the real one"
    os.chmod(history, 0o777)  # anyone could have written what it says: nothing is read
    assert last_order(state, TARGET) is None
