"""Hand-built plans for the renderer tests, with real certificates (EC keys: fast).

The shapes follow wlbplan.core.diff (certificate summaries, chains as lists, the verify flag as
booleans) and the step catalogue (masked commands, PEMs in params), not the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from wlbplan.core.diff import Change, cert_summary
from wlbplan.core.plan import Plan, TargetPlan
from wlbplan.core.steps import Step
from wlbplan.lab import pki

FQDN = "wlb.example.com"
CREATED = "2025-01-31T09:30:00Z"


@dataclass(frozen=True)
class Certs:
    root: str
    intermediate: str
    leaf: str
    self_signed: str

    def summary(self, attr: str, **extra: Any) -> dict[str, Any]:
        return {**extra, **cert_summary(getattr(self, attr))}


def _pem(issued: pki.Issued) -> str:
    return issued.cert_pem.decode()


@pytest.fixture(scope="session")
def certs() -> Certs:
    root = pki.build("Test Root CA", key=pki.make_key("ec", 256), ca=True)
    inter = pki.build("Int CA", key=pki.make_key("ec", 256), issuer=root, ca=True)
    leaf = pki.build(FQDN, key=pki.make_key("ec", 384), issuer=inter, sans=[FQDN, "10.0.0.5"])
    own = pki.appliance_self_signed(FQDN, key=pki.make_key("ec", 256))
    return Certs(_pem(root), _pem(inter), _pem(leaf), _pem(own))


def install_changes(c: Certs) -> tuple[Change, ...]:
    """CA-signed install: trust the root, swap the chain, verify on, drop the old trust."""
    return (
        Change("pool.trust[wlbplan-root-1111.pem]", "create", None,
               c.summary("root", name="wlbplan-root-1111.pem", role="root"),
               "the pool must trust the root CA of the appliance's chain"),
        Change("appliance.chain", "update", [c.summary("self_signed")],
               [c.summary("leaf"), c.summary("intermediate"), c.summary("root")],
               "the spec asks the appliance to serve the CA-signed chain (leaf → root)"),
        Change("pool.wlb-verify-cert", "update", False, True,
               "verify: true — the pool must check WLB's certificate (name and chain)"),
        Change("pool.trust[wlbplan-wlb-2222.pem]", "delete",
               c.summary("self_signed", name="wlbplan-wlb-2222.pem"), None,
               "installed by wlbplan for a certificate the appliance no longer needs"),
    )


def install_steps(c: Certs) -> tuple[Step, ...]:
    return (
        Step("pool.install_ca", "pool", "trust wlbplan-root-1111.pem on every host of the pool",
             ("WLBPLAN_TMP=$(mktemp -d)",
              "upload wlbplan-root-1111.pem to $WLBPLAN_TMP/wlbplan-root-1111.pem (0644)",
              "xe pool-install-ca-certificate filename=$WLBPLAN_TMP/wlbplan-root-1111.pem",
              "rm -rf $WLBPLAN_TMP"),
             ("xe pool-uninstall-ca-certificate name=wlbplan-root-1111.pem",),
             {"name": "wlbplan-root-1111.pem", "pem": c.root,
              "fingerprint": cert_summary(c.root)["fingerprint"]}),
        Step("pool.certificate_sync", "pool", "push the coordinator's CA certificates to every "
             "host", ("xe pool-certificate-sync",), ("xe pool-certificate-sync",)),
        Step("appliance.backup", "appliance", "back up server.pem and server.key (an existing "
             "*_orig is never overwritten)",
             ("cp -p -- /etc/ssl/certs/server.pem /etc/ssl/certs/server.pem_orig",),
             ("rm -f -- /etc/ssl/certs/server.pem_orig",),
             {"backups": ["/etc/ssl/certs/server.pem_orig", "/etc/ssl/certs/server.key_orig"]}),
        Step("appliance.install_chain", "appliance", "install the CA-signed chain",
             ("upload the chain to /etc/ssl/certs/server.pem.wlbplan-new (0644)",),
             ("cp -p -- /etc/ssl/certs/server.pem_orig /etc/ssl/certs/server.pem",),
             {"chain": [c.leaf, c.intermediate, c.root],
              "backups": ["/etc/ssl/certs/server.pem_orig", "/etc/ssl/certs/server.key_orig"]}),
        Step("pool.set_verify", "pool", "set wlb-verify-cert=true",
             ("xe pool-param-set uuid=0d6c wlb-verify-cert=true",),
             ("xe pool-param-set uuid=0d6c wlb-verify-cert=false",),
             {"uuid": "0d6c", "value": True, "old": False}),
        Step("pool.confirm", "pool", "confirm the pool still talks to WLB",
             ("xe pool-retrieve-wlb-configuration",)),
        Step("pool.uninstall_ca", "pool", "remove wlbplan-wlb-2222.pem, which wlbplan installed "
             "and nothing needs now",
             ("xe pool-uninstall-ca-certificate name=wlbplan-wlb-2222.pem",),
             ("xe pool-install-ca-certificate filename=$WLBPLAN_TMP/wlbplan-wlb-2222.pem",),
             {"name": "wlbplan-wlb-2222.pem", "pem": c.self_signed, "fingerprint": None}),
    )


def make_plan(*targets: TargetPlan) -> Plan:
    return Plan(spec_path="examples/ca-signed.yaml", spec_digest="ab" * 32, created=CREATED,
                targets=targets)


def unchanged(name: str, notes: tuple[str, ...] = ()) -> TargetPlan:
    return TargetPlan(name, "sha256:" + "00" * 32, "trust", (), (), notes)


@pytest.fixture
def install_plan(certs: Certs) -> Plan:
    """pool1 changes (1 add, 2 change, 1 remove, 7 steps, a note); pool2 is up to date."""
    pool1 = TargetPlan("pool1", "sha256:" + "cd" * 32, "install", install_changes(certs),
                       install_steps(certs), ("the old self-signed certificate stays in "
                                              "server.pem_orig",))
    return make_plan(pool1, unchanged("pool2"))


@pytest.fixture
def trust_plan(certs: Certs) -> Plan:
    """Self-signed: trust the appliance's own certificate and turn verification on."""
    changes = (
        Change("pool.trust[wlbplan-wlb-2222.pem]", "create", None,
               certs.summary("self_signed", name="wlbplan-wlb-2222.pem", role="wlb"),
               "the pool must trust the certificate the appliance serves"),
        Change("pool.wlb-verify-cert", "update", False, True, "verify: true"),
    )
    steps = install_steps(certs)[:1] + install_steps(certs)[4:6]
    return make_plan(TargetPlan("pool1", "sha256:" + "cd" * 32, "trust", changes, steps))


@pytest.fixture
def verify_off_plan() -> Plan:
    change = Change("pool.wlb-verify-cert", "update", True, False,
                    "verify: false — the pool must not check WLB's certificate")
    step = Step("pool.set_verify", "pool", "set wlb-verify-cert=false",
                ("xe pool-param-set uuid=0d6c wlb-verify-cert=false",),
                ("xe pool-param-set uuid=0d6c wlb-verify-cert=true",),
                {"uuid": "0d6c", "value": False, "old": True})
    return make_plan(TargetPlan("pool1", "sha256:" + "cd" * 32, "trust", (change,), (step,)))


@pytest.fixture
def no_change_plan() -> Plan:
    return make_plan(unchanged("pool1"), unchanged("pool2"))
