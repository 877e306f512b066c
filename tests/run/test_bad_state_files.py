"""A lock file that is not a lock record wlbplan writes (issue 10): garbage, empty, cut
short, JSON of another shape or with fields of the wrong type. Whoever can write the
coordinator's state folder chooses these bytes, and an apply that died may leave them
half-written.

`rollback`, `apply --resume` and `apply` refuse with exit 1 and say what to do
(force-unlock the unreadable lock); `plan` and `audit` report the pool as locked by an
unreadable lock. Nothing changes: the lab's files, the journal and the lock file stay
byte for byte. A damaged *journal* is the same story, proven by
tests/run/test_journal_trust.py::test_a_damaged_journal_is_exit_1_with_advice_and_the_lock_stays.

Before: a lock whose fields had the wrong types made `plan` and `audit` crash (exit 3:
``'int' object has no attribute 'rpartition'``, ``'str' object cannot be interpreted as
an integer``).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from applylab import (
    Children,
    Snapshot,
    finish,
    journal_path,
    lock_file,
    running_lab,
    snapshot,
    snapshot_diff,
    state_dir,
)

from wlbplan.cli import main
from wlbplan.lab import control

pytestmark = pytest.mark.lab

INTERNALS = re.compile(r"Traceback|Internal error|\b\w+(Error|Exception)\b")
REAL = {"id": "5f0c6a52-5a6e-4f4e-9d0b-2a4ad0c0ffee", "owner": "ops@elsewhere", "pid": 4242,
        "created": "2026-01-01T00:00:00Z", "target": "pool1"}


def _json(**changed: object) -> bytes:
    return json.dumps({**REAL, **changed}).encode()


LOCKS = {
    "garbage": b"\x8f\xff\x00garbage \x1b[31m\n\x9c",
    "empty": b"",
    "cut-short": _json()[:40],
    "a-list": b'["5f0c6a52", "ops", 4242]',
    "wrong-types": b'{"id": 5, "owner": 7, "pid": "x", "created": [], "target": null}',
    "pid-as-text": _json(pid="4242"),
    "pid-zero": _json(pid=0),
    "extra-field": _json(command="rm -rf /"),
    "id-with-shell-words": _json(id="x; touch /tmp/wlbplan-pwned #"),
    "nested-too-deeply": b"[" * 100_000,
}
UNREADABLE = "is not a lock record wlbplan writes"


@dataclass
class Dead:
    """A lab where an apply was killed at step 2: its journal and its lock are left."""

    lab: control.Lab
    journal: bytes
    files: Snapshot

    def spec(self) -> str:
        return str(self.lab.spec_path)


@pytest.fixture(scope="module")
def dead(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dead]:
    children = Children()
    with running_lab(tmp_path_factory.mktemp("bad-state") / "lab", hosts=1) as lab:
        try:
            proc = children.hooked({"on": "apply_start", "step": 2, "do": "sigkill"},
                                   "apply", str(lab.spec_path), "--auto-approve")
            code, _, err = finish(proc)
            assert code == -signal.SIGKILL, err
            yield Dead(lab, journal_path(state_dir(lab)).read_bytes(), snapshot(lab))
        finally:
            children.stop_all()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out + err


def _unchanged(dead: Dead, lock: bytes) -> None:
    assert not snapshot_diff(dead.files, snapshot(dead.lab))
    assert journal_path(state_dir(dead.lab)).read_bytes() == dead.journal
    assert lock_file(dead.lab).read_bytes() == lock


@pytest.mark.parametrize("content", list(LOCKS.values()), ids=list(LOCKS))
def test_rollback_resume_and_apply_refuse_an_unreadable_lock_and_change_nothing(
        dead: Dead, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    lock_file(dead.lab).write_bytes(content)
    for argv, says in [(("rollback", dead.spec(), "--target", "pool1"), "nothing was undone"),
                       (("apply", dead.spec(), "--resume"), "nothing was resumed"),
                       (("apply", dead.spec(), "--auto-approve"), "did not finish")]:
        code, said = run(capsys, *argv)
        assert code == 1, (argv, said)
        assert says in said, (argv, said)
        if argv[0] != "apply" or "--resume" in argv:  # apply stops at the journal first
            assert UNREADABLE in said, (argv, said)
            assert "wlbplan force-unlock" in said
            assert " unreadable --target pool1" in said
        assert not INTERNALS.search(said), (argv, said)
        _unchanged(dead, content)


# The two that crashed plan and audit.
@pytest.mark.parametrize("content", [LOCKS["wrong-types"], LOCKS["pid-as-text"]],
                         ids=["wrong-types", "pid-as-text"])
def test_plan_and_audit_report_an_unreadable_lock(dead: Dead, content: bytes,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lock_file(dead.lab).write_bytes(content)
    for argv in (("plan", dead.spec()), ("audit", dead.spec(), "--fail-on", "never")):
        code, said = run(capsys, *argv)
        assert code in (0, 1), (argv, said)  # plan: 1 (the dead apply's journal blocks it)
        assert "the pool is locked: a lock file wlbplan cannot read" in said, (argv, said)
        assert not INTERNALS.search(said), (argv, said)
        _unchanged(dead, content)


def test_with_no_journal_apply_refuses_the_unreadable_lock(
        dead: Dead, capsys: pytest.CaptureFixture[str]) -> None:
    """No journal (an apply that died before its first step): the lock alone stops apply."""
    journal = journal_path(state_dir(dead.lab))
    aside = journal.with_name("aside")
    lock_file(dead.lab).write_bytes(LOCKS["garbage"])
    journal.rename(aside)
    try:
        code, said = run(capsys, "apply", dead.spec(), "--auto-approve")
        assert not journal.exists()
    finally:
        aside.rename(journal)
    assert code == 1, said
    assert UNREADABLE in said, said
    assert "nothing was changed" in said, said
    assert not INTERNALS.search(said), said
    _unchanged(dead, LOCKS["garbage"])
