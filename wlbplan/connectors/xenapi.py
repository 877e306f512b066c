"""A session with a pool's XenAPI through the vendor's SDK (``XenAPI``, PyPI ``xenapi``).

One session per use (``open_session`` is a context manager): logged in on entry and
always logged out on exit, after a failure and after Ctrl-C too. Every call is bounded by
the command timeout and ended by a stop (``stop.stop_all``), like a command on the other
connectors; its failures become wlbplan's errors (``xenapi_errors``).

The pool's HTTPS certificate is verified by default (this machine's trust store, the name
checked), against ``tls.ca_file`` (name checked), or pinned by ``tls.fingerprint_sha256``;
``tls.insecure`` checks nothing and says so on stderr every time a session opens.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import ssl
import sys
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import XenAPI

from wlbplan.connectors import stop
from wlbplan.connectors.xenapi_errors import CallContext, from_failure
from wlbplan.errors import CommandTimeout, ConnectError, Interrupted, RemoteCommandError
from wlbplan.model.spec import PoolSpec
from wlbplan.model.text import visible

ORIGINATOR = "wlbplan"
LOGOUT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Login:
    """The pool's XenAPI login, read from the environment; the password is never shown."""

    user: str
    password: str = field(repr=False)
    hint: str = "the password"
    """Where the password came from, for messages (the variable's name, never its value)."""


def login_from_env(pool: PoolSpec, target: str,
                   environ: Mapping[str, str] | None = None) -> Login:
    """The login ``pool.credentials`` names; ConnectError naming the variable when unset."""
    env = os.environ if environ is None else environ
    names = pool.credentials
    if names is None:
        raise ConnectError(f"{target}: connector: xenapi needs pool.credentials")
    values = {}
    for key, name in (("username_env", names.username_env),
                      ("password_env", names.password_env)):
        value = env.get(name)
        if not value:
            raise ConnectError(
                f"{target}: the environment variable {name} (pool.credentials.{key}) is not "
                "set: export it before running wlbplan")
        values[key] = value
    return Login(values["username_env"], values["password_env"],
                 hint=f"the password in ${names.password_env} (pool.credentials.password_env)")


