"""The apply journal (wlbplan/run/journal.py) and the undo loop (apply.undo_entries), no lab."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan.limits import JOURNAL as JOURNAL_CAP
from wlbplan.run import apply as apply_mod
from wlbplan.run.journal import (
    JOURNAL,
    Journal,
    JournalError,
    Replay,
    journal_owner_alive,
)

HEADER = {"target": "pool1", "lock_id": "L-1", "spec": "/x/spec.yaml", "spec_digest": "d",
          "observed_digest": "o"}


def _journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / "state", "pool1")
    journal.begin(HEADER)
    return journal


def _indices(entries: list[Any]) -> list[int]:
    return [e.index for e in entries]


def test_begin_step_done_replay(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.step(1, "pool.install_ca", {"kind": "pool.uninstall_ca", "name": "a.pem"})
    journal.done(1)
    journal.step(2, "pool.preflight", None)
    replay = journal.replay()
    assert replay.header["lock_id"] == "L-1"
    assert replay.header["event"] == "begin"
    assert [(e.index, e.action) for e in replay.started] == [(1, "pool.install_ca"),
                                                             (2, "pool.preflight")]
    assert replay.started[0].undo == {"kind": "pool.uninstall_ca", "name": "a.pem"}
    assert replay.done == {1}
    assert replay.ended is None
    # one JSON object per line, each with a time
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 4
    assert all("time" in json.loads(line) for line in lines)


def test_pending_undo_is_last_in_first_out(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    for index in range(1, 6):
        journal.step(index, f"a{index}", {"kind": "k", "n": index})
        journal.done(index)
    assert _indices(journal.replay().pending_undo()) == [5, 4, 3, 2, 1]


def test_a_started_step_that_never_finished_is_undone_too(tmp_path: Path) -> None:
    """Its undo was journaled before it ran: it may have half-happened."""
    journal = _journal(tmp_path)
    journal.step(1, "a", {"kind": "k"})
    journal.done(1)
    journal.step(2, "b", {"kind": "k"})
    assert _indices(journal.replay().pending_undo()) == [2, 1]


def test_replay_of_a_journal_cut_mid_line(tmp_path: Path) -> None:
    """A crash while a line was written: the cut line is ignored, the rest counts."""
    journal = _journal(tmp_path)
    journal.step(1, "a", {"kind": "k", "n": 1})
    journal.done(1)
    journal.step(2, "b", {"kind": "k", "n": 2})
    whole = journal.path.read_bytes()
    cut = json.dumps({"event": "done", "index": 2, "time": "2026-01-01T00:00:00Z"})
    journal.path.write_bytes(whole + cut[: len(cut) // 2].encode())
    replay = journal.replay()
    assert replay.done == {1}, "a cut `done` line must not count"
    assert _indices(replay.pending_undo()) == [2, 1]

    # A cut `step` line: that step never started (its undo was not on disk in full).
    journal.path.write_bytes(whole + b'{"event": "step", "index": 3, "action": "c", "un')
    assert _indices(journal.replay().pending_undo()) == [2, 1]


@pytest.mark.parametrize(("content", "why"), [
    (b"", "it is empty"),
    (b'{"event": "begin", "lock_', "its first line was cut short"),
])
def test_a_journal_without_its_header_says_nothing_ran_and_keeps_the_lock(
        tmp_path: Path, content: bytes, why: str) -> None:
    """Never "rolled back" with the lock kept: the header is written before any step, so
    none ran, and the lock's id was never recorded."""
    folder = tmp_path / "state" / "pool1"
    folder.mkdir(parents=True)
    (folder / JOURNAL).write_bytes(content)
    with pytest.raises(JournalError) as caught:
        Journal(tmp_path / "state", "pool1").replay()
    message = str(caught.value)
    assert why in message
    assert "stopped before its first step" in message
    assert "force-unlock" in message


