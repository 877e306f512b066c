"""The preflight: before wlb-verify-cert flips, a handshake from the coordinator with the
pool's own bundle and checks must pass, or nothing is turned on and everything is undone.

The plan-time gate refuses these faults already, and apply looks at the pool again once it
holds the lock, so each fault is injected *during* the apply, as its first step starts (a
change made behind wlbplan's back mid-run): only the preflight stands between the pool
and a verification it would fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from applylab import (
    assert_applied,
    assert_restored,
    before,
    layout,
    plan_now,
    run_apply,
    running_lab,
    step_index,
    verify_flag,
    wlbplan,
    xe,
)
from pool_connectors import OVER_BOTH, use_logins

from wlbplan.errors import StalePlanError
from wlbplan.lab import appliance, control, faults, pki, stunnel

pytestmark = pytest.mark.lab


class PreflightMissed(AssertionError):
    """Another step than the preflight caught the fault (or nothing did)."""


Hook = Callable[[control.Lab, Path, dict[str, Any]], None]


def _nothing(lab: control.Lab, tmp_path: Path, box: dict[str, Any]) -> None:
    return None


def _fault(name: str) -> Hook:
    def inject(lab: control.Lab, tmp_path: Path, box: dict[str, Any]) -> None:
        faults.inject(lab.dir, name)
    return inject


def _cn_mismatch_but_trusted(lab: control.Lab, tmp_path: Path, box: dict[str, Any]) -> None:
    """The appliance serves a certificate for another name, and the pool trusts it: only
    the name check can fail."""
    faults.inject(lab.dir, "cn-mismatch")
    served = tmp_path / "other-wlb.pem"
    served.write_bytes(layout(lab).cert.read_bytes())
    xe(lab, "pool-install-ca-certificate", f"filename={served}")


def _trust_a_root(lab: control.Lab, tmp_path: Path, box: dict[str, Any]) -> None:
    root = pki.build("Corp Root CA", ca=True)
    box["root"] = root
    (tmp_path / "corp-root.pem").write_bytes(root.cert_pem)
    xe(lab, "pool-install-ca-certificate", f"filename={tmp_path / 'corp-root.pem'}")


def _serve_a_leaf_of_that_root(lab: control.Lab, tmp_path: Path, box: dict[str, Any]) -> None:
    """The appliance now serves a leaf the pool's root signed: the chain verifies, but
    the leaf itself is in no bundle (what xapi before 24.40 needs)."""
    fqdn = lab.target("pool1").fqdn
    leaf = pki.build(fqdn, issuer=box["root"], sans=[fqdn])
    appliance.write_certificate(layout(lab), leaf)
    appliance.write_key(layout(lab), leaf.key)
    assert stunnel.restart(layout(lab)).returncode == 0


def _serve_a_non_rsa_key(lab: control.Lab, tmp_path: Path, box: dict[str, Any]) -> None:
    """The appliance now serves an EC certificate for its right name: xapi's client offers
    ECDHE-RSA suites only, so no handshake happens at all, and s_client still ends with
    "Verify return code: 0 (ok)" (issue 16 #18)."""
    fqdn = lab.target("pool1").fqdn
    issued = pki.appliance_self_signed(fqdn, key=pki.make_key("ec", 256))
    appliance.write_certificate(layout(lab), issued)
    appliance.write_key(layout(lab), issued.key)
    assert stunnel.restart(layout(lab)).returncode == 0


@dataclass(frozen=True)
class Race:
    xapi: str
    fault: Hook
    reason: tuple[str, ...]
    before_plan: Hook = _nothing
    marks: tuple[Any, ...] = field(default=())
    # Over XenAPI the preflight's bundle is the plan's (wlbplan's own anchors and those it
    # matched by fingerprint: XenAPI shows no PEM), so a CA the pool trusts that wlbplan
    # holds no PEM of is not in it: the chain fails first, and that is the reason given.
    # Refused all the same (what the pool refuses is never accepted), in other words.
    over_xenapi: tuple[str, ...] | None = None


RACES = {
    "cn-mismatch": Race("current", _fault("cn-mismatch"), ("self-signed", "certificate")),
    "cn-mismatch-trusted": Race("current", _cn_mismatch_but_trusted, ("hostname mismatch",),
                                over_xenapi=("(chain): self-signed certificate",)),
    "expire": Race("current", _fault("expire"), ("certificate",)),
    "by-ip": Race("current", _fault("by-ip"), ("hostname mismatch", "127.0.0.1")),
    "non-rsa-key": Race("current", _serve_a_non_rsa_key, ("no TLS handshake", "ECDHE-RSA")),
    # Over XenAPI the root is not in the preflight's bundle either: the leaf's missing
    # issuer, which legacy xapi ignores, is not the reason; the leaf not in it is.
    "legacy-root-only": Race("legacy", _serve_a_leaf_of_that_root,
                             ("(leaf-in-bundle)", "must be in the pool's bundle"),
                             before_plan=_trust_a_root),
}


@OVER_BOTH
@pytest.mark.parametrize("race", [pytest.param(r, id=k, marks=r.marks)
                                  for k, r in RACES.items()])
def test_preflight_catches_a_fault_between_plan_and_apply(race: Race, tmp_path: Path,
                                                          pool_connector: str) -> None:
    """Over XenAPI the preflight runs here, with the bundle the pool will hold: it must
    catch the same faults."""
    with running_lab(tmp_path / "lab", pool_connector, hosts=2, xapi=race.xapi) as lab, \
            pytest.MonkeyPatch.context() as env:
        use_logins(lab, env)
        box: dict[str, Any] = {}
        race.before_plan(lab, tmp_path, box)
        planned = plan_now(lab.spec_path)
        actions = [s.action for s in planned.plan.steps]
        assert "pool.preflight" in actions
        assert actions.index("pool.preflight") < actions.index("pool.set_verify")
        def race_on_first_step(event: dict[str, Any]) -> None:
            if event["type"] == "apply_start" and "was" not in box:
                race.fault(lab, tmp_path, box)
                box["was"] = before(lab)

        journals = tmp_path / "state"
        events: list[dict[str, Any]] = []
        outcome = run_apply(planned, journals, events, report=race_on_first_step)

        was = box["was"]
        assert was.flag == "false"
        assert outcome.status == "rolled_back", outcome
        assert verify_flag(lab) == "false"
        assert_restored(lab, was, journals)
        failed = [e for e in events if e["type"] == "apply_errored"]
        started = [planned.plan.steps[step_index(e) - 1].action
                   for e in events if e["type"] == "apply_start"]
        if not failed or not str(failed[0]["step"]).endswith("pool.preflight") \
                or "pool.set_verify" in started:
            raise PreflightMissed(f"steps started: {started}; error: {outcome.error}")
        reason = race.over_xenapi if pool_connector == "xenapi" else None
        for word in reason or race.reason:
            assert word in (outcome.error or ""), outcome.error
        assert "wlb-verify-cert was left as it is" in (outcome.error or "")


def test_a_root_signed_leaf_is_enough_for_current_xapi(tmp_path: Path) -> None:
    """The control for legacy-root-only: the same race on xapi >= 24.40 (verifyChain) is
    fine, so the preflight above refused for the legacy rule, not for nothing."""
    with running_lab(tmp_path / "lab", hosts=2, xapi="current") as lab:
        box: dict[str, Any] = {}
        _trust_a_root(lab, tmp_path, box)
        planned = plan_now(lab.spec_path)

        def race_on_first_step(event: dict[str, Any]) -> None:
            if event["type"] == "apply_start" and "served" not in box:
                box["served"] = True
                _serve_a_leaf_of_that_root(lab, tmp_path, box)

        outcome = run_apply(planned, tmp_path / "state", report=race_on_first_step)
        assert outcome.status == "applied", outcome
        assert verify_flag(lab) == "true"
        xe(lab, "pool-retrieve-wlb-configuration")


@pytest.mark.parametrize(("fault", "words"), [
    ("cn-mismatch", ["hostname mismatch", "wlb1.lab.test"]),
    ("expire", ["expired"]),
    ("by-ip", ["hostname mismatch", "127.0.0.1", "by IP"]),
])
def test_plan_refuses_when_the_fault_is_there_before_planning(
        lab: control.Lab, fault: str, words: list[str]) -> None:
    faults.inject(lab.dir, fault)
    was = before(lab)
    result = wlbplan("plan", str(lab.spec_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wlb-verify-cert" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    refused = wlbplan("apply", str(lab.spec_path), "--auto-approve")
    assert refused.returncode == 1
    assert verify_flag(lab) == was.flag == "false"


def test_plan_refuses_a_served_key_xapi_cannot_use(lab: control.Lab, tmp_path: Path) -> None:
    """WLB-CERT-KEY-NOT-RSA was shown and the plan offered all the same (issue 16 #18)."""
    _serve_a_non_rsa_key(lab, tmp_path, {})
    was = before(lab)
    result = wlbplan("plan", str(lab.spec_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "WLB-CERT-KEY-NOT-RSA" in result.stderr
    assert "ECDHE-RSA" in result.stderr
    assert "Traceback" not in result.stderr
    refused = wlbplan("apply", str(lab.spec_path), "--auto-approve")
    assert refused.returncode == 1
    assert "pool.install_ca" not in refused.stdout
    assert_restored(lab, was, None)


def test_legacy_plan_trusts_the_leaf_itself(tmp_path: Path) -> None:
    """Legacy xapi with a pool that trusts only the root: the plan does not refuse, it
    trusts the served leaf itself and preflights in leaf-in-bundle mode; applied, the
    pool talks to WLB."""
    with running_lab(tmp_path / "lab", hosts=2, xapi="legacy") as lab:
        box: dict[str, Any] = {}
        _trust_a_root(lab, tmp_path, box)
        _serve_a_leaf_of_that_root(lab, tmp_path, box)
        planned = wlbplan("plan", str(lab.spec_path))
        assert planned.returncode == 0, planned.stderr
        assert "leaf-in-bundle" in planned.stdout
        assert "pool.install_ca" in planned.stdout
        applied = wlbplan("apply", str(lab.spec_path), "--auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert_applied(lab)
        assert "corp-root.pem" in xe(lab, "pool-certificate-list").stdout



def test_apply_looks_again_under_the_lock(tmp_path: Path) -> None:
    """A change between plan and apply (another operator, another apply that held the lock)
    is caught once the lock is held: nothing runs, nothing changes, the lock is released."""
    with running_lab(tmp_path / "lab", hosts=2) as lab:
        planned = plan_now(lab.spec_path)
        faults.inject(lab.dir, "cn-mismatch")
        was = before(lab)
        events: list[dict[str, Any]] = []
        with pytest.raises(StalePlanError, match=r"appliance\.chain"):
            run_apply(planned, tmp_path / "state", events)
        assert [e for e in events if e["type"] == "apply_start"] == []
        assert_restored(lab, was, None)  # no step ran: no journal was even begun
        assert not (tmp_path / "state").exists()
