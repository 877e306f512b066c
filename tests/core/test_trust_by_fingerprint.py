"""Every differ case again, the pool's trust known as XenAPI gives it: names and
fingerprints, never the certificates (``TrustedCert.fingerprint``, ``pem`` None).

The core must not know which connector read the pool: the same changes and steps, and
the gate's verdict never looser. Where a certificate the pool holds is someone else's and
matches nothing wlbplan knows (served chain, appliance file, the spec's anchors), the
verdict may be stricter, and the plan says why in a note.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from differ_fixtures import Registry, observed, registry
from test_audit_cases import case_files as audit_case_files
from test_audit_cases import load_case as load_audit_case
from test_audit_cases import load_target_spec as load_audit_spec
from test_differ_cases import case_files, load_case, load_target_spec

from wlbplan import certs
from wlbplan.core import trusted
from wlbplan.core.audit import audit_target
from wlbplan.core.desired import desired_state, managed
from wlbplan.core.plan import plan_one
from wlbplan.errors import WlbplanError
from wlbplan.model.observed import Observed, TrustedCert


def by_fingerprint(seen: Observed) -> Observed:
    """What the XenAPI connector reports of the same pool."""
    items = tuple(
        TrustedCert(name=t.name, fingerprint=certs.fingerprint(
            certs.parse_pem_bundle(t.pem.encode())[0]) if t.pem else None)
        for t in seen.pool.trusted)
    return dataclasses.replace(seen, pool=dataclasses.replace(seen.pool, trusted=items))


def _outcome(spec: Any, seen: Observed) -> Any:
    try:
        return plan_one(spec, spec.targets[0], seen)
    except WlbplanError as err:
        return err


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in case_files()
                                  if "xfail" not in load_case(p)])
def test_same_plan_from_fingerprints(path: Path, tmp_path: Path) -> None:
    case = load_case(path)
    reg = registry()
    reg.write(tmp_path / "certs")
    spec = load_target_spec(case, path.stem, tmp_path)
    target = spec.targets[0]
    full = observed(case.get("observed", {}), target, reg)
    api = by_fingerprint(full)
    with_pems, with_prints = _outcome(spec, full), _outcome(spec, api)
    if isinstance(with_pems, WlbplanError):
        assert isinstance(with_prints, WlbplanError), "a looser verdict from fingerprints"
        return
    desired = desired_state(target, api)
    unseen = [n for n in trusted.unseen(trusted.resolve(
        api, desired.chain, [a.pem for a in desired.trust])) if not managed(n)]
    if isinstance(with_prints, WlbplanError):
        assert unseen, f"refused without an unseen certificate: {with_prints}"
        return
    assert with_prints.changes == _changes_as_seen(with_pems.changes)
    assert [s.action for s in with_prints.steps] == [s.action for s in with_pems.steps]
    noted = any("by fingerprint or name only" in n for n in with_prints.notes)
    assert noted == bool(unseen and desired.verify and desired.chain), with_prints.notes
    for mine, theirs in zip(with_prints.steps, with_pems.steps, strict=True):
        if mine.action == "pool.uninstall_ca" and theirs.params["pem"] is not None:
            # the undo puts back what wlbplan can match, or says it cannot
            known = mine.params["pem"] is not None
            assert known or "no undo" in mine.summary
            assert not known or mine.params["pem"] == theirs.params["pem"]


def _changes_as_seen(changes: Any) -> Any:
    """A removal shows what was known of the certificate: over XenAPI its fingerprint."""
    shown = []
    for change in changes:
        if change.action == "delete" and change.path.startswith("pool.trust["):
            before = {"name": change.before["name"]}
            if "fingerprint" in change.before:
                before["fingerprint"] = change.before["fingerprint"]
            change = dataclasses.replace(change, before=before)
        shown.append(change)
    return tuple(shown)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in audit_case_files()])
def test_same_findings_from_fingerprints(path: Path, reg: Registry, spec_dir: Path) -> None:
    """Audit over fingerprints: the same rules fire; a refusal it cannot be sure of says
    which certificates it could not see."""
    case = load_audit_case(path)
    spec = load_audit_spec(case, path.stem, spec_dir)
    target = spec.targets[0]
    full = observed(case.get("observed", {}), target, reg)
    if case.get("lock") or case.get("conf"):
        pytest.skip("the lock and stunnel.conf do not depend on how trust was read")
    with_pems = audit_target(spec, target, full).findings
    with_prints = audit_target(spec, target, by_fingerprint(full)).findings
    assert {f.rule_id: f.level for f in with_prints} == {f.rule_id: f.level for f in with_pems}
    unseen = trusted.unseen(trusted.resolve(by_fingerprint(full)))
    for finding in with_prints:
        if finding.rule_id == "WLB-POOL-REFUSES-WLB":
            assert ("by fingerprint or name only" in finding.message) == bool(unseen)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in case_files()
                                  if "xfail" not in load_case(p)
                                  and "error" not in load_case(p)["expect"]])
def test_a_xenapi_plan_shows_api_calls(path: Path, tmp_path: Path) -> None:
    """connector: xenapi: the same steps, shown as XenAPI calls; the preflight runs here
    with the bundle the pool will hold, and says it is not the pool's own check."""
    case = copy.deepcopy(load_case(path))
    reg = registry()
    reg.write(tmp_path / "certs")
    ssh_spec = load_target_spec(case, path.stem, tmp_path)
    case["spec"]["pool"] = {**case["spec"]["pool"], "connector": "xenapi",
                            "credentials": {"username_env": "U", "password_env": "P"}}
    api_spec = load_target_spec(case, path.stem, tmp_path)
    full = observed(case.get("observed", {}), ssh_spec.targets[0], reg)
    over_ssh = plan_one(ssh_spec, ssh_spec.targets[0], full)
    over_api = plan_one(api_spec, api_spec.targets[0], by_fingerprint(full))
    assert [s.action for s in over_api.steps] == [s.action for s in over_ssh.steps]
    for step in over_api.steps:
        if step.on != "pool":
            continue
        for line in (*step.commands, *step.undo):
            assert line.startswith(("pool.", "openssl ")), line
            assert "BEGIN" not in line
        if step.action == "pool.preflight":
            assert "not the pool's network position" in step.summary
            assert step.params["bundle"]
            assert all("BEGIN CERTIFICATE" in pem for pem in step.params["bundle"])


