"""The apply lock on the coordinator: one apply per pool, waits, force-unlock, dead owners.

A run is held still at a known point by the child hook ``pause`` (tests/run/_child.py):
it has taken the lock and journaled step 1, and waits for a file before going on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from applylab import (
    PYTHON,
    TARGET,
    Children,
    assert_applied,
    assert_restored,
    before,
    finish,
    journal_path,
    lock_file,
    plan_now,
    run_apply,
    snapshot,
    snapshot_diff,
    state_dir,
    wait_for_text,
    wlbplan,
    xe,
)

from wlbplan.errors import LockError
from wlbplan.lab import control
from wlbplan.model.lock import LockInfo
from wlbplan.run import lock
from wlbplan.run.sessions import open_sessions

pytestmark = pytest.mark.lab


class TrustLost(AssertionError):
    """An apply or its rollback lost trust (or the flag) that the pool had and needs."""


class KnownBug(AssertionError):
    """The behaviour an xfail(raises=KnownBug) test is about (not its set-up)."""


def _paused_apply(lab: control.Lab, children: Children, folder: Path, *extra: str,
                  on: str = "apply_start", step: int = 1) -> tuple[Any, Path, dict[str, Any]]:
    """An apply that holds the pool's lock and waits; returns (process, go-file, lock)."""
    mark, go = folder / "paused", folder / "go"
    proc = children.hooked({"on": on, "step": step, "do": "pause", "mark": str(mark),
                            "until": str(go), "timeout": 90},
                           "apply", str(lab.spec_path), "--auto-approve", *extra)
    deadline = time.monotonic() + 60
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first apply never reached its pause"
        time.sleep(0.05)
    return proc, go, json.loads(lock_file(lab).read_text())


def test_two_concurrent_applies_exactly_one_runs(lab: control.Lab, children: Children,
                                                 tmp_path: Path) -> None:
    """Two operators (two workstations: two state folders) apply to one pool at once."""
    first, go, held = _paused_apply(lab, children, tmp_path)
    assert held["pid"] == first.pid
    assert held["owner"]
    assert held["created"]
    assert held["target"] == TARGET
    during = snapshot(lab)
    second = wlbplan("apply", str(lab.spec_path), "--auto-approve",
                     "--state-dir", str(tmp_path / "elsewhere"))
    assert second.returncode == 1, second.stdout + second.stderr
    assert held["id"] in second.stderr
    assert held["owner"] in second.stderr
    assert f"pid {held['pid']}" in second.stderr
    assert "Traceback" not in second.stderr
    assert not snapshot_diff(during, snapshot(lab)), "the refused apply changed something"
    assert json.loads(lock_file(lab).read_text()) == held
    go.write_text("go")
    code, _, err = finish(first)
    assert code == 0, err
    assert_applied(lab)


def test_concurrent_apply_from_the_same_state_folder_names_the_lock(
        lab: control.Lab, children: Children, tmp_path: Path) -> None:
    first, go, held = _paused_apply(lab, children, tmp_path)
    try:
        second = wlbplan("apply", str(lab.spec_path), "--auto-approve")
        assert second.returncode == 1, second.stdout + second.stderr
        if held["id"] not in second.stderr or "wlbplan rollback" in second.stderr:
            raise KnownBug(second.stderr)
        assert held["owner"] in second.stderr
    finally:
        go.write_text("go")
        finish(first)


def test_rollback_refuses_while_the_apply_is_alive(lab: control.Lab, children: Children,
                                                   tmp_path: Path) -> None:
    first, go, held = _paused_apply(lab, children, tmp_path, on="apply_complete", step=2)
    try:
        during = snapshot(lab)
        back = wlbplan("rollback", str(lab.spec_path), "--target", TARGET)
        if back.returncode != 1:
            raise KnownBug(f"the rollback ran (exit {back.returncode}): {back.stderr}")
        assert held["id"] in back.stderr
        assert not snapshot_diff(during, snapshot(lab))
        assert lock_file(lab).exists()
    finally:
        go.write_text("go")
        finish(first)


