"""Conformance of the lab's XenAPI server to xapi, through the vendor's SDK (``xenapi``).

Sources are files of xapi-project/xen-api at commit e2ee48d688 (lines as there); each
test's docstring names the facts it checks.

The table of facts, their source lines and where the lab deviates on purpose:
``tests/lab/XENAPI_CONFORMANCE.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import subprocess
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import XenAPI

from wlbplan.lab import control, faults, xe_state
from wlbplan.lab.layout import LOGINS_FILE, TargetLayout
from wlbplan.lab.pki import build, make_key
from wlbplan.lab.record import Lab
from wlbplan.lab.xenapi import server as xenapi_server
from wlbplan.lab.xenapi.daemon import endpoint as xenapi_endpoint
from wlbplan.lab.xenapi.daemon import make_pool_identity, server_cert

pytestmark = pytest.mark.lab

FINGERPRINT = re.compile(r"([0-9A-F]{2}:){31}[0-9A-F]{2}")


def logins(lab: Lab) -> dict[str, str]:
    lines = (lab.dir / LOGINS_FILE).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


class Wire:
    """The lab's pool1 through the SDK, over HTTPS verified against the lab's certificate."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.layout = lab.layout("pool1")
        self.url = f"https://127.0.0.1:{lab.targets[0].xenapi_port}"
        env = logins(lab)
        self.user, self.password = env["POOL1_XENAPI_USER"], env["POOL1_XENAPI_PASS"]

    def session(self, path: str = "", password: str | None = None) -> XenAPI.Session:
        context = ssl.create_default_context(cafile=str(server_cert(self.layout)))
        session = XenAPI.Session(self.url + path,
                                 transport=xmlrpc.client.SafeTransport(context=context))
        session.login_with_password(self.user, password or self.password, "1.0", "tests")
        return session

    def xe(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.layout.xe), *args], capture_output=True, text=True,
                              timeout=60, check=False)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.layout.pool_state.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    folder = tmp_path_factory.mktemp("xenapi-lab")
    lab = control.up(folder, hosts=2, xenapi_role="pool-operator")
    try:
        yield Wire(lab)
    finally:
        control.down(folder)


@pytest.fixture
def api(wire: Wire) -> Iterator[Any]:
    session = wire.session()
    try:
        yield session.xenapi
    finally:
        session.logout()


def failure(call: Callable[..., Any], *args: Any) -> list[str]:
    with pytest.raises(XenAPI.Failure) as caught:
        call(*args)
    return list(caught.value.details)


def ca_pem(days: int = 30, **kw: Any) -> str:
    return build("lab test CA", key=make_key("ec", 256), ca=True, days=days,
                 **kw).cert_pem.decode()


# --- over the wire --------------------------------------------------------------------


def test_records_match_what_xe_sees(wire: Wire, api: Any) -> None:
    """pool/host/Certificate records; the same pool as xe's (one state)."""
    pools = api.pool.get_all_records()
    assert len(pools) == 1
    (pool_ref, pool), = pools.items()
    state = wire.state
    assert pool["uuid"] == state["pool"]["uuid"]
    assert (pool["wlb_url"], pool["wlb_verify_cert"]) == (state["pool"]["wlb-url"], False)
    assert pool_ref.startswith("OpaqueRef:")
    assert pool_ref != f"OpaqueRef:{pool['uuid']}"
    hosts = api.host.get_all_records()
    assert pool["master"] in hosts
    assert hosts[pool["master"]]["software_version"]["xapi"] == "25.33.1"
    assert {h["uuid"] for h in hosts.values()} == {h["uuid"] for h in state["hosts"]}
    rows = list(api.Certificate.get_all_records().values())
    assert [r["type"] for r in rows] == ["host"]  # the coordinator's own, no CA yet
    assert FINGERPRINT.fullmatch(rows[0]["fingerprint"])
    assert isinstance(rows[0]["not_after"], xmlrpc.client.DateTime)


