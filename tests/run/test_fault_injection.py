"""Fail, kill or interrupt an apply at every step boundary; afterwards every file of the
appliance and the pool is byte-identical (and same mode) to before, stunnel serves the
certificate it served before, the flag has its old value, the journal is archived and
the lock is gone (DESIGN §5, §7).

Two plans are walked step by step, both read from a real lab when the tests are
collected (a step added to a plan is covered without touching this file):

- ``fresh_step``: a fresh lab's self-signed plan (install_ca, sync, preflight,
  set_verify, confirm);
- ``rotation_step``: a CA-signed rotation on a pool that already verifies the
  self-signed certificate and trusts someone else's CA: every kind of step (install_ca,
  sync, backup, install_chain, restart, preflight, confirm, uninstall_ca, sync).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from applylab import (
    TARGET,
    Children,
    Rotation,
    assert_applied,
    assert_restored,
    before,
    ca_names,
    check_undo_order,
    failing_registry,
    finish,
    fresh_plan_actions,
    held_lock,
    journal_path,
    layout,
    lock_file,
    no_key_material,
    plan_now,
    run_apply,
    served_fingerprint,
    snapshot,
    snapshot_diff,
    state_dir,
    step_index,
    verify_flag,
    wlbplan,
)
from pool_connectors import OVER_BOTH

from wlbplan import actions
from wlbplan.actions.base import StepFailed
from wlbplan.lab import control, faults

pytestmark = pytest.mark.lab

class NotRolledBack(AssertionError):
    """An interrupted run was not undone."""


def step_marks(test: str, kind: str, index: int, steps: tuple[str, ...]) -> list[Any]:
    """Known bugs, by step (the parameters come from conftest.pytest_generate_tests)."""
    return []


# ---- a fresh lab: fail at every step, in process -------------------------------------------

def _raise_on_complete(k: int) -> Any:
    def report(event: dict[str, Any]) -> None:
        if event["type"] == "apply_complete" and step_index(event) == k:
            raise StepFailed(f"injected failure after step {k} completed")
    return report


@OVER_BOTH
@pytest.mark.parametrize("how", ["fails", "fails-between"])
def test_failure_at_every_step_rolls_back(lab: control.Lab, tmp_path: Path, fresh_step: int,
                                          how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """fails: step k raises before doing anything; fails-between: step k completed
    (journaled as done), and the run broke before step k+1. (A step that did its work and
    then failed is walked on the rotation plan below.)"""
    was = before(lab)
    planned = plan_now(lab.spec_path)
    assert 1 <= fresh_step <= len(planned.plan.steps)
    journals = tmp_path / "state"
    events: list[dict[str, Any]] = []
    report = None
    if how == "fails-between":
        report = _raise_on_complete(fresh_step)
    else:
        monkeypatch.setattr(actions, "registry", failing_registry(fresh_step, how))
    outcome = run_apply(planned, journals, events, report)
    monkeypatch.undo()

    assert outcome.status == "rolled_back", outcome
    assert "injected failure" in (outcome.error or "")
    assert len(outcome.done) == (fresh_step if how == "fails-between" else fresh_step - 1)
    started = [step_index(e) for e in events if e["type"] == "apply_start"]
    assert started == list(range(1, fresh_step + 1)), "a step ran after the failure"
    check_undo_order(journals, outcome)
    assert_restored(lab, was, journals)
    if how == "fails-between":  # and the pool is free for the next apply
        again = run_apply(plan_now(lab.spec_path), journals)
        assert again.status == "applied", again
        assert_applied(lab)


def test_a_bug_in_a_step_rolls_back_and_is_raised(lab: control.Lab, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a WlbplanError (a bug): everything is undone first, then the error propagates."""
    was = before(lab)
    planned = plan_now(lab.spec_path)
    last = len(planned.plan.steps)
    real = actions.registry

    def buggy() -> dict[str, actions.Action]:
        calls = {"n": 0}
        out = {}
        for name, action in real().items():
            def run(ctx: Any, step: Any, action: actions.Action = action) -> None:
                calls["n"] += 1
                action.run(ctx, step)
                if calls["n"] == last:
                    raise RuntimeError("injected bug")
            out[name] = actions.Action(action.undo_record, run, action.undo)
        return out

    monkeypatch.setattr(actions, "registry", buggy)
    with pytest.raises(RuntimeError, match="injected bug"):
        run_apply(planned, tmp_path / "state")
    monkeypatch.undo()
    assert_restored(lab, was, tmp_path / "state")


