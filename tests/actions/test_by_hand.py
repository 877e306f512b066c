"""What a failed undo tells the operator to do by hand, for the pool's undo records
(actions/by_hand.py).

Before: a pool reached through XenAPI was told to run ``xe`` "on the coordinator", where
it may have no shell at all; and a Citrix Hypervisor 8.2 pool (xapi 1.249) was given
``pool-uninstall-ca-certificate``, which its xe does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from wlbplan.actions.base import Context
from wlbplan.actions.by_hand import by_hand
from wlbplan.model.spec import (
    CertificateSpec,
    PoolCredentials,
    PoolSpec,
    Spec,
    Target,
    WlbSpec,
)
from wlbplan.run.sessions import Sessions

UUID = "0f6c1f7e-6d1b-4c1a-9b7e-2f3c4d5e6f70"
RECORDS: dict[str, dict[str, Any]] = {
    "pool.uninstall_ca": {"kind": "pool.uninstall_ca", "name": "wlbplan-wlb-ab.pem",
                          "ca_commands": "current"},
    "pool.install_ca": {"kind": "pool.install_ca", "name": "corp root.pem", "pem": "…",
                        "ca_commands": "current"},
    "pool.certificate_sync": {"kind": "pool.certificate_sync"},
    "pool.set_verify": {"kind": "pool.set_verify", "uuid": UUID, "value": False},
    "pool.reconnect": {"kind": "pool.reconnect", "url": "wlb.example.com:8012",
                       "env": {"wlb_username": "WLB_USER", "wlb_password": "WLB_PASS",
                               "xenserver_username": "XS_ROOT",
                               "xenserver_password": "XS_ROOT_PASS"}},
}


def context(pool: PoolSpec) -> Context:
    target = Target(name="t", pool=pool, wlb=WlbSpec("wlb.example.com"),
                    certificate=CertificateSpec("self-signed"))
    spec = Spec(version=1, path=Path("/spec/spec.yaml"), digest="0", targets=(target,))
    # No runner is reached: the sentence only reads the record and the spec.
    return Context(spec=spec, target=target, sessions=cast(Sessions, None))


OVER_XENAPI = context(PoolSpec("xs1.example.com", connector="xenapi",
                               url="https://xs1.example.com:8443",
                               credentials=PoolCredentials("XS_USER", "XS_PASS")))
OVER_SSH = context(PoolSpec("xs1.example.com", xe="/opt/xensource/bin/xe"))


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_a_xenapi_pool_is_told_to_run_xe_from_its_own_machine(kind: str) -> None:
    said = by_hand(OVER_XENAPI, RECORDS[kind])
    assert "xe -s xs1.example.com -p 8443 -u \"$XS_USER\" -pwf PASSWORD_FILE " in said, said
    assert "$XS_PASS" in said  # the file's content named, never the password itself
    assert "on the coordinator" not in said
    assert "/opt/xensource" not in said
    assert "(the XenAPI call: pool." in said


def test_a_xenapi_pools_reconnect_is_given_the_call_with_every_login_by_variable() -> None:
    """The call the plan showed for the step, in the call's order of logins. Before: the
    reconnect's sentence alone had only the xe form."""
    said = by_hand(OVER_XENAPI, RECORDS["pool.reconnect"])
    assert ("(the XenAPI call: pool.initialize_wlb(wlb.example.com:8012, $WLB_USER, "
            "$WLB_PASS, $XS_ROOT, $XS_ROOT_PASS))") in said, said


def test_a_reconnect_record_with_fewer_logins_still_gets_its_xe_command() -> None:
    """A record another wlbplan wrote, with two logins: its xe command as it is (the call,
    which takes all four, is a XenAPI pool's alone)."""
    record = {**RECORDS["pool.reconnect"],
              "env": {"wlb_username": "WLB_USER", "wlb_password": "WLB_PASS"}}
    said = by_hand(OVER_SSH, record)
    assert ("`/opt/xensource/bin/xe pool-initialize-wlb wlb_url=wlb.example.com:8012 "
            'wlb_password="$WLB_PASS" wlb_username="$WLB_USER"`') in said


def test_the_sentences_over_ssh_stay_on_the_coordinator() -> None:
    said = by_hand(OVER_SSH, RECORDS["pool.uninstall_ca"])
    assert said.startswith("on the coordinator, remove the CA certificate wlbplan-wlb-ab.pem")
    assert ("`/opt/xensource/bin/xe pool-uninstall-ca-certificate name=wlbplan-wlb-ab.pem`"
            in said)
    assert "XenAPI" not in said
    reconnect = by_hand(OVER_SSH, RECORDS["pool.reconnect"])
    assert ("`/opt/xensource/bin/xe pool-initialize-wlb wlb_url=wlb.example.com:8012 "
            'wlb_password="$WLB_PASS" wlb_username="$WLB_USER" '
            'xenserver_password="$XS_ROOT_PASS" xenserver_username="$XS_ROOT"`') in reconnect
    assert "XenAPI" not in reconnect


@pytest.mark.parametrize("ctx", [OVER_SSH, OVER_XENAPI], ids=["xe", "xenapi"])
def test_a_1_249_pool_is_given_the_commands_it_has(ctx: Context) -> None:
    """Citrix Hypervisor 8.2 has only pool-certificate-install/-uninstall (and the
    pool.certificate_install/_uninstall calls), as its plan showed."""
    removed = by_hand(ctx, {**RECORDS["pool.uninstall_ca"], "ca_commands": "pre-1.290"})
    installed = by_hand(ctx, {**RECORDS["pool.install_ca"], "ca_commands": "pre-1.290"})
    assert "pool-certificate-uninstall name=wlbplan-wlb-ab.pem" in removed
    assert "pool-certificate-install filename=FILE" in installed
    assert "-ca-certificate" not in removed + installed
    if ctx is OVER_XENAPI:
        assert "pool.certificate_uninstall(wlbplan-wlb-ab.pem)" in removed
        assert "pool.certificate_install('corp root.pem', PEM)" in installed
