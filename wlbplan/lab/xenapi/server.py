"""XML-RPC over HTTPS on 127.0.0.1, one port per lab pool: sessions, the dispatcher's
checks and XenAPI's wire format.

Every call answers ``{"Status": "Success", "Value": v}`` or ``{"Status": "Failure",
"ErrorDescription": [code, *params]}`` (a void result is ``""``), on the paths ``/`` and
``/RPC2`` (the SDK posts to either, as the URL ends). The checks run in xapi's order
(gen_server.ml): the method, the number of parameters, their types, the session, RBAC,
then the call itself.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socketserver
import ssl
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from wlbplan.lab import xe_state
from wlbplan.lab.xe.errors import XeError, server_error
from wlbplan.lab.xenapi import calls, rbac, records

# xapi_session.ml pam_strerror(PAM_AUTH_ERR), the message of a wrong local password.
AUTH_FAILURE = "Authentication failure"
# Lasting lab faults (files in the target's faults folder) this server obeys.
WRONG_PASSWORD = "xenapi-wrong-password"  # noqa: S105 (a fault's name)
READ_ONLY = "xenapi-read-only"
SESSIONS_FILE = "xenapi-sessions.json"


@dataclass(frozen=True)
class PoolEndpoint:
    """One lab pool's XenAPI: where its state, account and certificate are."""

    name: str
    port: int
    state: Path
    account: Path
    faults: Path
    cert: Path
    key: Path

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolEndpoint:
        return cls(name=str(data["name"]), port=int(data["port"]), state=Path(data["state"]),
                   account=Path(data["account"]), faults=Path(data["faults"]),
                   cert=Path(data["cert"]), key=Path(data["key"]))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "state": str(self.state),
                "account": str(self.account), "faults": str(self.faults),
                "cert": str(self.cert), "key": str(self.key)}


@dataclass(frozen=True)
class Session:
    user: str
    role: str | None


class Dispatcher:
    """The calls of one pool. Sessions live in memory, as xapi's do across a restart
    (a restarted server answers SESSION_INVALID, and the SDK logs in again)."""

    def __init__(self, endpoint: PoolEndpoint, host_certificate: records.Record) -> None:
        self.endpoint = endpoint
        self.host_certificate = host_certificate
        self.sessions: dict[str, Session] = {}
        self.logins = 0
        self.lock = threading.Lock()

    @property
    def counter(self) -> Path:
        """``{"open": n, "logins": m}``: the lab's own record, for tests that check every
        session a run opened was logged out (xapi keeps no such file)."""
        return self.endpoint.state.parent / SESSIONS_FILE

    def _count(self) -> None:
        """Called with ``self.lock`` held."""
        record = {"open": len(self.sessions), "logins": self.logins}
        xe_state.write_atomic(self.counter, json.dumps(record).encode())

    def _dispatch(self, method: str, params: tuple[Any, ...]) -> dict[str, Any]:
        try:
            value = self.call(method, list(params))
        except XeError as err:
            if err.code is None:  # a CLI-only failure: never raised by a server call
                return _failure("INTERNAL_ERROR", str(err))
            return _failure(err.code, *err.params)
        except Exception as err:  # a bug in the emulator: say so, keep serving
            traceback.print_exc()
            return _failure("INTERNAL_ERROR", f"lab XenAPI server: {type(err).__name__}")
        return {"Status": "Success", "Value": value}

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "session.login_with_password":
            return self.login(params)
        if method == "session.logout":
            self.session(params[:1], method)
            with self.lock:
                self.sessions.pop(params[0], None)
                self._count()
            return ""
        state = xe_state.load(self.endpoint.state)
        call = calls.CALLS.get(method)
        if call is None or not call.offered(state):
            raise server_error("MESSAGE_METHOD_UNKNOWN", method)
        if not params:
            raise server_error("MESSAGE_PARAMETER_COUNT_MISMATCH", method,
                               str(len(call.signature(state).params)), "-1")
        args = calls.arguments(method, call, state, params[1:])
        session = self.session(params[:1], method)
        rbac.check(session.role, method, call.roles)
        caller = calls.Caller(self.endpoint.state, session.role, self.host_certificate)
        return call.run(caller, *args)

    def session(self, given: list[Any], method: str) -> Session:
        """session_check.ml: an unknown reference is SESSION_INVALID [reference]."""
        if not given:
            raise server_error("MESSAGE_PARAMETER_COUNT_MISMATCH", method, "0", "-1")
        handle = given[0]
        with self.lock:
            found = self.sessions.get(handle) if isinstance(handle, str) else None
        if found is None:
            raise server_error("SESSION_INVALID", str(handle))
        return found

    def login(self, params: list[Any]) -> str:
        """session.login_with_password(uname, pwd[, version, originator]).

        xapi waits 5 s before refusing a login (xapi_session.ml, against brute force);
        the lab answers at once so that the tests of a refusal stay fast.
        """
        if len(params) < 2:
            raise server_error("MESSAGE_PARAMETER_COUNT_MISMATCH",
                               "session.login_with_password", "2", str(len(params)))
        uname, pwd = params[0], params[1]
        if not isinstance(uname, str) or not isinstance(pwd, str):
            raise server_error("INTERNAL_ERROR", "uname and pwd must be strings")
        account = json.loads(self.endpoint.account.read_text())
        wrong = (self.endpoint.faults / WRONG_PASSWORD).exists()
        if wrong or uname != account["username"] or not secrets.compare_digest(
                pwd.encode(), str(account["password"]).encode()):
            raise server_error("SESSION_AUTHENTICATION_FAILED", uname, AUTH_FAILURE)
        role = "read-only" if (self.endpoint.faults / READ_ONLY).exists() else account["role"]
        handle = f"OpaqueRef:{secrets.token_hex(16)}"
        with self.lock:
            self.sessions[handle] = Session(uname, role)
            self.logins += 1
            self._count()
        return handle


