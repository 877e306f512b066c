"""source: acme in the pure core, on data: when an order is due and why, the order stage's
changes and steps, the install plan made from an issued chain, and its plan-file round
trip. No Pebble, no lab: the ACME client is an effect the core never sees."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from differ_fixtures import FQDN, Registry, observed, registry

from wlbplan.core.plan import TargetPlan, plan_one
from wlbplan.core.planfile import check_target, read_target_plan, target_plan_to_json
from wlbplan.model.spec import Spec
from wlbplan.spec import load_spec_text

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def reg() -> Registry:
    return registry()


def _spec(folder: Path, reg: Registry, *, renew: int = 30, request: Any = None) -> Spec:
    (folder / "root.pem").write_text(reg.pem("root"))
    data = {"version": 1, "targets": [{
        "name": "t", "pool": {"coordinator": "xs1.example.com"},
        "wlb": {"address": FQDN}, "certificate": {
            "source": "acme", "request": request or {"key": {"type": "rsa", "bits": 2048}},
            "acme": {"directory": "https://ca.example.com/dir", "root": "root.pem",
                     "challenge": {"type": "dns-01",
                                   "set": ["dns-hook", "set", "{name}", "{value}"],
                                   "clear": ["dns-hook", "clear", "{name}"]},
                     "renew_before_days": renew}}}]}
    spec, diagnostics = load_spec_text(yaml.safe_dump(data), folder / "spec.yaml")
    assert spec is not None, diagnostics
    return spec


def _plan(spec: Spec, seen: dict[str, Any], reg: Registry, **kw: Any) -> TargetPlan:
    target = spec.targets[0]
    return plan_one(spec, target, observed(seen, target, reg), stamp=NOW, **kw)


ISSUED = {"appliance": {"chain": ["leaf", "intermediate", "root"]},
          "pool": {"verify": True, "trusted": [{"name": "wlbplan-root-*", "cert": "root"},
                                               {"name": "wlbplan-intermediate-*",
                                                "cert": "intermediate"}]}}


def test_a_self_signed_appliance_needs_an_order(tmp_path: Path, reg: Registry) -> None:
    plan = _plan(_spec(tmp_path, reg), {"appliance": {"chain": ["self_signed_wlb"]}}, reg)
    assert plan.stage == "order"
    assert [s.action for s in plan.steps] == [
        "appliance.generate_key", "appliance.make_csr", "acme.order"]
    changes = {c.path: c for c in plan.changes}
    chain = changes["appliance.chain"]
    assert chain.reason.startswith("issue: the appliance serves a self-signed certificate")
    assert chain.after[0]["issuer"] == "the ACME CA at https://ca.example.com/dir"
    assert chain.after[0]["sans"] == [f"DNS:{FQDN}"]
    trusted = [p for p in changes if p.startswith("pool.trust[wlbplan-root-")]
    assert len(trusted) == 1
    assert changes["pool.wlb-verify-cert"].after is True
    order = plan.steps[-1]
    assert order.on == "local"
    assert order.params["names"] == [FQDN]
    assert order.params["root"] == reg.fingerprint("root")
    # The hook as it will run: argv, quoted, the value left for the CA's token.
    assert f"dns-hook set _acme-challenge.{FQDN} '{{value}}'" in "\n".join(order.commands)
    assert order.undo == (f"dns-hook clear _acme-challenge.{FQDN}",)
    # The CSR lists the CN among its names: the CA issues for exactly those.
    assert f"subjectAltName=DNS:{FQDN}" in plan.steps[1].commands[0]
    assert any(n.startswith("then, in the same apply") for n in plan.notes)
    for step in plan.steps:
        assert not any("BEGIN" in c or "PRIVATE" in c for c in (*step.commands, *step.undo))


def test_an_issued_certificate_that_is_not_due_has_nothing_to_do(tmp_path: Path,
                                                                  reg: Registry) -> None:
    plan = _plan(_spec(tmp_path, reg), ISSUED, reg)
    assert plan.stage == "install"
    assert plan.steps == ()
    assert plan.status == "no_changes"


def test_renewal_is_due_within_renew_before_days(tmp_path: Path, reg: Registry) -> None:
    expires = reg.issued["leaf"].cert.not_valid_after_utc
    days = (expires - NOW).days
    plan = _plan(_spec(tmp_path, reg, renew=days + 1), ISSUED, reg)
    assert plan.stage == "order"
    (reason,) = [c.reason for c in plan.changes if c.path == "appliance.chain"]
    assert reason == (f"renew: expires {expires:%Y-%m-%d}, in {days} days "
                      f"(renew_before_days: {days + 1})")
    # One day less of margin: not due yet.
    assert _plan(_spec(tmp_path, reg, renew=days - 1), ISSUED, reg).steps == ()


@pytest.mark.parametrize(("request_", "said"), [
    ({"alt_names": [f"DNS:{FQDN}", "DNS:wlb2.example.com"], "key": {"type": "rsa"}},
     f"names: the certificate carries DNS:{FQDN}; the spec asks for DNS:wlb.example.com, "
     "DNS:wlb2.example.com"),
    ({"key": {"type": "rsa", "bits": 3072}},
     "key: the certificate is for an RSA 2048 key; the spec asks for RSA 3072"),
])
def test_names_or_key_that_no_longer_match_are_due(tmp_path: Path, reg: Registry,
                                                   request_: Any, said: str) -> None:
    plan = _plan(_spec(tmp_path, reg, request=request_), ISSUED, reg)
    (reason,) = [c.reason for c in plan.changes if c.path == "appliance.chain"]
    assert reason == said


def test_a_chain_from_another_ca_is_due(tmp_path: Path, reg: Registry) -> None:
    seen = {"appliance": {"chain": ["other_leaf", "other_intermediate", "other_root"]}}
    (reason,) = [c.reason for c in _plan(_spec(tmp_path, reg), seen, reg).changes
                 if c.path == "appliance.chain"]
    assert reason.startswith("issue: the appliance serves a certificate issued by "
                             "CN=wlbplan Other Intermediate CA, not by the ACME CA")


def test_the_issued_chain_is_installed_as_the_ca_signed_path_does(tmp_path: Path,
                                                                  reg: Registry) -> None:
    """What the apply plans once the order returned (the pending key on the appliance is
    the one the leaf was issued for); its plan file round-trips and re-renders exactly."""
    spec = _spec(tmp_path, reg)
    seen = {"appliance": {"chain": ["self_signed_wlb"], "pending_key": "leaf",
                          "pending_csr": {"key": "leaf", "subject": f"/CN={FQDN}",
                                          "sans": [f"DNS:{FQDN}"]}}}
    issued = (reg.pem("leaf"), reg.pem("intermediate"))
    plan = _plan(spec, seen, reg, issued=issued)
    assert plan.stage == "install"
    assert [s.action for s in plan.steps] == [
        "pool.install_ca", "pool.install_ca", "pool.certificate_sync", "appliance.backup",
        "appliance.install_chain", "appliance.restart", "appliance.clear_request",
        "pool.preflight", "pool.set_verify", "pool.confirm"]
    install = next(s for s in plan.steps if s.action == "appliance.install_chain")
    assert install.params["key_source"] == "pending"
    assert install.params["chain"] == [reg.pem("leaf"), reg.pem("intermediate"),
                                       reg.pem("root")]
    doc = target_plan_to_json(plan)
    assert doc["options"]["issued"] == list(issued)
    check_target(spec, read_target_plan(doc, "test"), "test")


def test_an_issued_chain_for_another_key_is_refused(tmp_path: Path, reg: Registry) -> None:
    seen = {"appliance": {"chain": ["self_signed_wlb"], "pending_key": "new_leaf"}}
    with pytest.raises(Exception, match="was not issued for this appliance"):
        _plan(_spec(tmp_path, reg), seen, reg, issued=(reg.pem("leaf"),
                                                       reg.pem("intermediate")))