# ---- a fresh lab: SIGKILL at every step, then `wlbplan rollback` -----------------------------

@OVER_BOTH
def test_sigkill_at_every_step_then_rollback(lab: control.Lab, fresh_step: int,
                                             children: Children) -> None:
    """Killed as step k is announced (not yet journaled, not run): the state after step
    k-1 completed. (A kill after a step's effect is walked in test_resume.py.)"""
    _kill_then_rollback(lab, fresh_step, "apply_start", children)


@OVER_BOTH
def test_sigkill_after_the_last_step_then_rollback(lab: control.Lab,
                                                   children: Children) -> None:
    """Killed once every step completed, before the journal was closed."""
    _kill_then_rollback(lab, len(fresh_plan_actions()), "apply_complete", children)


def _kill_then_rollback(lab: control.Lab, fresh_step: int, when: str,
                        children: Children) -> None:
    was = before(lab)
    spec = str(lab.spec_path)
    proc = children.hooked({"on": when, "step": fresh_step, "do": "sigkill"},
                           "apply", spec, "--auto-approve")
    code, out, err = finish(proc)
    assert code == -signal.SIGKILL, err
    no_key_material(out, err)

    # A crashed run leaves its journal and its lock, with the same lock id.
    journals = state_dir(lab)
    assert journal_path(journals).exists()
    held = held_lock(lab)
    header = json.loads(journal_path(journals).read_text().splitlines()[0])
    assert header["lock_id"] == held.id
    assert held.pid == proc.pid

    back = wlbplan("rollback", spec, "--target", TARGET)
    assert back.returncode == 0, back.stdout + back.stderr
    assert re.search(rf"^{TARGET}: rolled back", back.stderr, re.MULTILINE), back.stderr
    # Counted as the rollback it is, never as an apply ("Apply: 0 applied").
    assert back.stderr.rstrip().endswith("Rollback: 1 rolled back, 0 incomplete, 0 with "
                                         "nothing to roll back."), back.stderr
    assert "Apply:" not in back.stderr
    no_key_material(back.stdout, back.stderr)
    check_undo_order(journals, None)
    assert_restored(lab, was, journals)
    again = run_apply(plan_now(lab.spec_path), journals)  # the pool is free again
    assert again.status == "applied", again
    assert_applied(lab)


def test_rollback_with_no_journal_does_nothing(lab: control.Lab) -> None:
    was = before(lab)
    back = wlbplan("rollback", str(lab.spec_path), "--target", TARGET)
    assert back.returncode == 0, back.stderr
    assert "nothing to do" in back.stderr
    assert not snapshot_diff(was.files, snapshot(lab))


# ---- a fresh lab: SIGINT / SIGTERM at every step ------------------------------------------

def test_signal_at_every_step_rolls_back(lab: control.Lab, fresh_step: int,
                                         children: Children) -> None:
    """SIGINT (Ctrl-C) on the start of step k: the run stops after that step, undoes
    everything and exits 130."""
    _interrupt(lab, fresh_step, "sigint", children)


def test_sigterm_rolls_back(lab: control.Lab, children: Children) -> None:
    """SIGTERM (a service manager, `timeout`) is handled like SIGINT."""
    _interrupt(lab, 2, "sigterm", children)


@OVER_BOTH
def test_signals_during_the_rollback_are_held(lab: control.Lab, children: Children) -> None:
    """Ctrl-C and SIGTERM while undoing never cut the rollback short."""
    was = before(lab)
    hooks = [{"on": "apply_start", "step": 4, "do": "fail"},
             {"on": "rollback_complete", "step": 4, "do": "sigint"},
             {"on": "rollback_complete", "step": 2, "do": "sigterm"}]
    proc = children.hooked(hooks, "apply", str(lab.spec_path), "--auto-approve")
    code, _, err = finish(proc)
    assert code in (1, 130), err
    assert "Stopping after the current step" in err  # the signal did arrive mid-rollback
    assert "Traceback" not in err
    check_undo_order(state_dir(lab), None)
    assert_restored(lab, was, state_dir(lab))


