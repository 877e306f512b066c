"""The pool over XenAPI, on one lab (``lab up --xenapi``) shared by the module: what only
XenAPI has: plan, apply and audit through the lab's XenAPI server while xe sees the same
pool, the pool's own confirm refused, the refusals (a read-only account), the lock in the
pool's other_config (audited, force-unlocked, Ctrl-C), every session logged out, and the
password nowhere. The walks that run over both connectors (fault injection at every step,
SIGKILL and rollback, resume, the CA rotation, audit after faults) are the SSH suites'
own, parametrized by ``pool_connector`` (tests/pool_connectors.py).

The same pool is reached by the local connector (xe) too: what one changes, the other
sees. Each test starts from the fresh pool (``fresh``), checked byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from applylab import (
    TARGET,
    Children,
    assert_applied,
    assert_restored,
    before,
    ca_names,
    check_undo_order,
    finish,
    held_lock,
    held_locks,
    layout,
    lock_file,
    plan_now,
    run_apply,
    snapshot,
    snapshot_diff,
    state_dir,
    verify_flag,
    wait_for_text,
    wlbplan,
    xe,
)
from applylab import (
    _env as operator_env,
)

from wlbplan.lab import control, faults, xe_state
from wlbplan.lab.labspec import xenapi_pool
from wlbplan.lab.layout import LOGINS_FILE
from wlbplan.lab.xenapi.server import SESSIONS_FILE

pytestmark = pytest.mark.lab


def logins(lab: control.Lab) -> dict[str, str]:
    lines = (lab.dir / LOGINS_FILE).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def xenapi_env(lab: control.Lab) -> dict[str, str]:
    return {k: v for k, v in logins(lab).items() if "_XENAPI_" in k}


@pytest.fixture(scope="module")
def xlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    folder = tmp_path_factory.mktemp("xenapi") / "lab"
    lab = control.up(folder, hosts=2, xenapi_role="pool-operator")
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in xenapi_env(lab).items():
                env.setenv(key, value)
            yield lab
    finally:
        control.down(folder)


def sessions(lab: control.Lab) -> dict[str, int]:
    path = layout(lab).pool_dir / SESSIONS_FILE
    return json.loads(path.read_text()) if path.exists() else {"open": 0, "logins": 0}


def reset(lab: control.Lab) -> None:
    """The fresh pool: no wlbplan trust, verification off, no lock (key or file), no fault."""
    faults.clear(lab.dir)
    for name in ca_names(lab):
        xe(lab, "pool-uninstall-ca-certificate", f"name={name}")
    uuid = xe_state.load(layout(lab).pool_state)["pool"]["uuid"]
    xe(lab, "pool-param-set", f"uuid={uuid}", "wlb-verify-cert=false")
    with xe_state.locked(layout(lab).pool_state) as state:
        state["pool"]["other-config"] = {}
        xe_state.save(layout(lab).pool_state, state)
    lock_file(lab).unlink(missing_ok=True)


@pytest.fixture
def fresh(xlab: control.Lab) -> control.Lab:
    reset(xlab)
    assert verify_flag(xlab) == "false"
    assert not ca_names(xlab)
    return xlab


def ssh_form(lab: control.Lab, folder: Path) -> Path:
    """The same lab's spec with the pool reached by xe (the local connector)."""
    data = yaml.safe_load(lab.spec_path.read_text())
    coordinator = xe_state.coordinator(layout(lab))
    data["targets"][0]["pool"] = {
        "coordinator": "localhost", "xe": str(layout(lab).xe), "connection": "local",
        "trust_dir": str(coordinator.stunnel_dir),
        "state_dir": str(coordinator.root / "var" / "lib" / "wlbplan")}
    path = folder / "over-xe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_lab_spec_is_the_xenapi_form(xlab: control.Lab) -> None:
    pool = yaml.safe_load(xlab.spec_path.read_text())["targets"][0]["pool"]
    assert pool == xenapi_pool(xlab, xlab.target(TARGET))
    assert pool["connector"] == "xenapi"


