"""Two applies started at the same moment on one pool: exactly one runs, the other is
refused naming the lock's owner (exit 1), and the pool ends as the winner left it.

The race is made tight on purpose: both runs plan, then wait at a FIFO just before they
take the lock, and are released by one write (the kernel wakes both readers at once).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from applylab import (
    PYTHON,
    TARGET,
    Children,
    assert_applied,
    finish,
    history,
    lock_file,
    no_key_material,
    plan_now,
    running_lab,
)

from wlbplan.errors import LockError
from wlbplan.lab import control
from wlbplan.model.lock import LockInfo
from wlbplan.run import lock
from wlbplan.run.sessions import open_sessions

pytestmark = pytest.mark.lab


# ---- the lock's record is never seen half-written ---------------------------------------

_SLOW_WRITER = """#!/bin/sh
# cat as the lock's writer runs it (no argument: stdin to a file), one second slower:
# the window between a file's creation and its content, made wide enough to land in.
[ $# -eq 0 ] && sleep 1
exec /bin/cat "$@"
"""


def test_the_loser_of_a_race_names_the_winner_never_a_half_written_lock(
        lab: control.Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both take the lock at once while writing a lock record is slow: whatever the
    interleaving, one holds it and the other's refusal names that one's id and owner
    (a lock file visible before its record is written would read as "unreadable")."""
    planned = plan_now(lab.spec_path)
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "cat").write_text(_SLOW_WRITER)
    (slow / "cat").chmod(0o755)
    monkeypatch.setenv("PATH", f"{slow}:{os.environ['PATH']}")
    start = threading.Barrier(2)
    got: dict[str, LockInfo | LockError] = {}

    def take(name: str) -> None:
        with open_sessions(planned.spec, planned.target) as sessions:
            start.wait()
            try:
                got[name] = lock.acquire(sessions.pool, planned.target)
            except LockError as err:
                got[name] = err

    threads = [threading.Thread(target=take, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    won = [v for v in got.values() if isinstance(v, LockInfo)]
    lost = [v for v in got.values() if isinstance(v, LockError)]
    assert len(won) == 1, got
    assert len(lost) == 1, got
    said = str(lost[0])
    for part in (won[0].id, won[0].owner, f"pid {won[0].pid}"):
        assert part in said, said
    assert "unreadable" not in said
    assert json.loads(lock_file(lab).read_text())["id"] == won[0].id
    with open_sessions(planned.spec, planned.target) as sessions:
        assert lock.release(sessions.pool, planned.target, won[0].id)
    assert sorted(os.listdir(lock_file(lab).parent)) == [], "the lock folder kept a file"


# ---- two operators, one pool, the same moment -------------------------------------------

def _holds(pid: int, path: Path) -> bool:
    """Does process ``pid`` have ``path`` open?"""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def _released_together(fifo: Path, marks: list[Path], procs: list[Any]) -> None:
    """Once every run waits at the FIFO, release them all at once: with a writer open,
    each reader's open() returns and its read() blocks until the writer is closed;
    that close wakes them all at the same instant."""
    deadline = time.monotonic() + 90

    def waiting() -> None:
        for proc in procs:
            assert proc.poll() is None, finish(proc)
        assert time.monotonic() < deadline, "a run never reached the barrier"
        time.sleep(0.01)

    while not all(m.exists() for m in marks):
        waiting()
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until a reader opens
            break
        except OSError:
            waiting()
    try:
        while not all(_holds(proc.pid, fifo) for proc in procs):
            waiting()
    finally:
        os.close(fd)


def _lock_id(folder: Path) -> str:
    header = json.loads(history(folder)[0].read_text().splitlines()[0])
    lock_id: str = header["lock_id"]
    return lock_id


def test_two_applies_at_once_one_runs_the_other_is_refused_naming_it(
        tmp_path: Path, children: Children) -> None:
    """Two operators on one workstation (both use the spec's state folder: the journal
    is shared too), end to end. Two workstations (a state folder each) meet at the
    lock alone: that race is repeated, cheaply, below; a paused apply in
    test_lock.py::test_two_concurrent_applies_exactly_one_runs covers the rest."""
    with running_lab(tmp_path / "lab", hosts=1) as lab:
        spec = str(lab.spec_path)
        fifo = tmp_path / "barrier"
        os.mkfifo(fifo)
        marks, procs, folders = [], [], []
        for name in ("a", "b"):
            mark = tmp_path / f"at-lock-{name}"
            folder = lab.spec_path.parent / ".wlbplan"
            hook = {"on": "before_lock", "do": "barrier", "mark": str(mark),
                    "fifo": str(fifo)}
            procs.append(children.hooked(hook, "apply", spec, "--auto-approve",
                                         "--state-dir", str(folder)))
            marks.append(mark)
            folders.append(folder)
        _released_together(fifo, marks, procs)
        done = [finish(proc) for proc in procs]
        codes = [code for code, _, _ in done]
        assert sorted(codes) == [0, 1], done
        won = codes.index(0)
        _, _, refused = done[1 - won]
        for _, out, err in done:
            no_key_material(out, err)
            assert "Traceback" not in err, err
        # The refusal names the lock as the winner recorded it: id, owner, pid.
        assert "another apply is running on this pool" in refused, refused
        assert _lock_id(folders[won]) in refused, refused
        assert f"pid {procs[won].pid}" in refused, refused
        assert "unreadable" not in refused, refused
        assert "unknown" not in refused, refused
        assert not lock_file(lab).exists()
        # The pool is as the winner left it: applied, nothing left to plan, a clean audit.
        assert_applied(lab)
        checks = [children.wlbplan("plan", spec, "--detailed-exitcode"),
                  children.wlbplan("audit", spec, "--fail-on", "error")]
        (planned, plan_out, plan_err), (audited, audit_out, audit_err) = \
            (finish(p) for p in checks)
        assert planned == 0, plan_out + plan_err
        assert "No changes." in plan_out, plan_out
        assert audited == 0, audit_out + audit_err


def test_simultaneous_takes_of_the_lock_exactly_one_wins_every_time(
        lab: control.Lab) -> None:
    """The lock's race, round after round: two takers released together, one holds the
    lock, the other's refusal names it; released, the next round starts clean."""
    planned = plan_now(lab.spec_path)
    with open_sessions(planned.spec, planned.target) as first, \
            open_sessions(planned.spec, planned.target) as second:
        for round_ in range(20):
            start = threading.Barrier(2)
            got: list[LockInfo | LockError] = []

            def take(sessions: Any, start: threading.Barrier = start,
                     got: list[LockInfo | LockError] = got) -> None:
                start.wait()
                try:
                    got.append(lock.acquire(sessions.pool, planned.target))
                except LockError as err:
                    got.append(err)

            threads = [threading.Thread(target=take, args=(s,)) for s in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            won = [g for g in got if isinstance(g, LockInfo)]
            lost = [str(g) for g in got if isinstance(g, LockError)]
            assert len(won) == 1, (round_, got)
            assert len(lost) == 1, (round_, got)
            assert won[0].id in lost[0], lost[0]
            assert f"pid {won[0].pid}" in lost[0], lost[0]
            assert lock.release(first.pool, planned.target, won[0].id)
    assert sorted(os.listdir(lock_file(lab).parent)) == [], "the lock folder kept a file"


def test_the_barrier_releases_runs_together(tmp_path: Path) -> None:
    """The FIFO barrier of the race above: two readers waiting at it leave read() at the
    same instant (measured after they are scheduled again: within 0.2 s on a busy
    machine, where planning alone differs by a second or more between two runs)."""
    fifo = tmp_path / "barrier"
    os.mkfifo(fifo)
    code = ("import os, sys, time\nfrom pathlib import Path\n"
            "Path(sys.argv[2]).write_text('x')\n"
            "with open(sys.argv[1], 'rb') as f: f.read()\n"
            "print(time.time())\n")
    marks = [tmp_path / "m1", tmp_path / "m2"]
    procs = [subprocess.Popen([PYTHON, "-c", code, str(fifo), str(m)],
                              stdout=subprocess.PIPE, text=True) for m in marks]
    _released_together(fifo, marks, procs)
    times = [float(p.communicate(timeout=30)[0]) for p in procs]
    assert abs(times[0] - times[1]) < 0.2, times


_ = TARGET  # the lab's one target, named in the messages checked above