def test_install_uninstall_and_their_refusals(wire: Wire, api: Any) -> None:
    """install: name rule, ALREADY_EXISTS; a Certificate row (host NULL, fingerprint);
    xe lists it; uninstall: DOES_NOT_EXIST unless force; empty name INTERNAL_ERROR."""
    pem = ca_pem()
    assert api.pool.install_ca_certificate("lab-ca.pem", pem) == ""
    assert failure(api.pool.install_ca_certificate, "lab-ca.pem", pem) == \
        ["CERTIFICATE_ALREADY_EXISTS", "lab-ca.pem"]
    for bad in ("../x.pem", ".hidden.pem", "ca.crt", "a b.pem"):
        assert failure(api.pool.install_ca_certificate, bad, pem) == \
            ["CERTIFICATE_NAME_INVALID", bad]
    assert failure(api.pool.install_ca_certificate, "", pem) == \
        ["INTERNAL_ERROR", "Invalid argument: index out of bounds"]
    assert failure(api.pool.install_ca_certificate, "two.pem", pem + pem) == \
        ["CA_CERTIFICATE_INVALID"]
    row = next(r for r in api.Certificate.get_all_records().values() if r["type"] == "ca")
    assert (row["name"], row["host"]) == ("lab-ca.pem", "OpaqueRef:NULL")
    assert FINGERPRINT.fullmatch(row["fingerprint"])
    assert row["fingerprint"] == row["fingerprint_sha256"]
    assert wire.xe("pool-certificate-list").stdout == "lab-ca.pem\n"
    assert api.pool.certificate_list() == ["lab-ca.pem"]
    # each host got the file, and its bundle
    for host in wire.state["hosts"]:
        assert (wire.layout.host(host["dir"]).certs_dir / "lab-ca.pem").read_text() == pem
    assert api.pool.uninstall_ca_certificate("lab-ca.pem", False) == ""
    assert failure(api.pool.uninstall_ca_certificate, "lab-ca.pem", False) == \
        ["CERTIFICATE_DOES_NOT_EXIST", "lab-ca.pem"]
    assert api.pool.uninstall_ca_certificate("lab-ca.pem", True) == ""  # force: no error


def test_force_is_optional_and_dated_certificates_refused(api: Any) -> None:
    """uninstall_ca_certificate's force has a default (1 or 2 parameters); expired and
    not-yet-valid CA certificates carry [now; date] in RFC 3339."""
    assert failure(api.pool.uninstall_ca_certificate, "gone.pem") == \
        ["CERTIFICATE_DOES_NOT_EXIST", "gone.pem"]
    assert failure(api.pool.uninstall_ca_certificate) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.uninstall_ca_certificate", "1", "0"]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    expired = failure(api.pool.install_ca_certificate, "old.pem",
                      ca_pem(not_before=old, not_after=old + dt.timedelta(days=2)))
    assert expired[0] == "CA_CERTIFICATE_EXPIRED"
    assert len(expired) == 3
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p) for p in expired[1:])


def test_dispatcher_checks(wire: Wire, api: Any) -> None:
    """MESSAGE_METHOD_UNKNOWN, MESSAGE_PARAMETER_COUNT_MISMATCH, a wrong type,
    HANDLE_INVALID, SESSION_INVALID after logout; both / and /RPC2 served."""
    assert failure(api.pool.no_such_call) == ["MESSAGE_METHOD_UNKNOWN", "pool.no_such_call"]
    assert failure(api.pool.install_ca_certificate, "x.pem") == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.install_ca_certificate", "2", "1"]
    assert failure(api.pool.set_wlb_verify_cert, api.pool.get_all()[0], "yes")[0] == \
        "INTERNAL_ERROR"
    assert failure(api.pool.get_record, "OpaqueRef:nope") == \
        ["HANDLE_INVALID", "pool", "OpaqueRef:nope"]
    other = wire.session("/")
    handle = other.handle
    other.logout()
    proxy = xmlrpc.client.ServerProxy(
        wire.url + "/RPC2", context=ssl.create_default_context(
            cafile=str(server_cert(wire.layout))))
    answer = proxy.pool.get_all(handle)
    assert answer == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", handle]}


def test_wlb_calls_and_the_lock_key(wire: Wire, api: Any) -> None:
    """set_wlb_verify_cert (xe sees it), retrieve_wlb_configuration is the pool's own TLS
    check (SSL_VERIFY_ERROR until WLB's certificate is trusted); other_config add is a
    test-and-set: MAP_DUPLICATE_KEY for another value."""
    pool = api.pool.get_all()[0]
    api.pool.set_wlb_verify_cert(pool, True)
    uuid = wire.state["pool"]["uuid"]
    got = wire.xe("pool-param-get", f"uuid={uuid}", "param-name=wlb-verify-cert")
    assert got.stdout == "true\n"
    assert failure(api.pool.retrieve_wlb_configuration)[0] == "SSL_VERIFY_ERROR"
    served = wire.layout.cert.read_text()
    api.pool.install_ca_certificate("wlb.pem", served)
    assert "OptimizationMode" in api.pool.retrieve_wlb_configuration()
    api.pool.uninstall_ca_certificate("wlb.pem", False)
    api.pool.set_wlb_verify_cert(pool, False)
    assert api.pool.add_to_other_config(pool, "wlbplan-lock", "one") == ""
    assert failure(api.pool.add_to_other_config, pool, "wlbplan-lock", "two") == \
        ["MAP_DUPLICATE_KEY", "pool", "other_config", pool, "wlbplan-lock"]
    assert api.pool.get_other_config(pool) == {"wlbplan-lock": "one"}
    api.pool.remove_from_other_config(pool, "wlbplan-lock")
    assert api.pool.get_record(pool)["other_config"] == {}