def test_plan_apply_audit_and_xe_sees_the_same_pool(fresh: control.Lab, tmp_path: Path
                                                    ) -> None:
    """The CLI over XenAPI: plan, apply, nothing left to do; the pool reached by xe then
    plans nothing either; audit is clean; the password is in no output, plan file,
    journal or log; every session was logged out."""
    lab, env = fresh, xenapi_env(fresh)
    password = env["POOL1_XENAPI_PASS"]
    was = sessions(lab)["logins"]
    saved = tmp_path / "plan.json"
    runs = [wlbplan("plan", str(lab.spec_path), "--out", str(saved), env=env),
            wlbplan("apply", str(saved), "--auto-approve", env=env),
            wlbplan("plan", str(lab.spec_path), "--detailed-exitcode", env=env),
            wlbplan("plan", str(ssh_form(lab, tmp_path)), "--detailed-exitcode"),
            wlbplan("audit", str(lab.spec_path), "--format", "json", env=env),
            wlbplan("inspect", str(lab.spec_path), "--format", "json", env=env)]
    codes = [r.returncode for r in runs]
    assert codes == [0, 0, 0, 0, 0, 0], [(r.returncode, r.stderr[-400:]) for r in runs]
    assert "pool.install_ca_certificate(" in runs[0].stdout
    assert_applied(lab)
    inspected = json.loads(runs[5].stdout)
    (trusted,) = inspected["targets"][0]["pool"]["trusted"]
    assert trusted["pem"] is None
    assert trusted["fingerprint"]
    written = [saved, *state_dir(lab).rglob("*"), *Path(lab.spec_path.parent).glob("*.log")]
    for run in runs:
        assert password not in run.stdout + run.stderr
    for path in written:
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
    assert sessions(lab)["open"] == 0
    assert sessions(lab)["logins"] > was


def test_a_failed_confirm_is_rolled_back(fresh: control.Lab, tmp_path: Path) -> None:
    """WLB refuses the pool's login: the preflight (TLS) passes, the pool's own check
    (confirm) fails, and everything is undone through XenAPI."""
    lab = fresh
    was = before(lab)
    accounts = layout(lab).wlb_accounts
    kept = accounts.read_bytes()
    accounts.write_text(json.dumps({"username": "wlbuser", "password": "changed"}))
    try:
        outcome = run_apply(plan_now(lab.spec_path), tmp_path / "state")
    finally:
        accounts.write_bytes(kept)
    assert outcome.status == "rolled_back", outcome
    assert "WLB_AUTHENTICATION_FAILED" in (outcome.error or "")
    check_undo_order(tmp_path / "state", outcome)
    assert_restored(lab, was, tmp_path / "state")


def test_a_read_only_account_changes_nothing(fresh: control.Lab) -> None:
    """The pool refuses the first change (RBAC_PERMISSION_DENIED): apply exits 1 naming the
    role it needs, nothing changed, the lock never taken, the session logged out."""
    lab = fresh
    files = snapshot(lab)
    faults.inject(lab.dir, "xenapi-read-only")
    try:
        plan = wlbplan("plan", str(lab.spec_path), env=xenapi_env(lab))
        run = wlbplan("apply", str(lab.spec_path), "--auto-approve", env=xenapi_env(lab))
    finally:
        faults.clear(lab.dir, "xenapi-read-only")
    assert plan.returncode == 0, plan.stderr  # reading needs no more than read-only
    assert run.returncode == 1, run.stdout + run.stderr
    said = run.stdout + run.stderr
    assert "RBAC_PERMISSION_DENIED" in said
    assert "needs the pool-operator role" in said
    assert not snapshot_diff(files, snapshot(lab))
    assert sessions(lab)["open"] == 0


def test_the_lock_is_a_key_of_other_config(fresh: control.Lab, children: Children) -> None:
    """A lock held in other_config stops an apply (its id named); force-unlock takes
    exactly that id; a Ctrl-C mid-apply rolls back and still logs the session out."""
    lab, env = fresh, xenapi_env(fresh)
    record = {"id": "6b1c7a8e-0d4e-4f51-9a35-3c1b2a9d7e10", "owner": "op@elsewhere",
              "pid": 4242, "created": "2025-01-31T09:30:00Z", "target": TARGET}
    with xe_state.locked(layout(lab).pool_state) as state:
        state["pool"]["other-config"]["wlbplan-apply-lock"] = json.dumps(record)
        xe_state.save(layout(lab).pool_state, state)
    refused = wlbplan("apply", str(lab.spec_path), "--auto-approve", env=env)
    assert refused.returncode == 1
    assert record["id"] in refused.stdout + refused.stderr
    audited = wlbplan("audit", str(lab.spec_path), "--format", "json", env=env)
    (finding,) = [f for f in json.loads(audited.stdout)["targets"][0]["findings"]
                  if f["rule_id"] == "WLB-POOL-LOCKED"]
    assert record["id"] in finding["message"]
    wrong = wlbplan("force-unlock", str(lab.spec_path), "--force", "nope", env=env)
    assert wrong.returncode == 1
    done = wlbplan("force-unlock", str(lab.spec_path), "--force", record["id"], env=env)
    assert done.returncode == 0, done.stderr
    assert xe_state.load(layout(lab).pool_state)["pool"]["other-config"] == {}
    was = before(lab)
    proc = children.hooked({"on": "apply_start", "step": 4, "do": "sigint"},
                           "apply", str(lab.spec_path), "--auto-approve",
                           env={**operator_env(), **env})
    code, out, err = finish(proc)
    assert code == 130, out + err
    assert_restored(lab, was, None)
    assert sessions(lab)["open"] == 0


