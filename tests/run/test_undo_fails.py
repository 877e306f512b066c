"""An undo that cannot be done (the appliance refuses the pool's old login when the
reconnect is undone): the rollback goes on with the rest, says what it could not restore
and how to do it by hand, keeps the journal and the lock (a later rollback may still
succeed), and `force-unlock` with the lock id closes it, so the next apply proceeds."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from applylab import (
    TARGET,
    Children,
    _env,
    ca_names,
    finish,
    history,
    journal_path,
    layout,
    lock_file,
    no_key_material,
    state_dir,
    verify_flag,
    wlbplan,
    xe,
)

from wlbplan.lab import control, faults

pytestmark = pytest.mark.lab

CREDS = {"username_env": "T_WLB_USER", "password_env": "T_WLB_PASS",
         "xenserver_username_env": "T_XS_USER", "xenserver_password_env": "T_XS_PASS"}


@pytest.fixture
def by_ip(lab: control.Lab, tmp_path: Path) -> tuple[control.Lab, Path]:
    """A pool that reaches WLB by IP, and a spec that may reconnect it by name."""
    faults.inject(lab.dir, "by-ip")
    data = yaml.safe_load(lab.spec_path.read_text())
    data["targets"][0]["wlb"]["credentials"] = CREDS
    spec = lab.spec_path.with_name("creds.yaml")
    spec.write_text(yaml.safe_dump(data))
    return lab, spec


def _logins(lab: control.Lab, password: str | None = None) -> dict[str, str]:
    account = json.loads(layout(lab).wlb_accounts.read_text())
    return {"T_WLB_USER": account["username"], "T_WLB_PASS": password or account["password"],
            "T_XS_USER": "root", "T_XS_PASS": "xs-secret"}


def _wlb_url(lab: control.Lab) -> str:
    uuid = xe(lab, "pool-list", "--minimal").stdout.strip()
    return xe(lab, "pool-param-get", f"uuid={uuid}", "param-name=wlb-url").stdout.strip()


def test_a_failed_undo_is_reported_with_the_way_by_hand_and_force_unlock_clears_it(
        by_ip: tuple[control.Lab, Path], children: Children) -> None:
    lab, spec = by_ip
    old_url, old_cas, old_flag = _wlb_url(lab), ca_names(lab), verify_flag(lab)
    env = _logins(lab)
    accounts = layout(lab).wlb_accounts
    changed = {**json.loads(accounts.read_text()), "password": "changed-on-the-appliance"}
    hooks: list[dict[str, Any]] = [
        # The step after the reconnect fails; as the rollback starts, the appliance's
        # password changes: undoing the reconnect (pool-initialize-wlb) is refused.
        {"on": "apply_start", "step": 4, "do": "fail"},
        {"on": "rollback_start", "step": None, "do": "write", "path": str(accounts),
         "text": json.dumps(changed)},
    ]
    proc = children.hooked(hooks, "apply", str(spec), "--auto-approve",
                           env={**_env(), **env})
    code, out, err = finish(proc)
    no_key_material(out, err)
    assert env["T_WLB_PASS"] not in out + err
    assert code == 1, err
    assert "Traceback" not in err
    assert "rollback is INCOMPLETE" in err
    # What could not be restored, and how: the exact command, logins by variable only.
    failed = [line for line in err.splitlines() if "undo failed" in line]
    assert len(failed) == 2, err  # as it happened, and in the summary
    command = shlex.join([str(layout(lab).xe), "pool-initialize-wlb", f"wlb_url={old_url}"])
    for line in failed:
        assert f"{TARGET}.03.pool.reconnect: " in line
        assert f"By hand: reconnect the pool to WLB at {old_url}" in line
        assert f"`{command} " in line
        for login, var in (("wlb_username", "T_WLB_USER"), ("wlb_password", "T_WLB_PASS"),
                           ("xenserver_username", "T_XS_USER"),
                           ("xenserver_password", "T_XS_PASS")):
            assert f' {login}="${var}"' in line
    # The rest was undone all the same: the CA certificate is gone, the flag as it was.
    assert ca_names(lab) == old_cas
    assert verify_flag(lab) == old_flag
    # Kept for a later rollback: the journal and the lock; and said how to close them.
    held = json.loads(lock_file(lab).read_text())
    assert journal_path(state_dir(lab)).exists()
    unlock = f"wlbplan force-unlock {spec} {held['id']} --target {TARGET}"
    assert unlock in err

    again = wlbplan("rollback", str(spec), "--target", TARGET)  # the cause is still there
    assert again.returncode == 1, again.stderr
    assert "INCOMPLETE" in again.stderr
    assert unlock in again.stderr
    resumed = wlbplan("apply", str(spec), "--resume", "--target", TARGET)
    assert resumed.returncode == 1, resumed.stderr
    blocked = wlbplan("apply", str(spec), "--auto-approve")
    assert blocked.returncode == 1
    assert "rollback of an earlier apply" in blocked.stderr
    assert unlock in blocked.stderr

    # The operator restores by hand (the new password), then closes the journal.
    xe(lab, "pool-initialize-wlb", f"wlb_url={old_url}", f"wlb_username={env['T_WLB_USER']}",
       "wlb_password=changed-on-the-appliance", "xenserver_username=root",
       "xenserver_password=xs-secret")
    closed = wlbplan("force-unlock", str(spec), "--target", TARGET, "--force", held["id"])
    assert closed.returncode == 0, closed.stderr
    assert held["id"] in closed.stdout
    assert "closed the journal of the incomplete rollback" in closed.stdout
    assert ".pool.reconnect" in closed.stdout
    assert not lock_file(lab).exists()
    assert not journal_path(state_dir(lab)).exists()
    assert [p.name.endswith("-rollback_incomplete.jsonl") for p in history(state_dir(lab))] \
        == [True]

    # The next apply proceeds from the state as it is now.
    applied = children.wlbplan("apply", str(spec), "--auto-approve",
                               env={**_env(), **_logins(lab)})
    code, _, err = finish(applied)
    assert code == 0, err
    assert re.match(rf"wlb1\.lab\.test:{lab.targets[0].port}$", _wlb_url(lab))
    assert verify_flag(lab) == "true"


# ---- which journal force-unlock may close -------------------------------------------------

def test_only_the_journal_of_a_finished_incomplete_rollback_under_that_lock_is_closable(
        tmp_path: Path) -> None:
    from types import SimpleNamespace

    from wlbplan.run.apply import closable_journal
    from wlbplan.run.journal import Journal

    target: Any = SimpleNamespace(name="pool1", spec_path="")
    journal = Journal(tmp_path, "pool1")
    journal.begin({"target": "pool1", "lock_id": "L-1", "pid": 0, "host": "elsewhere"})
    journal.step(1, "pool.reconnect", {"kind": "pool.reconnect", "url": "x:1", "env": {}})
    assert closable_journal(tmp_path, target, "L-1") is None, "a crashed run needs rollback"
    journal.undone(1, False, "refused")
    assert closable_journal(tmp_path, target, "L-1") is None, "a rollback under way"
    journal.incomplete(["pool1.01.pool.reconnect: refused. By hand: …"])
    assert journal.replay().incomplete == ("pool1.01.pool.reconnect: refused. By hand: …",)
    assert closable_journal(tmp_path, target, "L-2") is None, "another lock's id"
    assert closable_journal(tmp_path, target, "L-1") is not None
    journal.undone(1, False, "refused again")  # a new rollback pass began and died
    assert closable_journal(tmp_path, target, "L-1") is None


def test_every_kind_of_undo_says_how_to_do_it_by_hand() -> None:
    """A new kind of undo record comes with its by-hand sentence (else the operator of a
    failed rollback is told only to look in the journal)."""
    from types import SimpleNamespace

    from wlbplan.actions import acme, appliance, pool
    from wlbplan.actions.by_hand import by_hand, explained_kinds

    assert set(pool.UNDO) | set(appliance.UNDO) | set(acme.UNDO) == explained_kinds()
    ctx: Any = SimpleNamespace(target=SimpleNamespace(
        pool=SimpleNamespace(xe="xe"), wlb=SimpleNamespace(restart="restart-stunnel")))
    assert "journal" in by_hand(ctx, {"kind": "from-another-wlbplan"})
    assert "journal" in by_hand(ctx, {"kind": "pool.set_verify"})  # fields missing
