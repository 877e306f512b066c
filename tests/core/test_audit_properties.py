"""Audit never crashes on what a pool and an appliance can hold: for any mix of served and
installed chains, keys, trust, flags and addresses (hypothesis over the differ cases'
certificate registry), ``audit_target`` returns catalogued, located, clean findings, and
the verdict agrees with the levels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from differ_fixtures import Registry, observed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wlbplan.core import rules
from wlbplan.core.audit import audit_target, make_audit
from wlbplan.spec import load_spec_text

WLB_CERTS = ["self_signed_wlb", "old_self_signed_wlb", "expiring_self_signed_wlb",
             "ip_cn_self_signed", "leaf", "new_leaf", "deep_leaf", "ec_leaf", "ip_leaf",
             "expired_leaf", "other_leaf"]
CAS = ["root", "intermediate", "issuing", "other_root", "other_intermediate", "corp_ca"]
SPECS = {
    "self-signed": {"source": "self-signed"},
    "request": {"source": "ca-signed", "request": {"common_name": "wlb.example.com"}},
    "install": {"source": "ca-signed", "request": {"common_name": "wlb.example.com"},
                "signed": "certs/leaf.pem", "intermediates": ["certs/intermediate.pem"],
                "root": "certs/root.pem"},
}


def trusted() -> st.SearchStrategy[list[dict[str, Any]]]:
    entry = st.fixed_dictionaries(
        {"name": st.sampled_from(["wlbplan-wlb-*", "wlbplan-root-*", "wlbplan-leaf-*",
                                  "wlbplan-intermediate-*", "corp.pem"]),
         "cert": st.sampled_from(WLB_CERTS + CAS)},
        optional={"unreadable": st.booleans()})
    return st.lists(entry, max_size=4, unique_by=lambda e: (e["name"], e["cert"]))


def appliance() -> st.SearchStrategy[dict[str, Any]]:
    chain = st.lists(st.sampled_from(WLB_CERTS + CAS), min_size=0, max_size=3)
    return st.fixed_dictionaries(
        {"chain": chain},
        optional={"served": chain, "key": st.sampled_from(["match", "mismatch", "missing"]),
                  "key_mode": st.sampled_from(["600", "640", "644", "400"]),
                  "served_error": st.just("connect: Connection refused"),
                  "pending_key": st.sampled_from(WLB_CERTS)})


def pool() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={"xapi": st.sampled_from(["25.6.0", "24.19.2", "not-a-version"]),
                  "wlb_url": st.sampled_from(["wlb.example.com:8012", "10.0.0.5:8012",
                                              "WLB.EXAMPLE.COM:8012", "", "other:8013",
                                              "[2001:db8::5]:8012"]),
                  "verify": st.booleans(), "trusted": trusted()})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(SPECS)), verify=st.booleans(), seen_appliance=appliance(),
       seen_pool=pool())
def test_audit_never_crashes_and_reports_cleanly(
        reg: Registry, spec_dir: Path, kind: str, verify: bool,
        seen_appliance: dict[str, Any], seen_pool: dict[str, Any]) -> None:
    if seen_appliance.get("key") == "match" and not seen_appliance["chain"]:
        seen_appliance = {**seen_appliance, "key": "missing"}  # a key matches a certificate
    document = {"version": 1, "targets": [{
        "name": "t", "pool": {"coordinator": "xs1.example.com"},
        "wlb": {"address": "wlb.example.com"}, "certificate": SPECS[kind], "verify": verify}]}
    spec, diagnostics = load_spec_text(yaml.safe_dump(document), spec_dir / "t.yaml")
    assert spec is not None, diagnostics
    target = spec.targets[0]
    seen = observed({"appliance": seen_appliance, "pool": seen_pool}, target, reg)
    audited = audit_target(spec, target, seen)
    for finding in audited.findings:
        assert finding.rule_id in rules.CATALOGUE
        assert finding.line is not None
        assert "BEGIN" not in finding.message + finding.hint
        assert finding.message
    audit = make_audit(spec, [audited])
    levels = {f.level for f in audited.findings}
    assert audit.fails("error") == ("error" in levels)
    assert audit.fails("warning") == bool(levels & {"error", "warning"})
    assert not audit.fails(None)