class _Connection(http.client.HTTPSConnection):
    """HTTPS to ``address`` (the spec's ``resolve``) with the URL's name checked, the
    certificate pinned when asked, and the socket stoppable while it is open."""

    def __init__(self, host: str, *, tls: ssl.SSLContext, address: str | None,
                 pin: str | None, timeout: float | None,
                 opened: Callable[[socket.socket], None]) -> None:
        super().__init__(host, timeout=timeout, context=tls)
        self._tls = tls
        self._address = address
        self._pin = pin
        self._opened = opened

    def connect(self) -> None:
        raw = socket.create_connection((self._address or self.host, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host,
                                              do_handshake_on_connect=False)
        except BaseException:
            raw.close()
            raise
        self._opened(self.sock)  # before the handshake: a stop must end one that hangs
        self.sock.do_handshake()
        if self._pin is not None:
            der = self.sock.getpeercert(binary_form=True) or b""
            seen = hashlib.sha256(der).hexdigest().upper()
            if seen != self._pin.replace(":", ""):
                self.sock.close()
                pairs = ":".join(seen[i:i + 2] for i in range(0, len(seen), 2))
                raise PinMismatch(pairs)


class PinMismatch(ssl.SSLError):
    """The pool served another certificate than the pinned one."""

    def __init__(self, seen: str) -> None:
        super().__init__(f"the certificate's SHA-256 fingerprint is {seen}")
        self.seen = seen


class _Transport(xmlrpc.client.SafeTransport):
    def __init__(self, tls: ssl.SSLContext, address: str | None, pin: str | None,
                 timeout: float | None, opened: Callable[[socket.socket], None]) -> None:
        super().__init__(context=tls)
        self._tls, self._address, self._pin = tls, address, pin
        self.timeout = timeout
        self._opened = opened

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        kept = self._connection[1] if self._connection and host == self._connection[0] else None
        if isinstance(kept, http.client.HTTPSConnection):
            return kept
        chost, self._extra_headers, _ = self.get_host_info(host)
        made = _Connection(chost, tls=self._tls, address=self._address, pin=self._pin,
                           timeout=self.timeout, opened=self._opened)
        self._connection = host, made
        return made


def tls_context(pool: PoolSpec) -> ssl.SSLContext:
    """How the pool's certificate is checked: the CA file, the system store, or (pinned,
    insecure) not by OpenSSL at all."""
    tls = pool.tls
    if tls.insecure or tls.fingerprint_sha256:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_file is not None:
        try:
            context = ssl.create_default_context(cafile=str(tls.ca_file))
        except (OSError, ssl.SSLError) as err:
            raise ConnectError(f"pool.tls.ca_file {tls.ca_file} is not a readable PEM "
                               f"certificate file: {err}") from None
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def insecure_notice(target: str, url: str) -> str:
    return (f"warning: {target}: the pool's HTTPS certificate at {visible(url)} is not "
            "verified (pool.tls.insecure: true): anyone on the path can read the XenAPI "
            "login. Give pool.tls.ca_file or pool.tls.fingerprint_sha256.\n")


class XenapiSession:
    """A logged-in session; ``call("pool.get_all_records")`` and the like."""

    def __init__(self, target: str, pool: PoolSpec, login: Login,
                 address_of: Callable[[str], str], timeout: float | None) -> None:
        self.target = target
        self.url = pool.api_url
        self._login = login
        self._timeout = timeout
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        resolved = address_of(host)
        self._open: set[socket.socket] = set()
        transport = _Transport(tls_context(pool), resolved if resolved != host else None,
                               pool.tls.fingerprint_sha256, timeout, self._open.add)
        self._sdk = XenAPI.Session(self.url, transport=transport)
        self._logged_in = False

    def __repr__(self) -> str:
        return f"XenapiSession({self.target!r}, {self.url!r}, user={self._login.user!r})"

    def _context(self, call: str) -> CallContext:
        return CallContext(self.target, call, self._login.user, self.url,
                           login_hint=self._login.hint, secrets=(self._login.password,))

    def _close_sockets(self) -> None:
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _guarded(self, call: str, run: Callable[[], Any]) -> Any:
        stop.check(self.url)
        try:
            with stop.stoppable(self._close_sockets):
                return run()
        except XenAPI.Failure as failure:
            raise from_failure(failure.details, self._context(call)) from None
        except PinMismatch as err:
            raise ConnectError(
                f"{self.target}: {visible(self.url)} served another certificate than "
                f"pool.tls.fingerprint_sha256 names: {err.seen}. If the pool's certificate "
                "was renewed, check it and update the spec") from None
        except ssl.SSLCertVerificationError as err:
            raise ConnectError(
                f"{self.target}: the pool's HTTPS certificate at {visible(self.url)} is not "
                f"trusted ({visible(err.verify_message or str(err))}): give pool.tls.ca_file "
                "(its CA, or the certificate itself) or pool.tls.fingerprint_sha256") from None
        except TimeoutError:
            raise CommandTimeout(
                f"{self.target}: the pool's XenAPI at {visible(self.url)} did not answer "
                f"{call} within {self._timeout:g}s; if it is only slow, raise "
                "defaults.command_timeout") from None
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as err:
            if stop.stopping():
                raise Interrupted(f"stopped: {call} on {self.url} was cut short") from None
            raise ConnectError(f"{self.target}: cannot reach the pool's XenAPI at "
                               f"{visible(self.url)}: {visible(str(err))}") from None
        except xmlrpc.client.Fault as err:
            raise RemoteCommandError(f"{self.target}: the pool's XenAPI answered {call} "
                                     f"with {visible(err.faultString)}") from None

    def login(self) -> None:
        self._guarded("session.login_with_password", lambda: self._sdk.login_with_password(
            self._login.user, self._login.password, "1.0", ORIGINATOR))
        self._logged_in = True

    def call(self, name: str, *args: Any) -> Any:
        """``name`` as the wire says it (``pool.install_ca_certificate``)."""
        method: Any = self._sdk.xenapi
        for part in name.split("."):
            method = getattr(method, part)
        return self._guarded(name, lambda: method(*args))

    def logout(self) -> None:
        """Bounded and never raising: a logout must not hide why the session ended."""
        if not self._logged_in:
            return
        self._logged_in = False
        transport = self._sdk.transport
        # A call cut short (Ctrl-C, a stop, a timeout) leaves its connection mid-answer:
        # log out on a fresh one.
        transport.close()
        transport.timeout = min(self._timeout or LOGOUT_TIMEOUT_S, LOGOUT_TIMEOUT_S)
        with contextlib.suppress(Exception):
            self._sdk.xenapi.session.logout()
        with contextlib.suppress(Exception):
            transport.close()


@contextlib.contextmanager
def open_session(target: str, pool: PoolSpec, *, address_of: Callable[[str], str],
                 timeout: float | None, environ: Mapping[str, str] | None = None,
                 warn: Callable[[str], Any] = sys.stderr.write) -> Iterator[XenapiSession]:
    """Log in to ``pool``'s XenAPI; log out when the block ends, however it ends."""
    login = login_from_env(pool, target, environ)
    if pool.tls.insecure:
        warn(insecure_notice(target, pool.api_url))
    session = XenapiSession(target, pool, login, address_of, timeout)
    try:
        session.login()
        yield session
    finally:
        session.logout()


class XenapiPool:
    """A target's pool reached through its XenAPI, in the place a Runner has for an SSH
    pool (``run.sessions.Sessions.pool``): its one session opened on first use, logged
    out on ``close``. Thread-safe."""

    def __init__(self, target: str, pool: PoolSpec, *, address_of: Callable[[str], str],
                 timeout: float | None, environ: Mapping[str, str] | None = None,
                 warn: Callable[[str], Any] = sys.stderr.write) -> None:
        self.target = target
        self.spec = pool
        self._address_of = address_of
        self._timeout = timeout
        self._environ = environ
        self._warn = warn
        self._session: XenapiSession | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        """Where calls go, for messages."""
        return visible(self.spec.api_url)

    @property
    def session(self) -> XenapiSession:
        with self._lock:
            if self._session is None:
                login = login_from_env(self.spec, self.target, self._environ)
                if self.spec.tls.insecure:
                    self._warn(insecure_notice(self.target, self.spec.api_url))
                made = XenapiSession(self.target, self.spec, login, self._address_of,
                                     self._timeout)
                made.login()  # a refused login leaves nothing to log out
                self._session = made
            return self._session

    def close(self) -> None:
        with self._lock:
            opened, self._session = self._session, None
        if opened is not None:
            opened.logout()
