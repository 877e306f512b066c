"""An ACME apply stopped at its boundaries, over the SSH connector (the lab's sshd): the
order itself, the first install step after it, the chain's install. Afterwards every file of the
appliance and the pool is byte-identical to before, stunnel serves what it served, the
challenge records were cleared; a killed run is rolled back by `wlbplan rollback` or
finished by `wlbplan apply --resume` (the install steps recorded after the order included).

The fault suite walks every step of the self-signed and CA-signed plans
(test_fault_injection.py); here the boundaries the ACME path adds, one Pebble for all.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

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
    state_dir,
    verify_flag,
    wlbplan,
)

from wlbplan import actions
from wlbplan.lab import control

pytestmark = [pytest.mark.lab, pytest.mark.ssh, needs_pebble]

ORDER, FIRST_INSTALL, INSTALL_CHAIN = 3, 4, 8


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


def test_ctrl_c_during_the_order_clears_the_record_and_rolls_back(
        lab: control.Lab, tmp_path: Path, children: Children) -> None:
    challenge, log = logging_hooks(lab, tmp_path)
    spec = acme_spec(lab, tmp_path / "spec.yaml", challenge=challenge)
    was = before(lab)
    journals = tmp_path / "state"
    proc = children.hooked({"on": "apply_start", "step": ORDER, "do": "sigint"},
                           "apply", str(spec), "--auto-approve", "--state-dir", str(journals))
    code, out, err = finish(proc)
    assert code == 130, err
    assert "Traceback" not in err
    no_key_material(out, err)
    calls = log.read_text().splitlines()
    assert "clear _acme-challenge.wlb1.lab.test" in calls, calls
    check_undo_order(journals, None)
    assert_restored(lab, was, journals)


def test_killed_after_the_order_then_rollback(lab: control.Lab, tmp_path: Path,
                                              children: Children) -> None:
    """Killed as the first install step is announced: the order is done and the steps that
    install its chain are journaled; `wlbplan rollback` undoes all of it."""
    was = before(lab)
    spec, journals = str(lab.spec_path), tmp_path / "state"
    proc = children.hooked({"on": "apply_start", "step": FIRST_INSTALL, "do": "sigkill"},
                           "apply", spec, "--auto-approve", "--state-dir", str(journals))
    code, _, err = finish(proc)
    assert code == -signal.SIGKILL, err
    assert '"event": "extend"' in journal_path(journals).read_text()
    back = wlbplan("rollback", spec, "--target", TARGET, "--state-dir", str(journals))
    assert back.returncode == 0, back.stdout + back.stderr
    no_key_material(back.stdout, back.stderr)
    check_undo_order(journals, None)
    assert_restored(lab, was, journals)


def test_killed_during_the_install_then_resume(lab: control.Lab, children: Children) -> None:
    """Last (it leaves the lab issued): `apply --resume` runs the recorded install steps
    (checked as wlbplan renders them from the issued chain) to the end."""
    spec, journals = str(lab.spec_path), state_dir(lab)
    proc = children.hooked({"on": "apply_start", "step": INSTALL_CHAIN, "do": "sigkill"},
                           "apply", spec, "--auto-approve")
    code, _, err = finish(proc)
    assert code == -signal.SIGKILL, err
    assert journal_path(journals).exists()
    again = wlbplan("apply", spec, "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming at step {INSTALL_CHAIN} of 13" in again.stderr
    assert verify_flag(lab) == "true"
    pool_handshake(lab)
    assert plan_now(lab.spec_path).plan.steps == ()