def test_lock_timeout_waits_and_then_gives_up(lab: control.Lab, children: Children,
                                              tmp_path: Path) -> None:
    first, go, held = _paused_apply(lab, children, tmp_path)
    try:
        started = time.monotonic()
        second = wlbplan("apply", str(lab.spec_path), "--auto-approve", "--lock-timeout", "1",
                         "--state-dir", str(tmp_path / "elsewhere"))
        waited = time.monotonic() - started
        assert second.returncode == 1, second.stdout + second.stderr
        assert held["id"] in second.stderr
        assert waited >= 1.0
    finally:
        go.write_text("go")
        assert finish(first)[0] == 0


def test_lock_timeout_takes_the_lock_once_it_is_released(lab: control.Lab) -> None:
    """The library waits (polling) and takes the lock as soon as its holder releases it."""
    planned = plan_now(lab.spec_path)
    with open_sessions(planned.spec, planned.target) as sessions:
        mine = lock.acquire(sessions.pool, planned.target)
        threading.Timer(1.0, lock.release, (sessions.pool, planned.target, mine.id)).start()
        started = time.monotonic()
        theirs = lock.acquire(sessions.pool, planned.target, timeout=20)
        assert 0.9 <= time.monotonic() - started < 10
        assert theirs.id != mine.id
        assert json.loads(lock_file(lab).read_text())["id"] == theirs.id
        assert not lock.release(sessions.pool, planned.target, mine.id), \
            "released someone else's lock"
        assert lock_file(lab).exists()
        assert lock.release(sessions.pool, planned.target, theirs.id)
    assert not lock_file(lab).exists()


def test_lock_timeout_then_the_waiting_apply_keeps_the_pool_whole(
        lab: control.Lab, children: Children, tmp_path: Path) -> None:
    first, go, _ = _paused_apply(lab, children, tmp_path)
    shown = tmp_path / "second.out"
    with shown.open("w") as out:
        second = children.wlbplan("apply", str(lab.spec_path), "--auto-approve",
                                  "--lock-timeout", "60", "--state-dir", str(tmp_path / "other"),
                                  stdout=out)
    # It has shown its plan (made against the pool before the first apply) and waits.
    wait_for_text(shown, "Plan:", second)
    time.sleep(0.5)
    assert second.poll() is None
    go.write_text("go")
    assert finish(first)[0] == 0
    code, _, err = finish(second)
    try:
        assert code in (0, 1), err
        if code == 1:
            assert "stale" in err.lower(), err
        assert_applied(lab)
    except AssertionError as lost:
        raise TrustLost(str(lost)) from lost


def test_install_undo_never_removes_a_certificate_it_did_not_install(
        lab: control.Lab, tmp_path: Path) -> None:
    """Plain race without the lock: the certificate appears while the apply runs (after it
    looked again under the lock, before its install step)."""
    planned = plan_now(lab.spec_path)
    name = planned.plan.steps[0].params["name"]
    pem = tmp_path / name
    pem.write_text(planned.plan.steps[0].params["pem"])
    box: dict[str, Any] = {}

    def someone_installs_it(event: dict[str, Any]) -> None:
        if event["type"] == "apply_start" and "was" not in box:
            xe(lab, "pool-install-ca-certificate", f"filename={pem}")
            box["was"] = before(lab)

    outcome = run_apply(planned, tmp_path / "state", report=someone_installs_it)
    was = box["was"]
    assert name in was.cas
    assert outcome.status == "rolled_back", outcome
    assert "already exists" in (outcome.error or "")
    try:
        assert_restored(lab, was, tmp_path / "state")
    except AssertionError as err:
        raise TrustLost(str(err)) from err