@pytest.mark.parametrize(("lines", "why"), [
    ([b"\xff\xfe garbage \x00\x01"], "not UTF-8 text"),
    ([b'{"event": "begin", "target": "pool1", "lock_id": "L-1"}',
      b'{"event": "step", "index": 1, "action": "a", "undo": {"kind": "k"}}',
      b'{"event": "done", "ind'], ""),  # the cut last line: a crash, not damage
    ([b'{"event": "begin", "target": "pool1", "lock_id": "L-1"}', b'{"event": "step", "in',
      b'{"event": "done", "index": 1}'], "line 2 is not JSON"),
    ([b'[1, 2]'], "line 1: not a JSON object"),
    ([b'{"event": "step", "index": 1, "action": "a", "undo": null}'], "header (event begin)"),
    ([b'{"event": "begin", "target": "pool1"}', b'{"event": "step", "index": "1", '
      b'"action": "a", "undo": null}'], "step.index is not a int"),
    ([b'{"event": "begin", "target": "pool1"}', b'{"event": "step", "index": true, '
      b'"action": "a", "undo": null}'], "step.index is not a int"),
    ([b'{"event": "begin", "target": "pool1"}', b'{"event": "step", "index": 1, '
      b'"action": "a", "undo": "rm -rf /"}'], "step.undo is not a dict"),
    ([b'{"event": "begin", "target": "pool1"}', b'{"event": "explode"}'], "unknown event"),
    ([b'{"event": "begin", "target": "pool2"}'], "written for target 'pool2'"),
])
def test_a_damaged_journal_is_a_clear_journal_error(tmp_path: Path, lines: list[bytes],
                                                    why: str) -> None:
    folder = tmp_path / "state" / "pool1"
    folder.mkdir(parents=True)
    (folder / JOURNAL).write_bytes(b"\n".join(lines) + (b"" if not why else b"\n"))
    journal = Journal(tmp_path / "state", "pool1")
    if not why:
        assert journal.replay().done == set()
        return
    with pytest.raises(JournalError) as caught:
        journal.replay()
    assert why in str(caught.value)
    assert "damaged" in str(caught.value)
    assert "nothing was undone" in str(caught.value)