def test_a_run_over_ssh_and_one_over_xenapi_exclude_each_other(fresh: control.Lab,
                                                               tmp_path: Path) -> None:
    """One pool, one lock, whichever connector: a lock taken over XenAPI stops a run over
    xe (and its inspection shows it), and the reverse; taken at the same instant, exactly
    one of the two wins, round after round, and the other's refusal names the winner.

    Before: the SSH path kept its lock in a file alone and XenAPI's in other_config
    alone, so both runs took "the" lock at once."""
    import threading

    from wlbplan.errors import LockError
    from wlbplan.inspect.run import inspect_hosts
    from wlbplan.model.lock import LockInfo
    from wlbplan.run import lock
    from wlbplan.run.sessions import open_sessions

    lab = fresh
    over = {"xenapi": plan_now(lab.spec_path), "xe": plan_now(ssh_form(lab, tmp_path))}
    with open_sessions(over["xenapi"].spec, over["xenapi"].target) as api, \
            open_sessions(over["xe"].spec, over["xe"].target) as shell:
        sessions = {"xenapi": api, "xe": shell}
        for first, second in (("xenapi", "xe"), ("xe", "xenapi")):
            held = lock.acquire(sessions[first].pool, over[first].target)
            with pytest.raises(LockError, match=held.id):
                lock.acquire(sessions[second].pool, over[second].target)
            seen = inspect_hosts(over[second].target, sessions[second]).lock
            assert seen is not None
            assert seen.id == held.id
            assert lock.release(sessions[first].pool, over[first].target, held.id)
            assert not held_locks(lab)
        for round_ in range(8):
            start = threading.Barrier(2)
            got: dict[str, LockInfo | LockError] = {}

            def take(name: str, start: threading.Barrier = start,
                     got: dict[str, LockInfo | LockError] = got) -> None:
                start.wait()
                try:
                    got[name] = lock.acquire(sessions[name].pool, over[name].target)
                except LockError as err:
                    got[name] = err

            threads = [threading.Thread(target=take, args=(n,)) for n in sessions]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            won = {n: g for n, g in got.items() if isinstance(g, LockInfo)}
            lost = [str(g) for g in got.values() if isinstance(g, LockError)]
            assert len(won) == 1, (round_, got)
            assert len(lost) == 1, (round_, got)
            ((name, info),) = won.items()
            assert info.id in lost[0], lost[0]
            assert lock.release(sessions[name].pool, over[name].target, info.id)
            assert not held_locks(lab), round_


def test_an_apply_over_xe_waits_for_one_over_xenapi(fresh: control.Lab, tmp_path: Path,
                                                    children: Children) -> None:
    """Two applies, one per connector, end to end: the one over XenAPI holds the pool
    (paused at its first step); the one over xe is refused naming it, changes nothing; the
    first finishes, and the pool then plans nothing over xe."""
    lab, env = fresh, xenapi_env(fresh)
    mark, go = tmp_path / "paused", tmp_path / "go"
    first = children.hooked({"on": "apply_start", "step": 1, "do": "pause",
                             "mark": str(mark), "until": str(go), "timeout": 90},
                            "apply", str(lab.spec_path), "--auto-approve",
                            env={**operator_env(), **env})
    wait_for_text(mark, "", first)
    held = held_lock(lab)
    assert held.pid == first.pid
    over_xe = str(ssh_form(lab, tmp_path))
    files = snapshot(lab)
    refused = wlbplan("apply", over_xe, "--auto-approve")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "another apply is running on this pool" in refused.stderr
    assert held.id in refused.stderr
    assert not snapshot_diff(files, snapshot(lab))
    go.write_text("")
    code, out, err = finish(first)
    assert code == 0, out + err
    assert_applied(lab)
    again = wlbplan("plan", over_xe, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
