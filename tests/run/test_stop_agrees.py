"""A stop (SIGINT/SIGTERM) wherever it lands in an apply: the report, the exit status and
what is really on the hosts agree.

The signal is sent at every step boundary (as step k is announced, once it is done),
inside every step (its effect is there, not yet journaled as done), and in the closing
phase (as the journal is archived, after it was, after the lock was released). Until the
last step is over the run is rolled back: exit 130, "STOPPED and rolled back", the lab
byte-identical to before. Once the last step is over the stop changes nothing: exit 0,
"applied", the lab applied — and nothing claims an undo that did not happen.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from applylab import (
    TARGET,
    Children,
    assert_applied,
    assert_restored,
    before,
    finish,
    fresh_plan_actions,
    history,
    journal_path,
    lock_file,
    no_key_material,
    state_dir,
)

from wlbplan.lab import control

pytestmark = pytest.mark.lab

IN_STEPS = ("apply_start", "before_done", "apply_complete")
CLOSING = ("before_end", "after_end", "after_release")


def _run(lab: control.Lab, children: Children, hook: dict[str, Any]) -> tuple[int, str]:
    proc = children.hooked(hook, "apply", str(lab.spec_path), "--auto-approve")
    code, out, err = finish(proc)
    no_key_material(out, err)
    assert "Traceback" not in err, err
    assert "Stopping after the current step" in err, "the signal never arrived"
    return code, err


def _archived_as(lab: control.Lab) -> list[str]:
    return [p.name.split("-", 1)[1].removesuffix(".jsonl") for p in history(state_dir(lab))]


@pytest.mark.parametrize("point", IN_STEPS)
def test_a_stop_before_the_last_step_is_over_rolls_back(lab: control.Lab, fresh_step: int,
                                                        point: str,
                                                        children: Children) -> None:
    was = before(lab)
    code, err = _run(lab, children, {"on": point, "step": fresh_step, "do": "sigint"})
    assert code == 130, err
    assert re.search(rf"^{TARGET}: STOPPED and rolled back", err, re.MULTILINE), err
    assert "it stays applied" not in err
    assert re.search(r"^Apply: 0 applied, .* 1 rolled back", err, re.MULTILINE), err
    assert _archived_as(lab) == ["rolled_back"]
    assert_restored(lab, was, state_dir(lab))


@pytest.mark.parametrize("sig", ["sigint", "sigterm"])
@pytest.mark.parametrize("point", CLOSING)
def test_a_stop_after_the_last_step_leaves_it_applied_and_says_so(
        lab: control.Lab, point: str, sig: str, children: Children) -> None:
    hook: dict[str, Any] = {"on": point, "step": len(fresh_plan_actions()), "do": sig}
    if point != "after_release":
        hook["outcome"] = "applied"
    code, err = _run(lab, children, hook)
    assert code == 0, err
    assert re.search(rf"^{TARGET}: applied \(", err, re.MULTILINE), err
    assert f"{TARGET}: the stop came after its last step had run; it stays applied" in err
    assert "rolled back:" not in err
    assert re.search(r"^Apply: 1 applied, .* 0 rolled back", err, re.MULTILINE), err
    assert _archived_as(lab) == ["applied"]
    assert not journal_path(state_dir(lab)).exists()
    assert not lock_file(lab).exists()
    assert_applied(lab)
