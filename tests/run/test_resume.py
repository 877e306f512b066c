"""``wlbplan apply SPEC --resume``: an apply killed at any step goes on from its journal.

The step the dead run was in is undone (it may have half-happened) and run again, then
the rest of its plan; the end state is the spec's, exactly as after an uninterrupted
apply: `plan` has nothing to do, audit finds no error, the journal is archived as
applied, the lock is gone. A resume that fails rolls back everything, the dead run's
steps included. Walked over every step of both plans (fresh self-signed, CA rotation).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from applylab import (
    TARGET,
    Children,
    Rotation,
    archived_journal,
    assert_applied,
    assert_restored,
    before,
    check_undo_order,
    file_leaf_fingerprint,
    finish,
    fresh_plan_actions,
    held_locks,
    journal_path,
    layout,
    lock_file,
    no_key_material,
    served_fingerprint,
    state_dir,
    verify_flag,
    wlbplan,
)
from pool_connectors import OVER_BOTH

from wlbplan.lab import control

pytestmark = pytest.mark.lab


def kill_at(children: Children, spec: str, step: int, when: str = "apply_start",
            *extra: str) -> None:
    proc = children.hooked({"on": when, "step": step, "do": "sigkill"},
                           "apply", spec, "--auto-approve", *extra)
    code, out, err = finish(proc)
    assert code == -signal.SIGKILL, err
    no_key_material(out, err)


def resume(spec: str, *extra: str) -> str:
    done = wlbplan("apply", spec, "--resume", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    no_key_material(done.stdout, done.stderr)
    assert f"{TARGET}: applied" in done.stderr, done.stderr
    return done.stderr


def converged(spec: str, *, audit: bool = False) -> None:
    again = wlbplan("plan", spec, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    if audit:
        found = wlbplan("audit", spec, "--format", "json")
        assert found.returncode == 0, found.stdout + found.stderr  # no error-level finding


def rerun_of(records: list[dict[str, Any]], step: int) -> list[str]:
    """What the journal says happened to step ``step``, in order."""
    return [r["event"] for r in records
            if r["event"] in ("step", "done", "undone") and r.get("index") == step]


# ---- a fresh lab ---------------------------------------------------------------------------

# Killed as step k starts (nothing of it journaled or done: it simply runs), or after
# step k did its work but before it was journaled as done (undone, then run again).
WHEN = {"apply_start": ["step", "done"], "before_done": ["step", "undone", "step", "done"]}


@pytest.mark.connectors(xenapi_not={"when": "apply_start"},
                        why="a step killed before it ran simply runs: no undo, no call "
                            "that differs by connector")
@pytest.mark.parametrize("when", list(WHEN))
def test_sigkill_at_every_step_then_resume(lab: control.Lab, fresh_step: int, when: str,
                                           children: Children) -> None:
    spec = str(lab.spec_path)
    kill_at(children, spec, fresh_step, when)
    assert journal_path(state_dir(lab)).exists()
    said = resume(spec)
    total = len(fresh_plan_actions())
    assert f"resuming at step {fresh_step} of {total} ({fresh_step - 1} done" in said
    assert_applied(lab)
    converged(spec)
    records = archived_journal(state_dir(lab))
    assert records[-1] == {**records[-1], "event": "end", "outcome": "applied"}
    assert rerun_of(records, fresh_step) == WHEN[when]
    assert [r["pid"] for r in records if r["event"] == "resume"] != []


def test_killed_after_the_last_step_resume_only_closes_the_journal(
        lab: control.Lab, children: Children) -> None:
    spec, last = str(lab.spec_path), len(fresh_plan_actions())
    kill_at(children, spec, last, "apply_complete")
    said = resume(spec)
    assert f"resuming at step {last + 1} of {last}" in said
    assert_applied(lab)
    records = archived_journal(state_dir(lab))
    assert rerun_of(records, last) == ["step", "done"]  # nothing ran again


@OVER_BOTH
def test_a_failed_resume_rolls_back_the_dead_runs_steps_too(lab: control.Lab,
                                                            children: Children) -> None:
    was = before(lab)
    spec = str(lab.spec_path)
    steps = fresh_plan_actions()
    preflight = steps.index("pool.preflight") + 1
    kill_at(children, spec, preflight)
    # The resumed run fails as its first step starts (the preflight again, not yet
    # journaled): the dead run's steps before it are all undone.
    proc = children.hooked({"on": "apply_start", "step": preflight, "do": "fail"},
                           "apply", spec, "--resume")
    code, _, err = finish(proc)
    assert code == 1, err
    assert "FAILED and rolled back" in err
    records = check_undo_order(state_dir(lab), None)
    assert {r["index"] for r in records if r["event"] == "undone"} == set(range(1, preflight))
    assert_restored(lab, was, state_dir(lab))


def test_nothing_to_resume(lab: control.Lab) -> None:
    result = wlbplan("apply", str(lab.spec_path), "--resume")
    assert result.returncode == 0, result.stderr
    assert "no interrupted apply to resume" in result.stderr
    assert verify_flag(lab) == "false"


def test_resume_refuses_a_changed_spec(lab: control.Lab, children: Children,
                                       tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(lab.spec_path.read_text())
    journals = tmp_path / "state"
    kill_at(children, str(spec), 2, "apply_start", "--state-dir", str(journals))
    data = yaml.safe_load(spec.read_text())
    data["policy"] = {"min_days_left": 10}
    spec.write_text(yaml.safe_dump(data))
    result = wlbplan("apply", str(spec), "--resume", "--state-dir", str(journals))
    assert result.returncode == 1
    assert "the spec changed since the interrupted apply began" in result.stderr
    assert journal_path(journals).exists()  # untouched: rollback is still possible
    assert lock_file(lab).exists()


def test_resume_refuses_after_a_rollback_began(lab: control.Lab, children: Children) -> None:
    spec = str(lab.spec_path)
    kill_at(children, spec, 3)
    # A rollback killed half-way (after undoing step 3): only rollback may finish it.
    proc = children.hooked({"on": "rollback_complete", "step": 2, "do": "sigkill"},
                           "rollback", spec, "--target", TARGET)
    finish(proc)
    result = wlbplan("apply", spec, "--resume")
    assert result.returncode == 1
    assert "a rollback of this apply has begun" in result.stderr
    back = wlbplan("rollback", spec, "--target", TARGET)
    assert back.returncode == 0, back.stderr


def test_resume_refuses_a_plan_file(lab: control.Lab, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    made = wlbplan("plan", str(lab.spec_path), "--out", str(saved))
    assert made.returncode == 0, made.stderr
    result = wlbplan("apply", str(saved), "--resume")
    assert result.returncode == 1
    assert "--resume takes the SPEC" in result.stderr


def test_leftover_journal_message_offers_resume(lab: control.Lab, children: Children) -> None:
    spec = str(lab.spec_path)
    kill_at(children, spec, 1)
    again = wlbplan("apply", spec, "--auto-approve")
    assert again.returncode == 1
    assert f"wlbplan apply {spec} --resume --target {TARGET}" in again.stderr


def test_journal_header_holds_the_plan_and_no_key_material(lab: control.Lab,
                                                           children: Children) -> None:
    spec = str(lab.spec_path)
    kill_at(children, spec, 1)
    header = json.loads(journal_path(state_dir(lab)).read_text().splitlines()[0])
    assert [s["action"] for s in header["plan"]["steps"]] == list(fresh_plan_actions())
    no_key_material(journal_path(state_dir(lab)).read_text())


# ---- the CA-signed rotation: every kind of step ---------------------------------------------

@pytest.mark.connectors(xenapi_not={"rotation_step": (7, 10)},
                        why="a kill at the preflight or the last sync is the fresh plan's "
                            "(walked over XenAPI above); each resume here rebuilds the lab")
def test_rotation_sigkill_at_every_step_then_resume(rotation: Rotation,
                                                    rotation_step: int, children: Children,
                                                    tmp_path: Path) -> None:
    assert rotation.lab is not None
    assert rotation.spec is not None
    lab, spec = rotation.lab, str(rotation.spec)
    journals = tmp_path / "state"
    kill_at(children, spec, rotation_step, "before_done", "--state-dir", str(journals))
    resume(spec, "--state-dir", str(journals))
    converged(spec, audit=True)
    signed = Path(yaml.safe_load(rotation.spec.read_text())["targets"][0]["certificate"]
                  ["signed"])
    assert served_fingerprint(lab) == file_leaf_fingerprint(signed)
    assert file_leaf_fingerprint(layout(lab).cert) == file_leaf_fingerprint(signed)
    assert verify_flag(lab) == "true"
    assert not held_locks(lab)
    records = archived_journal(journals)
    assert rerun_of(records, rotation_step) == ["step", "undone", "step", "done"]


def test_a_resume_killed_in_turn_is_resumed_again(lab: control.Lab,
                                                  children: Children) -> None:
    spec = str(lab.spec_path)
    kill_at(children, spec, 2, "before_done")
    proc = children.hooked({"on": "before_done", "step": 3, "do": "sigkill"},
                           "apply", spec, "--resume")
    code, _, err = finish(proc)
    assert code == -signal.SIGKILL, err
    said = resume(spec)
    assert "resuming at step 3 of" in said
    assert_applied(lab)
    records = archived_journal(state_dir(lab))
    assert rerun_of(records, 2) == ["step", "undone", "step", "done"]
    assert rerun_of(records, 3) == ["step", "undone", "step", "done"]
    assert len([r for r in records if r["event"] == "resume"]) == 2