def _kill_holding_the_lock(lab: control.Lab, children: Children) -> dict[str, Any]:
    """A process takes the pool's lock and is SIGKILLed: its lock stays, with no journal."""
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from wlbplan.run import lock\n"
        "from wlbplan.run.pipeline import select\n"
        "from wlbplan.run.sessions import open_sessions\n"
        "from wlbplan.spec import load_spec\n"
        "spec = load_spec(Path(sys.argv[1]))\n"
        "target = select(spec, ['pool1'])[0]\n"
        "with open_sessions(spec, target) as sessions:\n"
        "    lock.acquire(sessions.pool, target)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = children.start([PYTHON, "-c", code, str(lab.spec_path)])
    rc, _, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    held: dict[str, Any] = json.loads(lock_file(lab).read_text())
    assert held["pid"] == proc.pid
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    return held


def test_dead_lock_blocks_until_force_unlock_with_the_exact_id(lab: control.Lab,
                                                               children: Children) -> None:
    held = _kill_holding_the_lock(lab, children)
    spec = str(lab.spec_path)
    was = before(lab)

    blocked = wlbplan("apply", spec, "--auto-approve")
    assert blocked.returncode == 1
    assert held["id"] in blocked.stderr
    assert f"wlbplan force-unlock {spec} {held['id']} --target {TARGET}" in blocked.stderr
    assert not snapshot_diff(was.files, snapshot(lab))

    other_id = str(uuid.uuid4())
    assert other_id != held["id"]
    wrong = wlbplan("force-unlock", spec, "--target", TARGET, "--force", other_id)
    assert wrong.returncode == 1
    assert held["owner"] in wrong.stderr  # says who holds it…
    assert held["id"] not in wrong.stderr  # …but never hands out the id it wanted
    assert "Traceback" not in wrong.stderr
    assert json.loads(lock_file(lab).read_text()) == held

    unconfirmed = wlbplan("force-unlock", spec, held["id"])  # stdin is not a terminal
    assert unconfirmed.returncode == 1
    assert "--force" in unconfirmed.stderr
    assert json.loads(lock_file(lab).read_text()) == held

    right = wlbplan("force-unlock", spec, "--force", held["id"])  # the spec's one target
    assert right.returncode == 0, right.stderr
    assert held["id"] in right.stdout
    assert not lock_file(lab).exists()

    again = wlbplan("force-unlock", spec, "--target", TARGET, "--force", held["id"])
    assert again.returncode == 1
    assert "not locked" in again.stderr

    applied = wlbplan("apply", spec, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert_applied(lab)


def test_crashed_apply_blocks_the_next_apply_until_rollback(lab: control.Lab,
                                                            children: Children,
                                                            tmp_path: Path) -> None:
    """A killed apply leaves its journal here and its lock on the coordinator: the next
    apply from this workstation is told to roll back, from another one that the pool is
    locked; `wlbplan rollback` settles both."""
    was = before(lab)
    spec = str(lab.spec_path)
    proc = children.hooked({"on": "apply_complete", "step": 1, "do": "sigkill"},
                           "apply", spec, "--auto-approve")
    assert finish(proc)[0] == -signal.SIGKILL
    held = json.loads(lock_file(lab).read_text())
    crashed = snapshot(lab)
    for args in (("--auto-approve",), ("--auto-approve", "--format", "json")):
        blocked = wlbplan("apply", spec, *args)
        assert blocked.returncode == 1, blocked.stdout + blocked.stderr
        assert f"wlbplan rollback {spec} --target {TARGET}" in blocked.stderr
        assert str(journal_path(state_dir(lab))) in blocked.stderr
        assert "Traceback" not in blocked.stderr
        assert not snapshot_diff(crashed, snapshot(lab)), "a refused apply changed something"
    elsewhere = wlbplan("apply", spec, "--auto-approve", "--state-dir", str(tmp_path / "ws2"))
    assert elsewhere.returncode == 1
    assert held["id"] in elsewhere.stderr
    assert not snapshot_diff(crashed, snapshot(lab))

    back = wlbplan("rollback", spec, "--target", TARGET)
    assert back.returncode == 0, back.stderr
    assert_restored(lab, was, state_dir(lab))
    applied = wlbplan("apply", spec, "--auto-approve", "--state-dir", str(tmp_path / "ws2"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert_applied(lab)


def test_rollback_refuses_when_another_apply_holds_the_lock(lab: control.Lab,
                                                            children: Children,
                                                            tmp_path: Path) -> None:
    """A crashed run's journal, then someone else's live apply: the rollback waits its turn."""
    was = before(lab)
    spec = str(lab.spec_path)
    proc = children.hooked({"on": "apply_complete", "step": 1, "do": "sigkill"},
                           "apply", spec, "--auto-approve")
    assert finish(proc)[0] == -signal.SIGKILL
    crashed = json.loads(lock_file(lab).read_text())
    assert wlbplan("force-unlock", spec, "--target", TARGET, "--force",
                   crashed["id"]).returncode == 0
    planned = plan_now(lab.spec_path)
    with open_sessions(planned.spec, planned.target) as sessions:
        other = lock.acquire(sessions.pool, planned.target)
        try:
            during = snapshot(lab)
            back = wlbplan("rollback", spec, "--target", TARGET)
            assert back.returncode == 1
            assert other.id in back.stderr
            assert not snapshot_diff(during, snapshot(lab))
            assert journal_path(state_dir(lab)).exists()
        finally:
            assert lock.release(sessions.pool, planned.target, other.id)
    back = wlbplan("rollback", spec, "--target", TARGET)
    assert back.returncode == 0, back.stderr
    assert_restored(lab, was, state_dir(lab))


def test_lock_error_is_a_lock_error(lab: control.Lab) -> None:
    planned = plan_now(lab.spec_path)
    with open_sessions(planned.spec, planned.target) as sessions:
        mine = lock.acquire(sessions.pool, planned.target)
        try:
            with pytest.raises(LockError, match=mine.id):
                lock.acquire(sessions.pool, planned.target, timeout=0)
            with pytest.raises(LockError, match="is not the id of the lock"):
                lock.force_unlock(sessions.pool, planned.target, "not-" + mine.id)
        finally:
            assert lock.release(sessions.pool, planned.target, mine.id)
    # the lock folder may stay; the lock file must not
    assert not lock_file(lab).exists()


def test_owner_alive_only_judges_this_machines_processes() -> None:
    here = socket.gethostname()
    mine = LockInfo("a", f"me@{here}", os.getpid(), "2026-01-01T00:00:00Z", "pool1")
    assert lock.owner_alive(mine) is True
    gone = dataclasses.replace(mine, pid=2**22 + 12345)
    assert lock.owner_alive(gone) is False
    elsewhere = dataclasses.replace(mine, owner="me@not-" + here)
    assert lock.owner_alive(elsewhere) is None


def test_the_lock_is_created_private(lab: control.Lab) -> None:
    planned = plan_now(lab.spec_path)
    with open_sessions(planned.spec, planned.target) as sessions:
        mine = lock.acquire(sessions.pool, planned.target)
        try:
            assert lock_file(lab).stat().st_mode & 0o777 == 0o600
            assert lock_file(lab).parent.stat().st_mode & 0o777 == 0o700
        finally:
            lock.release(sessions.pool, planned.target, mine.id)


@pytest.mark.parametrize("how", ["group-writable", "other-writable", "foreign-owner"])
def test_a_lock_folder_others_could_write_is_refused(lab: control.Lab, how: str) -> None:
    folder = lock_file(lab).parent
    folder.mkdir(parents=True, exist_ok=True)
    if how == "foreign-owner":
        os.chown(folder, 4242, 4242)
    else:
        folder.chmod(0o770 if how == "group-writable" else 0o707)
    was = snapshot(lab)
    result = wlbplan("apply", str(lab.spec_path), "--auto-approve")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refusing to take the apply lock" in result.stderr, result.stderr
    assert ("owned by uid 4242" if how == "foreign-owner" else
            "writable by group or others") in result.stderr
    assert not lock_file(lab).exists()
    assert not snapshot_diff(was, snapshot(lab))
