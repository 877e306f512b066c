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
    held_lock,
    held_locks,
    history,
    journal_path,
    layout,
    no_key_material,
    state_dir,
    verify_flag,
    wlbplan,
    xe,
)
from pool_connectors import OVER_BOTH, forwarded

from wlbplan.connectors.xenapi import open_session
from wlbplan.lab import control, faults
from wlbplan.spec import load_spec

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


def _by_hand(lab: control.Lab, spec: Path, connector: str, url: str) -> tuple[str, ...]:
    """What a failed undo of the reconnect tells the operator to type, logins by variable
    only: xe on the coordinator; for a pool reached through XenAPI, xe from any machine
    (-s/-p/-u/-pwf, the account wlbplan used) and the XenAPI call."""
    logins = [f' {login}="${var}"' for login, var in sorted(
        (("wlb_username", "T_WLB_USER"), ("wlb_password", "T_WLB_PASS"),
         ("xenserver_username", "T_XS_USER"), ("xenserver_password", "T_XS_PASS")))]
    if connector == "xe":
        command = shlex.join([str(layout(lab).xe), "pool-initialize-wlb", f"wlb_url={url}"])
        return (f"`{command}{''.join(logins)}`",)
    pool = load_spec(spec).targets[0].pool
    assert pool.credentials is not None
    port = lab.target(TARGET).xenapi_port
    remote = (f"`xe -s 127.0.0.1 -p {port} -u \"${pool.credentials.username_env}\" "
              f"-pwf PASSWORD_FILE pool-initialize-wlb wlb_url={url}{''.join(logins)}`")
    call = (f"(the XenAPI call: pool.initialize_wlb({url}, $T_WLB_USER, $T_WLB_PASS, "
            "$T_XS_USER, $T_XS_PASS))")
    return (remote, f"a file holding ${pool.credentials.password_env}", call)


def _reconnect_by_hand(lab: control.Lab, spec: Path, connector: str, url: str,
                       logins: dict[str, str]) -> None:
    """The operator restores the old address by hand, as the sentence says: xe on the
    coordinator, or the XenAPI call with the account wlbplan used."""
    values = (logins["T_WLB_USER"], logins["T_WLB_PASS"], logins["T_XS_USER"],
              logins["T_XS_PASS"])
    if connector == "xe":
        xe(lab, "pool-initialize-wlb", f"wlb_url={url}", f"wlb_username={values[0]}",
           f"wlb_password={values[1]}", f"xenserver_username={values[2]}",
           f"xenserver_password={values[3]}")
        return
    loaded = load_spec(spec)
    with open_session(TARGET, loaded.targets[0].pool, address_of=loaded.address_of,
                      timeout=30) as api:
        api.call("pool.initialize_wlb", url, *values)


@OVER_BOTH
def test_a_failed_undo_is_reported_with_the_way_by_hand_and_force_unlock_clears_it(
        by_ip: tuple[control.Lab, Path], children: Children, pool_connector: str) -> None:
    lab, spec = by_ip
    old_url, old_cas, old_flag = _wlb_url(lab), ca_names(lab), verify_flag(lab)
    env = _logins(lab)
    accounts = layout(lab).wlb_accounts
    changed = {**json.loads(accounts.read_text()), "password": "changed-on-the-appliance"}
    hooks: list[dict[str, Any]] = [
        # The step after the reconnect fails; as the rollback starts, the appliance's
        # password changes: undoing the reconnect (initialize_wlb) is refused.
        {"on": "apply_start", "step": 4, "do": "fail"},
        {"on": "rollback_start", "step": None, "do": "write", "path": str(accounts),
         "text": json.dumps(changed)},
    ]
    proc = children.hooked(hooks, "apply", str(spec), "--auto-approve",
                           env={**_env(), **env})
    code, out, err = finish(proc)
    no_key_material(out, err)
    passwords = [v for k, v in forwarded().items() if k.endswith("_PASS")]
    for secret in (env["T_WLB_PASS"], env["T_XS_PASS"], *passwords):
        assert secret not in out + err
    assert code == 1, err
    assert "Traceback" not in err
    assert "rollback is INCOMPLETE" in err
    # What could not be restored, and how: the exact command, logins by variable only.
    failed = [line for line in err.splitlines() if "undo failed" in line]
    assert len(failed) == 2, err  # as it happened, and in the summary
    for line in failed:
        assert f"{TARGET}.03.pool.reconnect: " in line
        assert f"By hand: reconnect the pool to WLB at {old_url}" in line
        for words in _by_hand(lab, spec, pool_connector, old_url):
            assert words in line, line
    # The rest was undone all the same: the CA certificate is gone, the flag as it was.
    assert ca_names(lab) == old_cas
    assert verify_flag(lab) == old_flag
    # Kept for a later rollback: the journal and the lock (the same one over xe and
    # XenAPI, its file and its key of other_config); and said how to close them.
    held = held_lock(lab)
    assert journal_path(state_dir(lab)).exists()
    unlock = f"wlbplan force-unlock {spec} {held.id} --target {TARGET}"
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
    _reconnect_by_hand(lab, spec, pool_connector, old_url,
                       {**env, "T_WLB_PASS": "changed-on-the-appliance"})
    assert _wlb_url(lab) == old_url
    closed = wlbplan("force-unlock", str(spec), "--target", TARGET, "--force", held.id)
    assert closed.returncode == 0, closed.stderr
    assert held.id in closed.stdout
    assert "closed the journal of the incomplete rollback" in closed.stdout
    assert ".pool.reconnect" in closed.stdout
    assert not held_locks(lab)
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
    assert not held_locks(lab)


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
