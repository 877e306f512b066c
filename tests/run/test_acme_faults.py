"""An ACME apply stopped at its step boundaries, over the SSH connector (the lab's sshd):
a failure, SIGKILL or SIGINT (Ctrl-C). Afterwards every file of the appliance and the pool
is byte-identical to before (after `wlbplan rollback`, or the run's own rollback), stunnel
serves what it served and every challenge record that was set was cleared again; or
`wlbplan apply --resume` takes the run to the end, the install steps recorded after the
order included.

Batched for cost, one Pebble for the module: SIGKILL at every boundary, the install ones
walked by chained resumes (each run killed at the next boundary) on the chain of one
order; SIGINT at the boundaries the ACME path adds (key, CSR, order, the first and last
install step), the install steps' own being walked on the CA-signed rotation
(test_fault_injection.py); and the boundary no step event marks: inside the order, while
the TXT record is published (the hook itself signals wlbplan).
"""

from __future__ import annotations

import io
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acmelab import acme_lab, acme_spec, logging_hooks, needs_pebble, pool_handshake
from applylab import (
    TARGET,
    Children,
    assert_restored,
    before,
    check_undo_order,
    failing_registry,
    finish,
    journal_path,
    no_key_material,
    plan_now,
    run_apply,
    verify_flag,
)

from wlbplan import actions
from wlbplan.lab import control
from wlbplan.render.events import EventWriter
from wlbplan.run import pipeline
from wlbplan.spec import load_spec

pytestmark = [pytest.mark.lab, pytest.mark.ssh, needs_pebble]

ORDER, FIRST_INSTALL, STEPS = 3, 4, 13


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    with acme_lab(tmp_path_factory.mktemp("acme-ssh") / "lab", ssh=True) as made:
        yield made