def by_name(seen: Observed) -> Observed:
    """What the XenAPI connector reports of a pool before xapi 1.290: names only."""
    items = tuple(TrustedCert(name=t.name, by_name=True) for t in seen.pool.trusted)
    return dataclasses.replace(seen, pool=dataclasses.replace(seen.pool, trusted=items))


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in case_files()
                                  if "xfail" not in load_case(p)
                                  and "error" not in load_case(p)["expect"]
                                  and load_case(p).get("observed", {}).get("pool", {})
                                  .get("trusted")])
def test_trust_known_by_name_alone_is_never_reinstalled(path: Path, tmp_path: Path) -> None:
    """Citrix Hypervisor 8.2 over XenAPI gives names only: wlbplan's own names stand for
    their fingerprints (nothing is removed and put back), a converged pool plans nothing,
    and audit does not call what it cannot see unreadable."""
    case = load_case(path)
    reg = registry()
    reg.write(tmp_path / "certs")
    spec = load_target_spec(case, path.stem, tmp_path)
    target = spec.targets[0]
    full = observed(case.get("observed", {}), target, reg)
    named = by_name(full)
    made = _outcome(spec, named)
    if isinstance(made, WlbplanError):
        return  # the gate, seeing less, may refuse (never accept what SSH refuses: above)
    assert not [c for c in made.changes if c.path.startswith("pool.trust[")
                and c.action == "update"], made.changes
    if not _outcome(spec, full).steps:
        assert not made.steps, [s.action for s in made.steps]
    findings = audit_target(spec, target, named).findings
    seen_over_ssh = {f.rule_id for f in audit_target(spec, target, full).findings}
    if not _outcome(spec, full).steps:  # converged: wlbplan's own names say it all
        assert {f.rule_id for f in findings} == seen_over_ssh
    for finding in findings:
        if finding.rule_id not in seen_over_ssh:  # only a stricter verdict, saying why
            assert finding.rule_id == "WLB-POOL-REFUSES-WLB", finding
            assert "by fingerprint or name only" in finding.message