def _interrupt(lab: control.Lab, step: int, sig: str, children: Children) -> None:
    was = before(lab)
    proc = children.hooked({"on": "apply_start", "step": step, "do": sig},
                           "apply", str(lab.spec_path), "--auto-approve")
    code, out, err = finish(proc)
    assert code == 130, err
    assert "Traceback" not in err
    no_key_material(out, err)
    if not re.search(rf"^{TARGET}: .*rolled back", err, re.MULTILINE):
        raise NotRolledBack(err[-800:])
    try:
        check_undo_order(state_dir(lab), None)
    except AssertionError as err_:
        raise NotRolledBack(str(err_)[:800]) from err_
    assert_restored(lab, was, state_dir(lab))


# ---- the CA-signed rotation: every kind of step ---------------------------------------------

@OVER_BOTH
def test_rotation_failure_at_every_step_rolls_back(rotation: Rotation, rotation_step: int,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Step k did its work, then failed (the answer was lost): the hardest undo. A step
    journaled but never run is the SIGKILL test below."""
    assert rotation.lab is not None
    assert rotation.spec is not None
    assert rotation.was is not None
    planned = plan_now(rotation.spec)
    assert 1 <= rotation_step <= len(planned.plan.steps)
    journals = tmp_path / "state"
    monkeypatch.setattr(actions, "registry",
                        failing_registry(rotation_step, "fails-after-effect"))
    outcome = run_apply(planned, journals)
    monkeypatch.undo()
    assert outcome.status == "rolled_back", outcome
    check_undo_order(journals, outcome)
    assert_restored(rotation.lab, rotation.was, journals)


@pytest.mark.connectors(xenapi_not={"rotation_step": (7, 10)},
                        why="a kill at the preflight or the last sync is the fresh plan's "
                            "(walked over XenAPI above)")
def test_rotation_sigkill_at_every_step_then_rollback(rotation: Rotation, rotation_step: int,
                                                      children: Children,
                                                      tmp_path: Path) -> None:
    assert rotation.lab is not None
    assert rotation.spec is not None
    assert rotation.was is not None
    journals = tmp_path / "state"
    spec = str(rotation.spec)
    proc = children.hooked({"on": "apply_start", "step": rotation_step, "do": "sigkill"},
                           "apply", spec, "--auto-approve", "--state-dir", str(journals))
    code, _, err = finish(proc)
    assert code == -signal.SIGKILL, err
    assert journal_path(journals).exists()
    back = wlbplan("rollback", spec, "--target", TARGET, "--state-dir", str(journals))
    assert back.returncode == 0, back.stdout + back.stderr
    no_key_material(back.stdout, back.stderr)
    check_undo_order(journals, None)
    assert_restored(rotation.lab, rotation.was, journals)


def test_rotation_restart_fault_leaves_incomplete_rollback_then_rollback_finishes(
        rotation: Rotation, tmp_path: Path) -> None:
    """stunnel will not restart (lab fault): the apply fails at the restart, and so does
    the restart's own undo. The run says INCOMPLETE, keeps its journal and lock; once the
    cause is fixed, `wlbplan rollback` finishes the job."""
    assert rotation.lab is not None
    assert rotation.spec is not None
    assert rotation.was is not None
    lab, spec, journals = rotation.lab, str(rotation.spec), tmp_path / "state"
    fault = layout(lab).faults_dir / "restart-fails"
    faults.inject(lab.dir, "restart-fails")
    try:
        result = wlbplan("apply", spec, "--auto-approve", "--state-dir", str(journals))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "rollback is INCOMPLETE" in result.stderr
        assert f"wlbplan rollback {spec} --target {TARGET}" in result.stderr
        assert "Traceback" not in result.stderr
        assert journal_path(journals).exists()
        assert lock_file(lab).exists(), "an incomplete rollback must keep the pool locked"
        # Rolling back before the cause is fixed: still incomplete, nothing released.
        early = wlbplan("rollback", spec, "--target", TARGET, "--state-dir", str(journals))
        assert early.returncode == 1, early.stdout + early.stderr
        assert "INCOMPLETE" in early.stderr
        assert journal_path(journals).exists()
        assert lock_file(lab).exists()
    finally:
        fault.unlink(missing_ok=True)
    back = wlbplan("rollback", spec, "--target", TARGET, "--state-dir", str(journals))
    assert back.returncode == 0, back.stdout + back.stderr
    assert_restored(lab, rotation.was, journals)


def test_rotation_never_overwrites_an_existing_backup(rotation: Rotation, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's own server.pem_orig / server.key_orig (the seed's manual procedure)
    stay untouched through the whole apply and its rollback: wlbplan backs up beside them."""
    assert rotation.lab is not None
    assert rotation.spec is not None
    lab, where = rotation.lab, layout(rotation.lab)
    theirs = {Path(f"{where.cert}_orig"): (b"the operator's own backup\n", 0o640),
              Path(f"{where.key}_orig"): (b"the operator's own key backup\n", 0o600)}
    try:
        for path, (data, mode) in theirs.items():
            path.write_bytes(data)
            path.chmod(mode)
        was = before(lab)
        planned = plan_now(rotation.spec)
        backup = next(s for s in planned.plan.steps if s.action == "appliance.backup")
        for made, path in zip(backup.params["backups"], theirs, strict=True):
            assert made.startswith(f"{path}."), made  # a timestamped name beside it
        seen: list[bool] = []

        def check(event: dict[str, Any]) -> None:
            seen.append(all(p.read_bytes() == d and p.stat().st_mode & 0o777 == m
                            for p, (d, m) in theirs.items()))

        last = len(planned.plan.steps)
        monkeypatch.setattr(actions, "registry", failing_registry(last, "fails-after-effect"))
        outcome = run_apply(planned, tmp_path / "state", report=check)
        monkeypatch.undo()
        assert outcome.status == "rolled_back", outcome
        assert seen
        assert all(seen), "an existing backup changed during the apply"
        assert_restored(lab, was, tmp_path / "state")
    finally:
        for path in theirs:
            path.unlink(missing_ok=True)


@OVER_BOTH
def test_rotation_applies_keeping_backups_and_foreign_trust(rotation: Rotation,
                                                            tmp_path: Path) -> None:
    """The happy path of the same plan, from a saved plan (no prompt). Last in the module:
    it leaves the lab rotated."""
    assert rotation.lab is not None
    assert rotation.spec is not None
    lab, where = rotation.lab, layout(rotation.lab)
    old_cert, old_key = where.cert.read_bytes(), where.key.read_bytes()
    cert_mode, key_mode = where.cert.stat().st_mode & 0o777, where.key.stat().st_mode & 0o777
    hosts = sorted((where.pool_dir / "hosts").iterdir())
    foreign = {h.name: (h / "etc/stunnel/certs/corp-root.pem").read_bytes() for h in hosts}
    journals = tmp_path / "state"
    saved = tmp_path / "rotation.plan.json"
    made = wlbplan("plan", str(rotation.spec), "--out", str(saved))
    assert made.returncode == 0, made.stderr
    result = wlbplan("apply", str(saved), "--state-dir", str(journals))
    assert result.returncode == 0, result.stdout + result.stderr
    no_key_material(made.stdout, made.stderr, saved.read_text(), result.stdout, result.stderr)
    # Every journal of this lab so far (the request stage's key generation included).
    for folder in (journals, rotation.spec.parent):
        for path in folder.rglob("*.jsonl"):
            no_key_material(path.read_text())

    signed = rotation.spec.parent / "out" / "signed.pem"
    from applylab import file_leaf_fingerprint

    assert served_fingerprint(lab) == file_leaf_fingerprint(signed)
    assert file_leaf_fingerprint(where.cert) == file_leaf_fingerprint(signed)
    backup_cert, backup_key = Path(f"{where.cert}_orig"), Path(f"{where.key}_orig")
    assert backup_cert.read_bytes() == old_cert
    assert backup_key.read_bytes() == old_key
    assert backup_cert.stat().st_mode & 0o777 == cert_mode
    assert backup_key.stat().st_mode & 0o777 == key_mode == 0o600
    assert where.key.stat().st_mode & 0o777 == 0o600
    for host in hosts:
        assert (host / "etc/stunnel/certs/corp-root.pem").read_bytes() == foreign[host.name]
    names = ca_names(lab)
    assert "corp-root.pem" in names
    assert not any(n.startswith("wlbplan-wlb-") for n in names), names
    assert any(n.startswith("wlbplan-root-") for n in names), names
    assert verify_flag(lab) == "true"
    again = wlbplan("plan", str(rotation.spec), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
