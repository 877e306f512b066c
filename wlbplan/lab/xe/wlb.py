"""The WLB calls (workload_balancing.ml): connect, TLS by the pool's rules, log in."""

from __future__ import annotations

import contextlib
import re

from wlbplan.lab import xe_state
from wlbplan.lab.xe.errors import server_error
from wlbplan.lab.xe.verify import PRE_VERIFICATION, peer_checks

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket
    import ssl
    from pathlib import Path

    from wlbplan.lab.xe.cli import Context, Record
    from wlbplan.lab.xe_state import State


WLB_TIMEOUT_S = 10.0
# A stand-in for GetXenPoolConfiguration's OptimizationParms.
WLB_CONFIGURATION: Record = [
    ("AutoBalanceEnabled", "false"),
    ("AutoBalanceAggressiveness", "Medium"),
    ("OptimizationMode", "MaximizePerformance"),
    ("PowerManagementEnabled", "false"),
    ("RecentMoveMinutes", "60"),
    ("HostCpuThresholdCritical", "90"),
]


def split_host_port(url: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`; no default port (workload_balancing.ml split_host_port)."""
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", url)
    if match is None:
        raise server_error("WLB_URL_INVALID", url)
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 < port < 65536:
        raise server_error("WLB_URL_INVALID", url)
    return host, port


def resolve(state: State, host: str) -> str:
    """The lab's name service is the state's map; nothing but loopback is ever contacted."""
    import ipaddress

    address = str(state["resolve"].get(host, host))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise server_error("WLB_UNKNOWN_HOST") from None
    if not ip.is_loopback:
        raise server_error("WLB_UNKNOWN_HOST")  # this lab must never leave the machine
    return address


# The stunnel client profile xapi writes for WLB (ocaml/libs/stunnel/stunnel.ml config_file):
# `sslVersion = TLSv1.2`, `ciphers = ` Constants.good_ciphersuites (ocaml/xapi-consts/
# constants.ml), `curve = secp384r1`; the same with or without verification.
WLB_CIPHERS = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
WLB_CURVE = "secp384r1"


def _verification(state: State) -> str:
    """`off`, `chain` (verifyChain=yes, xapi >= 24.40) or `peer` (verifyPeer=yes, before)."""
    if not state["pool"]["wlb-verify-cert"]:
        return "off"
    return "chain" if xe_state.xapi_version(state) >= xe_state.VERIFY_CHAIN_SINCE else "peer"


def _tls_context(state: State, bundle: Path) -> ssl.SSLContext:
    """xapi's stunnel client profile for WLB, on OpenSSL through Python's ``ssl``.

    ``chain``: OpenSSL verifies the whole chain against the bundle in the handshake, as
    stunnel's verifyChain does. ``peer``: stunnel ignores every error above depth 0 and a
    missing issuer, which OpenSSL cannot be told here, so the handshake only fetches the
    leaf and ``peer_checks`` judges it. checkHost is never OpenSSL's in-chain host check
    (Python's ``check_hostname``): it matches IP SANs and refuses partial wildcards, which
    stunnel's ``X509_check_host()`` does not; ``peer_checks`` applies it after the chain.
    """
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system CAs: only the bundle
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(WLB_CIPHERS)  # ECDHE-RSA only: an EC-keyed WLB shares no cipher
    context.set_ecdh_curve(WLB_CURVE)  # the only group offered, as stunnel's `curve =`
    # The security level stays Python's default, @SECLEVEL=2 (which set_ciphers keeps; it is
    # also Debian's openssl.cnf default and stunnel's own): RSA keys of 2048 bits or more.
    context.check_hostname = False
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT  # stunnel does not ask for it
    if _verification(state) != "chain":
        context.verify_mode = ssl.CERT_NONE
        return context
    # A missing, empty or unreadable bundle trusts nothing: every verification fails.
    with contextlib.suppress(OSError, ssl.SSLError):
        context.load_verify_locations(cafile=str(bundle))
    return context


def _ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _connect(address: str, port: int) -> socket.socket:
    import socket

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(WLB_TIMEOUT_S)
    try:
        sock.connect((address, port))
    except ConnectionRefusedError:
        sock.close()
        raise server_error("WLB_CONNECTION_REFUSED") from None
    except TimeoutError:
        sock.close()
        raise server_error("WLB_TIMEOUT", f"{WLB_TIMEOUT_S:.0f}.") from None
    except OSError:
        sock.close()
        raise server_error("WLB_UNKNOWN_HOST") from None  # "No route to host"
    return sock


def _handshake(state: State, bundle: Path, host: str, sock: socket.socket) -> None:
    import ssl

    context = _tls_context(state, bundle)
    sni = None if _ip_literal(host) else host  # stunnel sends no SNI for an address
    try:
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            leaf = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as err:
        message = PRE_VERIFICATION + (err.verify_message or str(err))
        raise server_error("SSL_VERIFY_ERROR", message) from None
    except (ssl.SSLError, OSError):
        # A failed handshake (no shared cipher with an EC-keyed WLB: `sslv3 alert handshake
        # failure`) or a reset: stunnel logs no `certificate verify failed`, the only line
        # xapi turns into SSL_VERIFY_ERROR (stunnel_log_scanner.ml); the connection just
        # drops, which workload_balancing.ml reports as WLB_CONNECTION_RESET.
        raise server_error("WLB_CONNECTION_RESET") from None
    finally:
        sock.close()
    if leaf is None:  # never with ECDHE-RSA suites
        raise server_error("WLB_CONNECTION_RESET")
    verification = _verification(state)
    if verification != "off":
        reason = peer_checks(leaf, bundle, host, verify_peer=verification == "peer")
        if reason is not None:
            raise server_error("SSL_VERIFY_ERROR", reason)

def _authenticate(state: State, username: str, password: str) -> None:
    """WLB answers 401 to wrong credentials → WLB_AUTHENTICATION_FAILED."""
    import json

    try:
        with open(state["wlb_accounts"]) as handle:
            account = json.load(handle)
    except (OSError, ValueError):
        raise server_error("WLB_AUTHENTICATION_FAILED") from None
    if account.get("username") != username or account.get("password") != password:
        raise server_error("WLB_AUTHENTICATION_FAILED")


def wlb_call(ctx: Context, state: State, url: str, username: str, password: str) -> None:
    """One WLB request as xapi makes it: resolve, connect, TLS by the pool's rules, log in."""
    host, port = split_host_port(url)
    sock = _connect(resolve(state, host), port)
    _handshake(state, ctx.host(state["hosts"][0]).bundle, host, sock)
    _authenticate(state, username, password)


def initialize_wlb(ctx: Context) -> None:
    p = ctx.params
    initialize(ctx, p["wlb_url"], p["wlb_username"], p["wlb_password"])


def initialize(ctx: Context, url: str, username: str, password: str) -> None:
    """xapi_pool.ml initialize_wlb: what xe and XenAPI both call."""
    wlb_call(ctx, ctx.state(), url, username, password)
    with xe_state.locked(ctx.state_path) as state:
        pool = state["pool"]
        pool["wlb-url"], pool["wlb-username"] = url, username
        pool["wlb-enabled"] = True
        state["wlb_password"] = password
        xe_state.save(ctx.state_path, state)


def deconfigure_wlb(ctx: Context) -> None:
    """workload_balancing.ml decon_wlb: clears the settings whatever WLB answers."""
    with xe_state.locked(ctx.state_path) as state:
        pool = state["pool"]
        if not pool["wlb-url"]:
            raise server_error("WLB_NOT_INITIALIZED")
        pool["wlb-url"], pool["wlb-username"], pool["wlb-enabled"] = "", "", False
        state["wlb_password"] = ""
        xe_state.save(ctx.state_path, state)


def retrieve_wlb_configuration(ctx: Context) -> None:
    ctx.printer.table([retrieve(ctx)])


def retrieve(ctx: Context) -> Record:
    """xapi_pool.ml retrieve_wlb_configuration: the pool's own handshake with WLB."""
    state = ctx.state()
    pool = state["pool"]
    if not pool["wlb-url"]:
        raise server_error("WLB_NOT_INITIALIZED")
    wlb_call(ctx, state, pool["wlb-url"], pool["wlb-username"], state["wlb_password"])
    return list(WLB_CONFIGURATION)


def enable_tls_verification(ctx: Context) -> None:
    """xapi_pool.ml enable_tls_verification: pool-wide TLS checks, and it turns on
    wlb-verify-cert too, silently (what operators get wrong)."""
    with xe_state.locked(ctx.state_path) as state:
        state["pool"]["tls-verification-enabled"] = True
        state["pool"]["wlb-verify-cert"] = True
        xe_state.save(ctx.state_path, state)