def test_refusals_wrong_password_and_roles(wire: Wire, api: Any) -> None:
    """SESSION_AUTHENTICATION_FAILED [uname; msg]; RBAC_PERMISSION_DENIED [permission;
    message naming the roles]: pool-operator may not enable_tls_verification, read-only
    may read and confirm but not install or take the lock."""
    assert failure(wire.session, "", "not-the-password") == \
        ["SESSION_AUTHENTICATION_FAILED", wire.user, "Authentication failure"]
    assert failure(api.pool.enable_tls_verification) == [
        "RBAC_PERMISSION_DENIED", "pool.enable_tls_verification",
        "No permission in user session. (Roles with this permission: pool-admin)"]
    faults.inject(wire.lab.dir, "xenapi-wrong-password")
    try:
        assert failure(wire.session)[0] == "SESSION_AUTHENTICATION_FAILED"
    finally:
        faults.clear(wire.lab.dir, "xenapi-wrong-password")
    faults.inject(wire.lab.dir, "xenapi-read-only")
    try:
        reader = wire.session()
        api_ro = reader.xenapi
        pool = api_ro.pool.get_all()[0]
        assert api_ro.pool.get_all_records()[pool]["wlb_url"]
        assert failure(api_ro.pool.install_ca_certificate, "x.pem", ca_pem()) == [
            "RBAC_PERMISSION_DENIED", "pool.install_ca_certificate",
            "No permission in user session. (Roles with this permission: pool-admin, "
            "pool-operator, client-cert)"]
        assert failure(api_ro.pool.add_to_other_config, pool, "k", "v")[:2] == \
            ["RBAC_PERMISSION_DENIED", "pool.add_to_other_config"]
        reader.logout()
    finally:
        faults.clear(wire.lab.dir, "xenapi-read-only")


# --- older xapi, in process (no TLS needed for the call table) -------------------------


@pytest.fixture
def older(tmp_path: Path) -> Callable[[str], xenapi_server.Dispatcher]:
    def make(xapi: str) -> xenapi_server.Dispatcher:
        layout = TargetLayout(tmp_path / xapi)
        xe_state.create_pool(layout, hosts=1, xapi=xapi, wlb_url="", wlb_username="",
                             wlb_password="", resolve={})
        make_pool_identity(layout, "pool-admin")
        endpoint = xenapi_endpoint(layout, 0)
        return xenapi_server.Dispatcher(
            endpoint, xenapi_server.host_certificate(endpoint.cert))

    return make


def _login(dispatcher: xenapi_server.Dispatcher) -> str:
    account = json.loads(dispatcher.endpoint.account.read_text())
    answer = dispatcher._dispatch("session.login_with_password",
                                  (account["username"], account["password"]))
    return str(answer["Value"])


def test_ch82_has_only_the_legacy_calls(older: Callable[[str], xenapi_server.Dispatcher]) -> None:
    """1.249 (Citrix Hypervisor 8.2): no install_ca_certificate (MESSAGE_METHOD_UNKNOWN);
    certificate_install/list/uninstall work; Certificate rows have no name/type and no
    CA rows."""
    pool = older("ch82")
    session = _login(pool)
    pem = ca_pem()
    assert pool._dispatch("pool.install_ca_certificate", (session, "a.pem", pem)) == {
        "Status": "Failure",
        "ErrorDescription": ["MESSAGE_METHOD_UNKNOWN", "pool.install_ca_certificate"]}
    assert pool._dispatch("pool.certificate_install", (session, "a.pem", pem))["Value"] == ""
    assert pool._dispatch("pool.certificate_list", (session,))["Value"] == ["a.pem"]
    rows = pool._dispatch("Certificate.get_all_records", (session,))["Value"]
    assert [sorted(r) for r in rows.values()] == [
        ["fingerprint", "host", "not_after", "not_before", "uuid"]]
    assert pool._dispatch("pool.certificate_uninstall", (session, "a.pem"))["Value"] == ""


def test_force_arrived_in_24_35(older: Callable[[str], xenapi_server.Dispatcher]) -> None:
    """On xapi 24.19 uninstall_ca_certificate takes the name only: sending force is
    MESSAGE_PARAMETER_COUNT_MISMATCH [method; "1"; "2"]."""
    pool = older("legacy")
    session = _login(pool)
    answer = pool._dispatch("pool.uninstall_ca_certificate", (session, "a.pem", True))
    assert answer["ErrorDescription"] == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH", "pool.uninstall_ca_certificate", "1", "2"]
    answer = pool._dispatch("pool.uninstall_ca_certificate", (session, "a.pem"))
    assert answer["ErrorDescription"] == ["CERTIFICATE_DOES_NOT_EXIST", "a.pem"]