def _failure(code: str, *params: str) -> dict[str, Any]:
    return {"Status": "Failure", "ErrorDescription": [code, *params]}


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/", "/RPC2")

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: a login carries a password."""


class TlsXmlRpcServer(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """The TLS handshake runs in the request's own thread, so a client that connects and
    never speaks holds up no one else."""

    daemon_threads = True

    def __init__(self, port: int, tls: ssl.SSLContext, dispatcher: Dispatcher) -> None:
        super().__init__(("127.0.0.1", port), requestHandler=_Handler, logRequests=False,
                         allow_none=True)
        self.tls = tls
        self.register_instance(dispatcher)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a failed handshake is the client's to report
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]
        finally:
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, (OSError, ssl.SSLError)):
            traceback.print_exc()


def tls_context(endpoint: PoolEndpoint) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(endpoint.cert), str(endpoint.key))
    return context


def host_certificate(cert_file: Path) -> records.Record:
    """The coordinator's server certificate as a Certificate row (type ``host``)."""
    import uuid

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from wlbplan.lab.xe.trust import pp_hash

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    sha256 = pp_hash(cert.fingerprint(hashes.SHA256()))
    return {"uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, sha256)),
            "not_before": cert.not_valid_before_utc.strftime("%Y%m%dT%H:%M:%SZ"),
            "not_after": cert.not_valid_after_utc.strftime("%Y%m%dT%H:%M:%SZ"),
            "fingerprint_sha256": sha256,
            "fingerprint_sha1": pp_hash(cert.fingerprint(hashes.SHA1()))}  # noqa: S303


def build(endpoint: PoolEndpoint) -> TlsXmlRpcServer:
    dispatcher = Dispatcher(endpoint, host_certificate(endpoint.cert))
    return TlsXmlRpcServer(endpoint.port, tls_context(endpoint), dispatcher)


def serve(servers: list[TlsXmlRpcServer]) -> None:
    """Serve every pool until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    while not stop.wait(3600):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()


def main(config_path: Path) -> int:
    """``xenapi-server CONFIG``: bind every pool's port, then go to the background (the
    pid file names the serving process, written once it exists)."""
    config = json.loads(config_path.read_text())
    servers = [build(PoolEndpoint.from_json(item)) for item in config["pools"]]
    pid = os.fork()
    if pid:
        xe_state.write_atomic(Path(config["pid_file"]), f"{pid}\n".encode())
        os._exit(0)
    os.setsid()
    log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    serve(servers)
    return 0
