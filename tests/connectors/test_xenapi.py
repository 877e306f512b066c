"""The XenAPI connector against the lab's XenAPI server, run in this process on 127.0.0.1:
login, calls, TLS trust, the error tree, and a session that is always logged out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from xenapi_pool import ENV, Pool

from wlbplan.connectors import stop
from wlbplan.connectors.xenapi import Login, login_from_env, open_session
from wlbplan.connectors.xenapi_errors import CallContext, from_failure, role_needed
from wlbplan.errors import (
    CommandTimeout,
    ConnectError,
    Interrupted,
    WlbplanError,
    XapiError,
    XapiLoginError,
)
from wlbplan.lab import xe_state
from wlbplan.lab.xenapi import server
from wlbplan.lab.xenapi.daemon import server_cert
from wlbplan.model.spec import PoolCredentials, PoolSpec, PoolTls


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    made = Pool(tmp_path_factory.mktemp("xenapi") / "pool1")
    yield made
    made.stop()


def session(pool: Pool, env: dict[str, str] | None = None, **tls: Any) -> Any:
    return open_session("pool1", pool.spec(**tls), address_of=lambda h: h, timeout=10,
                        environ=pool.env if env is None else env, warn=lambda _: None)


def test_calls_and_logout(pool: Pool) -> None:
    with session(pool) as api:
        (record,) = api.call("pool.get_all_records").values()
        assert record["uuid"] == xe_state.load(pool.layout.pool_state)["pool"]["uuid"]
        assert len(pool.dispatcher.sessions) == 1
        assert pool.password not in repr(api)
    assert pool.dispatcher.sessions == {}


@pytest.mark.parametrize("ending", [KeyboardInterrupt, XapiError])
def test_a_session_is_logged_out_however_it_ends(pool: Pool, ending: type) -> None:
    """Ctrl-C in the middle, or a call the pool refuses: the session is logged out."""
    def use(api: Any) -> None:
        if ending is KeyboardInterrupt:
            raise KeyboardInterrupt
        api.call("pool.install_ca_certificate", "../bad.pem", "x")

    with pytest.raises(ending), session(pool) as api:
        use(api)
    assert pool.dispatcher.sessions == {}


def test_a_wrong_password_says_where_it_comes_from_never_what_it_is(pool: Pool) -> None:
    wrong = "Wr0ng-but-secret"
    with pytest.raises(XapiLoginError) as caught, session(pool, {**ENV, "XS_PASS": wrong}):
        pass
    said = str(caught.value)
    assert caught.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert "$XS_PASS (pool.credentials.password_env)" in said
    assert wrong not in said
    assert pool.password not in said


def test_a_read_only_account_is_told_the_role_it_needs(pool: Pool) -> None:
    pool.fault(server.READ_ONLY)
    try:
        with session(pool) as api:
            assert api.call("pool.get_all")  # reading is allowed
            with pytest.raises(XapiError) as caught:
                api.call("pool.certificate_sync")
    finally:
        pool.fault(server.READ_ONLY, on=False)
    assert caught.value.code == "RBAC_PERMISSION_DENIED"
    assert "needs the pool-operator role" in str(caught.value)
    assert pool.dispatcher.sessions == {}


def test_trust_in_the_pools_certificate(pool: Pool) -> None:
    """Verified by default: the system store does not know the lab's certificate; a CA
    file or the pinned fingerprint does; a wrong pin is refused; insecure warns."""
    with pytest.raises(ConnectError, match="is not trusted"), session(pool, ca_file=None):
        pass
    from wlbplan import certs

    pem = server_cert(pool.layout).read_bytes()
    pin = certs.fingerprint(certs.parse_pem_bundle(pem)[0])
    with session(pool, fingerprint_sha256=pin) as api:
        assert api.call("host.get_all")
    with pytest.raises(ConnectError, match="another certificate"), \
            session(pool, fingerprint_sha256=":".join(["AB"] * 32)):
        pass
    said: list[str] = []
    with open_session("pool1", pool.spec(insecure=True), address_of=lambda h: h, timeout=10,
                      environ=pool.env, warn=said.append) as api:
        assert api.call("host.get_all")
    assert len(said) == 1
    assert "is not verified" in said[0]
    assert pool.dispatcher.sessions == {}


def test_missing_credentials_name_the_variable(pool: Pool) -> None:
    with pytest.raises(ConnectError, match=r"XS_PASS \(pool.credentials.password_env\)"):
        login_from_env(pool.spec(), "pool1", {"XS_USER": "u"})
    assert "secret" not in repr(Login("u", "secret"))


def test_a_pool_that_never_answers_is_a_timeout_and_a_stop_ends_it() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    spec = PoolSpec("h", connector="xenapi", url=f"https://127.0.0.1:{port}",
                    credentials=PoolCredentials("XS_USER", "XS_PASS"), tls=PoolTls(insecure=True))
    try:
        with pytest.raises(CommandTimeout), open_session(
                "pool1", spec, address_of=lambda h: h, timeout=0.3,
                environ={**ENV, "XS_PASS": "p"}, warn=lambda _: None):
            pass
        threading.Timer(0.3, stop.stop_all).start()
        with pytest.raises(Interrupted), open_session(
                "pool1", spec, address_of=lambda h: h, timeout=30,
                environ={**ENV, "XS_PASS": "p"}, warn=lambda _: None):
            pass
    finally:
        stop.reset()
        listener.close()


# --- the error tree, pure ---------------------------------------------------------------

CONTEXT = CallContext("pool1", "pool.install_ca_certificate", "op\x1b[31m",
                      "https://xs1.example.com", secrets=("s3cret",))


@pytest.mark.parametrize(("details", "kind", "said"), [
    (["SESSION_AUTHENTICATION_FAILED", "op", "Authentication failure"], XapiLoginError,
     "check the user and the password"),
    (["HOST_IS_SLAVE", "10.0.0.1"], XapiLoginError, "set pool.url to https://10.0.0.1"),
    (["RBAC_PERMISSION_DENIED", "pool.install_ca_certificate",
      "No permission in user session. (Roles with this permission: pool-admin, "
      "pool-operator, client-cert)"], XapiError, "needs the pool-operator role"),
    (["CERTIFICATE_NAME_INVALID", "a b.pem"], XapiError, "ending in .pem"),
    (["CERTIFICATE_ALREADY_EXISTS", "x.pem"], XapiError, "run `wlbplan plan` again"),
    (["SSL_VERIFY_ERROR", "certificate verify failed"], XapiError, "refused WLB's certificate"),
    (["WLB_CONNECTION_REFUSED"], XapiError, "stunnel running"),
    (["WLB_TIMEOUT", "30."], XapiError, "within 30. s"),
    (["SOMETHING_NEW", "a\nb"], XapiError, "SOMETHING_NEW [a\\nb]"),
])
def test_failures_become_wlbplan_errors(details: list[str], kind: type, said: str) -> None:
    err = from_failure(details, CONTEXT)
    assert type(err) is kind
    assert isinstance(err, WlbplanError)
    assert err.code == details[0]  # type: ignore[attr-defined]
    assert said in str(err)
    assert str(err).startswith("pool1: ")
    assert str(err).isprintable()


def test_a_secret_in_a_failure_is_masked() -> None:
    err = from_failure(["WLB_URL_INVALID", "wlb:8012?pw=s3cret"], CONTEXT)
    assert "s3cret" not in str(err)
    assert err.params == ("wlb:8012?pw=***",)  # type: ignore[attr-defined]


def test_the_role_needed_is_the_least_that_holds_the_permission() -> None:
    assert role_needed("(Roles with this permission: pool-admin)") == "pool-admin"
    assert role_needed("(Roles with this permission: pool-admin, pool-operator, "
                       "vm-power-admin, vm-admin, vm-operator, read-only)") == "read-only"
    assert role_needed("no list") is None