@pytest.mark.parametrize("step", [ORDER, FIRST_INSTALL], ids=["acme.order", "first-install"])
def test_a_failure_after_the_step_rolls_everything_back(
        lab: control.Lab, tmp_path: Path, step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step k did its work, then failed: the order's key and CSR go with the rest."""
    challenge, log = logging_hooks(lab, tmp_path)
    spec = acme_spec(lab, tmp_path / "spec.yaml", challenge=challenge)
    was = before(lab)
    planned = plan_now(spec)
    assert [s.action for s in planned.plan.steps] == [
        "appliance.generate_key", "appliance.make_csr", "acme.order"]
    monkeypatch.setattr(actions, "registry", failing_registry(step, "fails-after-effect"))
    events: list[dict[str, object]] = []
    outcome = run_apply(planned, tmp_path / "state", events)
    monkeypatch.undo()
    assert outcome.status == "rolled_back", outcome
    assert f"injected failure at step {step}" in (outcome.error or "")
    assert len(outcome.done) == step - 1
    check_undo_order(tmp_path / "state", outcome)
    assert_restored(lab, was, tmp_path / "state")
    calls = log.read_text().splitlines()
    assert calls[0].startswith("set _acme-challenge.")
    assert calls[-1] == "clear _acme-challenge.wlb1.lab.test", calls  # the undo's, last


def _hooks(lab: control.Lab, folder: Path, signum: int | None = None
           ) -> tuple[Path, Path]:
    """A spec whose hooks log each call; with ``signum``, the set hook then signals,
    inside the order while the record is published: SIGKILL to wlbplan (its parent),
    SIGINT to wlbplan's process group, as a terminal's Ctrl-C does (the child runs in a
    session of its own: nothing of pytest is in that group). The hook dies of a Ctrl-C
    that reaches it, as hooks do."""
    challenge, log = logging_hooks(lab, folder)
    if signum is not None:
        killer = folder / "signalling-hook"
        send = "os.killpg(os.getpgid(os.getppid()), signal.SIGINT); time.sleep(0.5)" \
            if signum == signal.SIGINT else f"os.kill(os.getppid(), {int(signum)})"
        killer.write_text(
            f"#!{sys.executable}\n"
            "import os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_DFL)  # dies of Ctrl-C, as hooks do\n"
            f"code = subprocess.call([{challenge['set'][0]!r}, *sys.argv[1:]])\n"
            "if sys.argv[1] == 'set':\n"
            f"    {send}\n"
            "sys.exit(code)\n")
        killer.chmod(0o755)
        for hook in ("set", "clear"):
            challenge[hook] = [str(killer), *challenge[hook][1:]]
    return acme_spec(lab, folder / "spec.yaml", challenge=challenge), log


def _records_cleared(log: Path) -> None:
    """Every TXT record a set hook published was cleared after it."""
    calls = log.read_text().splitlines() if log.exists() else []
    for n, call in enumerate(calls):
        if call.startswith("set "):
            assert f"clear {call.split()[1]}" in calls[n + 1:], calls


def _apply(children: Children, spec: Path, journals: Path, hook: dict[str, Any],
           *more: str) -> tuple[int, str]:
    proc = children.hooked(hook, "apply", str(spec), "--auto-approve", "--state-dir",
                           str(journals), *more, start_new_session=True)
    code, out, err = finish(proc)
    assert "Traceback" not in err, err
    no_key_material(out, err)
    return code, err


def _rollback(spec: Path, journals: Path) -> None:
    """`wlbplan rollback`, in this process (a process less per boundary)."""
    loaded = load_spec(spec)
    said = io.StringIO()
    outcome = pipeline.rollback_one(loaded, pipeline.select(loaded, [TARGET])[0], journals,
                                    EventWriter(said, False, str(spec)))
    assert outcome.status == "rolled_back", said.getvalue()
    no_key_material(said.getvalue())


NO_HOOK = {"on": "never", "step": 0, "do": "fail"}
"""The signal comes from the challenge hook instead."""


def _boundaries(kind: str, steps: list[int]) -> list[tuple[str, dict[str, Any] | None]]:
    """(label, the child's hook), or None: inside the order, from the hook."""
    walk: list[tuple[str, dict[str, Any] | None]] = [
        (f"step {k}", {"on": "apply_start", "step": k, "do": kind}) for k in steps]
    walk.insert(steps.index(ORDER) + 1, ("inside the order", None))
    return walk


def test_sigkill_at_the_acme_boundaries_and_the_last_then_rollback(
        lab: control.Lab, tmp_path: Path, children: Children) -> None:
    """Killed as step 1..4 is announced, inside the order with the record published
    (its undo, journaled before it ran, clears it), and as the last step is announced
    (every install step's undo, then the order's, then the request's): `wlbplan rollback`
    restores all."""
    was = before(lab)
    steps = [1, 2, ORDER, FIRST_INSTALL, STEPS]
    for n, (label, hook) in enumerate(_boundaries("sigkill", steps)):
        folder = tmp_path / f"b{n}"
        folder.mkdir()
        spec, log = _hooks(lab, folder, None if hook else signal.SIGKILL)
        journals = folder / "state"
        code, err = _apply(children, spec, journals, hook or NO_HOOK)
        assert code == -signal.SIGKILL, (label, err)
        held = journal_path(journals).read_text()
        extended = hook is not None and hook["step"] >= FIRST_INSTALL
        assert ('"event": "extend"' in held) == extended, label
        if hook is None:
            assert log.read_text().splitlines()[-1].startswith("set "), "not killed in it"
        _rollback(spec, journals)
        check_undo_order(journals, None)
        _records_cleared(log)
        assert_restored(lab, was, journals)


def test_sigint_at_the_acme_boundaries_rolls_back(lab: control.Lab, tmp_path: Path,
                                                  children: Children) -> None:
    """Ctrl-C as step k starts (the run ends that step, then undoes everything), and
    inside the order as typed at a terminal: wlbplan's hooks run in sessions of their own,
    so it reaches wlbplan, not the hook; the order ends, clears its record, then all is
    undone. Exit 130, the interruption said as one (not as a failed hook)."""
    was = before(lab)
    # The request's first step, the order and the first install step: where an ACME
    # apply differs. A Ctrl-C is handled alike at every step (the run ends the step, then
    # undoes all): test_fault_injection.py walks it over every step of a plan, and every
    # install step's undo runs from the last in the SIGKILL test above.
    steps = [1, ORDER, FIRST_INSTALL]
    for n, (label, hook) in enumerate(_boundaries("sigint", steps)):
        folder = tmp_path / f"b{n}"
        folder.mkdir()
        spec, log = _hooks(lab, folder, None if hook else signal.SIGINT)
        journals = folder / "state"
        code, err = _apply(children, spec, journals, hook or NO_HOOK)
        assert code == 130, (label, err)
        assert "hook" not in err, (label, err)  # the interruption, not a failed hook
        records = check_undo_order(journals, None)
        if hook is not None:
            ran = [r for r in records if r["event"] == "step"]
            assert len(ran) == hook["step"], (label, records)
        _records_cleared(log)
        assert_restored(lab, was, journals)


def test_sigkill_at_every_install_boundary_then_resume(lab: control.Lab, tmp_path: Path,
                                                       children: Children) -> None:
    """Last (it leaves the lab issued). Killed as the first install step is announced,
    then `apply --resume` killed at the next boundary, and so on to the last (and once
    all steps ran, before the journal was closed): every resume goes on with the chain the
    one order journaled, and the last one ends with the pool verifying it."""
    spec, log = _hooks(lab, tmp_path)
    journals = tmp_path / "state"
    code, err = _apply(children, spec, journals,
                       {"on": "apply_start", "step": FIRST_INSTALL, "do": "sigkill"})
    assert code == -signal.SIGKILL, err
    kills = [("apply_start", k) for k in range(FIRST_INSTALL + 1, STEPS + 1)]
    for when, k in [*kills, ("apply_complete", STEPS)]:
        code, err = _apply(children, spec, journals, {"on": when, "step": k, "do": "sigkill"},
                           "--resume")
        assert code == -signal.SIGKILL, (when, k, err)
        assert f"resuming at step {k - 1 if when == 'apply_start' else k} of {STEPS}" \
            in err, err
    code, err = _apply(children, spec, journals, NO_HOOK, "--resume")
    assert code == 0, err
    assert [c.split()[0] for c in log.read_text().splitlines()] == ["set", "clear"]
    assert verify_flag(lab) == "true"
    pool_handshake(lab)
    assert plan_now(lab.spec_path).plan.steps == ()