def test_a_journal_over_the_cap_is_damaged_not_read(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    with open(journal.path, "ab") as handle:
        handle.truncate(JOURNAL_CAP.size + 1)
    with pytest.raises(JournalError, match=str(JOURNAL_CAP)):
        journal.replay()


def test_undone_ok_entries_are_not_undone_twice_failed_ones_are_retried(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    for index in (1, 2, 3, 4):
        journal.step(index, f"a{index}", {"kind": "k", "n": index})
        journal.done(index)
    journal.undone(4, True)
    journal.undone(3, False, "stunnel did not restart")
    journal.undone(2, True)
    assert _indices(journal.replay().pending_undo()) == [3, 1]
    journal.undone(3, True)  # retried later, and it worked
    assert _indices(journal.replay().pending_undo()) == [1]


def test_begin_refuses_when_a_journal_is_left(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    again = Journal(tmp_path / "state", "pool1")
    with pytest.raises(JournalError, match=r"wlbplan rollback SPEC --target pool1"):
        again.begin(HEADER)
    assert str(journal.path) in journal.leftover_message("pool1")


def test_end_archives_to_history(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.step(1, "a", None)
    archived = journal.end("rolled_back")
    assert not journal.exists()
    assert archived.parent == journal.folder / "history"
    assert archived.name.endswith("-rolled_back.jsonl")
    last = json.loads(archived.read_text().splitlines()[-1])
    assert last["event"] == "end"
    assert last["outcome"] == "rolled_back"
    # a new journal can begin afterwards
    Journal(tmp_path / "state", "pool1").begin(HEADER)


def test_the_state_folder_is_private(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    assert journal.folder.stat().st_mode & 0o777 == 0o700


def test_unreadable_journal_is_a_journal_error(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "pool1" / JOURNAL
    folder.mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(JournalError, match="cannot read the journal"):
        Journal(tmp_path / "state", "pool1").replay()


# ---- the undo loop -----------------------------------------------------------------------

def _ctx() -> Any:
    return SimpleNamespace(target=SimpleNamespace(name="pool1"))


def test_undo_entries_run_each_once_in_the_order_given_past_failures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _journal(tmp_path)
    for index in (1, 2, 3, 4):
        journal.step(index, f"act{index}", None if index == 2 else {"kind": "k", "n": index})
        journal.done(index)
    calls: list[int] = []

    def undo(ctx: Any, record: dict[str, Any]) -> None:
        calls.append(record["n"])
        if record["n"] == 3:
            raise RuntimeError("undo 3 broke")

    monkeypatch.setattr(apply_mod.actions, "undo", undo)
    events: list[dict[str, Any]] = []
    entries = journal.replay().pending_undo()
    undone, failures = apply_mod.undo_entries(_ctx(), journal, entries, events.append)
    assert calls == [4, 3, 1], "LIFO, each once, past the failure; no undo for step 2"
    assert undone == ["pool1.04.act4", "pool1.01.act1"]
    assert failures == ["pool1.03.act3: undo 3 broke. By hand: restore what this step "
                        "changed (its undo record is in the journal)"]
    assert [e["type"] for e in events] == ["rollback_complete", "rollback_errored",
                                          "rollback_complete"]
    # What is left for `wlbplan rollback`: only the failed undo.
    assert _indices(journal.replay().pending_undo()) == [3]

    calls.clear()
    monkeypatch.setattr(apply_mod.actions, "undo", lambda ctx, record: calls.append(record["n"]))
    undone, failures = apply_mod.undo_entries(_ctx(), journal,
                                              journal.replay().pending_undo(), events.append)
    assert calls == [3]
    assert failures == []
    assert journal.replay().pending_undo() == []



# ---- apply --resume ------------------------------------------------------------------------

def test_resume_record_takes_over_the_header(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.step(1, "a", {"kind": "k"})
    journal.resume({"pid": 4242, "host": "h2", "owner": "op@h2", "lock_id": "L-2"})
    header = journal.replay().header
    assert (header["pid"], header["host"], header["lock_id"]) == (4242, "h2", "L-2")
    assert header["spec_digest"] == "d"  # the rest of the dead run's header stays
    assert header["time"] == json.loads(journal.path.read_text().splitlines()[0])["time"]


def test_unfinished_is_the_step_that_started_and_neither_finished_nor_was_undone(
        tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.step(1, "a", {"kind": "k"})
    journal.done(1)
    journal.step(2, "b", {"kind": "k"})
    assert _indices(journal.replay().unfinished()) == [2]
    journal.undone(2, True)
    assert journal.replay().unfinished() == []
    assert not journal.replay().done & {2}


def test_a_step_run_again_after_its_undo_is_undone_again(tmp_path: Path) -> None:
    """Resume undoes the step a dead run was in, then runs it again: a later rollback
    must undo that second run (undos match entries, not step numbers)."""
    journal = _journal(tmp_path)
    journal.step(1, "a", {"kind": "k", "n": 1})
    journal.done(1)
    journal.step(2, "b", {"kind": "k", "run": "first"})
    journal.undone(2, True)  # resume: the half-done step undone ...
    journal.step(2, "b", {"kind": "k", "run": "second"})  # ... and run again
    journal.done(2)
    replay = journal.replay()
    assert replay.done == {1, 2}
    assert replay.unfinished() == []
    assert [e.undo for e in replay.pending_undo()] == [
        {"kind": "k", "run": "second"}, {"kind": "k", "n": 1}]
    assert replay.undo_attempted


# ---- the strict reader on anything (issue 10) --------------------------------------------

# Cheap, flat, and every JSON type (2,000 examples run in CI): values of the wrong type.
JSONISH = st.one_of(st.sampled_from([None, True, False, 0, -1, 2**70, 1.5, "", "x", [], {},
                                     [1], ["a", "b"], {"kind": "x"}, [[1]]]),
                    st.integers(-3, 8), st.text(max_size=8))
# Records shaped like wlbplan's: an event and some of the fields records have, each a
# value it could hold or one of another type (cheap draws: 2,000 examples run in CI).
FIELDS = st.sampled_from(["target", "index", "action", "undo", "ok", "purpose", "failures",
                          "outcome", "lock_id", "pid", "host", "plan"])
VALUES = st.one_of(
    st.sampled_from(["pool1", 1, 2, "pool.install_ca", {"kind": "local.remove", "path": "/x"},
                     {"kind": []}, True, "rollback", "resume", ["what failed"], "applied",
                     "L-1", 2**70, -1, 0, socket.gethostname(), {"format_version": "9"}]),
    JSONISH)
RECORD = st.builds(
    lambda event, fields: {**fields, "event": event},
    st.sampled_from(["begin", "resume", "step", "done", "undone", "incomplete", "end",
                     "explode"]) | JSONISH,
    st.dictionaries(FIELDS, VALUES, max_size=5))
HEADED = st.tuples(st.booleans(), st.lists(RECORD, max_size=6), st.booleans()).map(
    lambda t: ([{"event": "begin", "target": "pool1"}] if t[0] else []) + t[1])


def _lines(records: list[Any], cut: bool) -> bytes:
    raw = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    return raw[:-7] if cut and raw else raw


def _parsed(raw: bytes) -> tuple[Replay | None, str]:
    try:
        return Journal(Path("/nonexistent/state"), "pool1").parse(raw), ""
    except JournalError as err:  # the one error a journal may give
        return None, str(err)


JOURNALS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(_lines, HEADED, st.booleans()),
    st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"event"', b":", b",", b'"begin"',
                              b"\n", b"1", b"null", b"\xff"]), max_size=40).map(b"".join),
)


@PARSER
@given(JOURNALS)
@example(b'{"event": "begin", "target": "pool1", "host": "%s", "pid": %d}\n'
         % (socket.gethostname().encode(), 2**70))  # kill(2) took it: OverflowError
@example(b"[" * 100_000 + b"\n")  # json.loads: RecursionError
def test_any_journal_is_a_replay_or_a_journal_error(raw: bytes) -> None:
    replay, error = _parsed(raw)
    if replay is None:
        assert "damaged" in error
        return
    assert replay.header.get("target") == "pool1"
    assert all(isinstance(e.index, int) and isinstance(e.action, str) for e in replay.started)
    assert all(e.undo is None or isinstance(e.undo, dict) for e in replay.started)
    replay.pending_undo()
    replay.unfinished()
    assert all(isinstance(f, str) for f in replay.incomplete)
    assert journal_owner_alive(replay.header) in (True, False)
