"""The lab's ``xe``: the CLI of a pool coordinator, emulated over ``state.json``.

Behaviour and texts follow xen-api (xapi-project/xen-api); where a text below is quoted
from its source, the file is named. ``/work/shared/reference/xapi-facts.md`` lists the
facts. Stdlib only at import time: benchmarks run this thousands of times, so ``ssl``,
``socket`` and ``cryptography`` are imported only by the commands that need them.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING

from wlbplan.lab import xe_state

if TYPE_CHECKING:
    import datetime as dt
    import socket
    import ssl
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from cryptography import x509

    from wlbplan.lab.layout import HostLayout, TargetLayout
    from wlbplan.lab.xe_state import State

    Handler = Callable[["Context"], None]


# --- errors ---------------------------------------------------------------------------


class XeError(Exception):
    """A failure: its lines go to stderr and xe exits 1."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


# Codes declared in the datamodel (ocaml/idl/datamodel_errors.ml): description, parameter
# names. xe prints the description then `name: value` per parameter (cli_util.ml
# get_server_error); any other code prints `Error code:` / `Error parameters:` (newcli.ml).
DECLARED: dict[str, tuple[str, tuple[str, ...]]] = {
    "CERTIFICATE_DOES_NOT_EXIST": ("The specified certificate does not exist.", ("name",)),
    "CERTIFICATE_ALREADY_EXISTS": (
        "A certificate already exists with the specified name.", ("name",)),
    "CERTIFICATE_NAME_INVALID": ("The specified certificate name is invalid.", ("name",)),
    "CRL_DOES_NOT_EXIST": ("The specified CRL does not exist.", ("name",)),
    "CRL_ALREADY_EXISTS": ("A CRL already exists with the specified name.", ("name",)),
    "CRL_NAME_INVALID": ("The specified CRL name is invalid.", ("name",)),
    "UUID_INVALID": ("The uuid you supplied was invalid.", ("type", "uuid")),
    "INVALID_VALUE": ("The value given is invalid", ("field", "value")),
    "SSL_VERIFY_ERROR": (
        "The remote system's SSL certificate failed to verify against our certificate "
        "library.", ("reason",)),
    "WLB_NOT_INITIALIZED": ("No WLB connection is configured.", ()),
    "WLB_CONNECTION_REFUSED": ("WLB refused a connection to the server.", ()),
    "WLB_UNKNOWN_HOST": ("The configured WLB server name failed to resolve in DNS.", ()),
    "WLB_TIMEOUT": ("The communication with the WLB server timed out.", ("configured_timeout",)),
    "WLB_AUTHENTICATION_FAILED": ("WLB rejected our configured authentication details.", ()),
    "WLB_CONNECTION_RESET": ("The connection to the WLB server was reset.", ()),
    "WLB_URL_INVALID": (
        "The WLB URL is invalid. Ensure it is in the format: <ipaddress>:<port>. "
        "The configured/given URL is returned.", ("url",)),
}


def _pp_params(names: Sequence[str], values: Sequence[str]) -> list[str]:
    """cli_util.ml pp_params: pair names with values, tolerating either list being short."""
    lines = [f"{n}: {v}" for n, v in zip(names, values, strict=False)]
    lines += [f"<extra>: {v}" for v in values[len(names):]]
    lines += [f"{n}: <unknown>" for n in names[len(values):]]
    return lines


def server_error(code: str, *params: str) -> XeError:
    declared = DECLARED.get(code)
    if declared is None:
        return XeError(f"Error code: {code}", "Error parameters: " + ", ".join(params))
    description, names = declared
    return XeError(description, *_pp_params(names, params))


def usage_error(what: str, detail: str) -> XeError:
    """xapi_cli.ml param_error: unknown command, missing parameter, syntax error."""
    return XeError(f"{what}: {detail}", "For usage run: 'xe help'")


def cli_failure(message: str) -> XeError:
    """cli_operations.ml's failwith raises Cli_failure, printed as `Error: <message>`."""
    return XeError(f"Error: {message}")


# --- the command line -----------------------------------------------------------------

# newcli.ml options that take a value; they choose the server and credentials, which the
# emulator (always the local coordinator) ignores.
_CONNECTION_OPTIONS = frozenset({"-s", "-p", "-u", "-pw", "-pwf"})
_IGNORED_FLAGS = frozenset({"--nossl", "--debug", "--debug-on-fail"})
# cli_operations.ml stdparams: never object fields, never filters.
STDPARAMS = frozenset({"server", "password", "port", "username", "minimal", "force",
                       "multiple", "all", "message-priority", "trace"})


class Call:
    """One parsed invocation: the command and its `key=value` parameters."""

    def __init__(self, command: str | None, params: dict[str, str]) -> None:
        self.command = command
        self.params = params

    @property
    def minimal(self) -> bool:
        return self.params.get("minimal", "false").lower() in ("true", "t", "1", "yes")


def parse(argv: Sequence[str]) -> Call:
    command: str | None = None
    params: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg in _CONNECTION_OPTIONS:
            next(args, None)
        elif arg in _IGNORED_FLAGS:
            continue
        elif arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            params[key] = value or "true"  # `--minimal` is `minimal=true`
        elif "=" in arg:
            key, _, value = arg.partition("=")
            params[key] = value
        elif command is None:
            command = arg
        else:
            raise usage_error("Syntax error", arg)
    return Call(command, params)


# --- output (cli_printer.ml) ----------------------------------------------------------

Record = list[tuple[str, str]]


def multi_line_record(record: Record) -> str:
    """cli_printer.ml: first key padded on the right, the others on the left."""
    width = 4 + max((len(k) for k, _ in record), default=0)
    lines = [
        f"{k.ljust(width) if i == 0 else k.rjust(width)}: {v}" for i, (k, v) in enumerate(record)
    ]
    return "\n".join(lines) + "\n"


def escape_commas(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,")


class Printer:
    """PTable / PList printing; ``--minimal`` collects one comma-separated line."""

    def __init__(self, minimal: bool) -> None:
        self.minimal = minimal
        self.collected: list[str] = []

    def _print(self, text: str) -> None:
        sys.stdout.write(text + "\n")  # newcli.ml prints with print_endline

    def table(self, records: list[Record]) -> None:
        if not self.minimal:
            for record in records:
                self._print(multi_line_record(record) + "\n")
        elif records and records[0]:
            self.collected.append(",".join(escape_commas(r[0][1]) for r in records))

    def lines(self, items: list[str]) -> None:
        if not self.minimal:
            for item in items:
                self._print(item)
        else:
            self.collected.append(",".join(escape_commas(i) for i in items))

    def flush(self) -> None:
        # xapi_cli.ml flushes the minimal printer after every successful command, even one
        # that printed nothing, so `--minimal` always yields one line.
        if self.minimal:
            self._print(",".join(reversed(self.collected)))


# --- context --------------------------------------------------------------------------


class Context:
    def __init__(self, params: dict[str, str], state_path: Path, printer: Printer) -> None:
        self.params = params
        self.state_path = state_path
        self.printer = printer

    @property
    def layout(self) -> TargetLayout:
        return xe_state.layout_of(self.state_path)

    def state(self) -> State:
        return xe_state.load(self.state_path)

    def host(self, record: State) -> HostLayout:
        return xe_state.host_layout(self.layout, record)

    def flag(self, name: str) -> bool:
        """cli_operations.ml get_bool_param (Record_util.bool_of_string)."""
        value = self.params.get(name, "false")
        if value.lower() in ("true", "yes", "false", "no"):
            return value.lower() in ("true", "yes")
        raise cli_failure(f"Failed to parse parameter '{name}': "
                          f"Expected 'true','yes','false','no', got {value}")


# --- object records (records.ml) ------------------------------------------------------


class Field:
    """One record field: ``kind`` is str, bool or map; RW when ``settable``."""

    def __init__(self, name: str, kind: str = "str", settable: bool = False) -> None:
        self.name = name
        self.kind = kind
        self.settable = settable

    @property
    def label(self) -> str:
        """cli_operations.ml print_field: the access marker after the name."""
        if self.kind == "map":
            return f"{self.name} (MRW)" if self.settable else f"{self.name} (MRO)"
        return f"{self.name} ( RW)" if self.settable else f"{self.name} ( RO)"

    def render(self, obj: State) -> str:
        value = obj.get(self.name, "")
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "map":
            return "; ".join(f"{k}: {v}" for k, v in value.items())
        return str(value)


class ObjectClass:
    """An xe class (pool, host): its fields, its default list columns, its objects."""

    def __init__(self, name: str, fields: tuple[Field, ...], defaults: tuple[str, ...],
                 objects: Callable[[State], list[State]]) -> None:
        self.name = name
        self.fields = fields
        self.defaults = defaults
        self.objects = objects

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def get(self, state: State, uuid: str) -> State:
        for obj in self.objects(state):
            if obj["uuid"] == uuid:
                return obj
        raise server_error("UUID_INVALID", self.name, uuid)


POOL = ObjectClass(
    "pool",
    (Field("uuid"), Field("name-label", settable=True), Field("name-description", settable=True),
     Field("master"), Field("default-SR"), Field("wlb-url"), Field("wlb-username"),
     Field("wlb-enabled", "bool", settable=True), Field("wlb-verify-cert", "bool", settable=True),
     Field("tls-verification-enabled", "bool")),
    ("uuid", "name-label", "name-description", "master", "default-SR"),
    lambda state: [state["pool"]],
)
HOST = ObjectClass(
    "host",
    (Field("uuid"), Field("name-label", settable=True), Field("name-description", settable=True),
     Field("enabled", "bool"), Field("hostname"), Field("software-version", "map")),
    ("uuid", "name-label", "name-description"),
    lambda state: list(state["hosts"]),
)


def _record(cls: ObjectClass, obj: State, names: Iterable[str] | None) -> Record:
    """select_fields: the chosen fields in the record's own order (not the order asked)."""
    wanted = None if names is None else set(names)
    return [(f.label, f.render(obj)) for f in cls.fields if wanted is None or f.name in wanted]


def _chosen_fields(ctx: Context, cls: ObjectClass) -> list[str] | None:
    params = ctx.params.get("params")
    if params is None:
        return list(cls.defaults)
    return None if params == "all" else params.split(",")


def _filter(ctx: Context, cls: ObjectClass, objects: list[State]) -> list[State]:
    """`xe <class>-list field=value`: keep the objects whose field renders as value."""
    for key, value in ctx.params.items():
        if key == "params" or key in STDPARAMS or key.startswith("database:") or not objects:
            continue
        field = cls.field(key)
        if field is None:
            raise cli_failure(f"Unknown field '{key}'")
        objects = [o for o in objects if field.render(o) == value]
    return objects


def list_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        objects = _filter(ctx, cls, cls.objects(ctx.state()))
        names = _chosen_fields(ctx, cls)
        ctx.printer.table([_record(cls, o, names) for o in objects])

    return run


def param_list_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        ctx.printer.table([_record(cls, cls.get(ctx.state(), ctx.params["uuid"]), None)])

    return run


def param_get_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        obj = cls.get(ctx.state(), ctx.params["uuid"])
        name = ctx.params["param-name"]
        field = cls.field(name)
        if field is None:
            # records.ml CLI_failed_to_find_param → server_error "Missing parameter" (undeclared)
            raise server_error("Missing parameter", name)
        key = ctx.params.get("param-key")
        if key is not None and field.kind == "map":
            if key not in obj[name]:
                raise cli_failure(f"Key {key} not found in map")
            ctx.printer.lines([str(obj[name][key])])
        else:
            ctx.printer.lines([field.render(obj)])

    return run


def _set_field(cls: ObjectClass, obj: State, key: str, value: str) -> None:
    """cli_operations.ml p_set for one `key=value`; the texts are its failwith messages."""
    field = cls.field(key)
    if field is None:
        base = cls.field(key.split(":", 1)[0]) if ":" in key else None
        if base is None:
            raise cli_failure(f"Unknown field '{key}'")
        if base.kind != "map":
            raise cli_failure(f"Field '{base.name}' is not a set or map")
        raise cli_failure(f"Map field '{base.name}' is read-only.")
    if not field.settable:
        raise cli_failure(f"Field '{key}' is read-only.")
    if field.kind == "bool":
        # records.ml uses OCaml's bool_of_string: exactly "true" or "false".
        if value not in ("true", "false"):
            raise cli_failure(f"Parameter {key} must be a boolean (true or false)")
        obj[key] = value == "true"
    else:
        obj[key] = value


def param_set_command(cls: ObjectClass) -> Handler:
    def run(ctx: Context) -> None:
        with xe_state.locked(ctx.state_path) as state:
            obj = cls.get(state, ctx.params["uuid"])
            try:
                for key, value in ctx.params.items():
                    if key != "uuid" and key not in STDPARAMS:
                        _set_field(cls, obj, key, value)
            finally:
                # each field is its own API call: those set before a failure stay set
                xe_state.save(ctx.state_path, state)

    return run


# --- the trust store (certificates.ml) ------------------------------------------------


class Kind:
    """CA certificates or CRLs: same commands, different folder, errors and checks."""

    def __init__(self, what: str, prefix: str, folder: Callable[[HostLayout], Path], *,
                 ca: bool) -> None:
        self.what = what  # cli_operations.ml: "Failed to read <what>"
        self.prefix = prefix  # CERTIFICATE_* or CRL_* error codes
        self.dir = folder
        self.ca = ca  # CA certificates are validated, recorded in the DB and bundled


CA = Kind("certificate", "CERTIFICATE", lambda host: host.certs_dir, ca=True)
CRL = Kind("CRL", "CRL", lambda host: host.crls_dir, ca=False)

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]*")


def validate_name(kind: Kind, name: str) -> None:
    """certificates.ml is_unsafe: a leading dot, no `.pem` suffix or another character."""
    if name.startswith(".") or not name.endswith(".pem") or not _SAFE_NAME.fullmatch(name):
        raise server_error(f"{kind.prefix}_NAME_INVALID", name)


def read_client_file(filename: str, kind: Kind) -> bytes:
    """The xe client reads the file (relative to its cwd) and streams it to xapi."""
    try:
        with open(filename, "rb") as handle:
            return handle.read()
    except OSError:
        raise XeError(f"Failed to read {kind.what}") from None


_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)


def pem_certificates(data: bytes) -> list[bytes] | None:
    """DER of each CERTIFICATE block; None when a block is not valid base64."""
    import binascii

    ders = []
    for label, body in _PEM_BLOCK.findall(data):
        if label != b"CERTIFICATE":
            continue
        try:
            ders.append(binascii.a2b_base64(body))
        except binascii.Error:
            return None
    return ders


def rfc3339(moment: dt.datetime) -> str:
    """Ptime.to_rfc3339 ~tz_offset_s:0 (gencert/lib.ml): whole seconds, `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # callers pass UTC times


def validate_ca_certificate(data: bytes) -> None:
    """gencert/lib.ml validate_not_expired: exactly one certificate, within its dates.

    The errors are not declared in the datamodel, so xe prints them raw;
    CA_CERTIFICATE_INVALID carries no parameters.
    """
    import datetime as dt

    from cryptography import x509

    ders = pem_certificates(data)
    if ders is None or len(ders) != 1:  # ocaml-x509 decode_pem: Pem.exactly_one
        raise server_error("CA_CERTIFICATE_INVALID")
    try:
        cert = x509.load_der_x509_certificate(ders[0])
    except ValueError:
        raise server_error("CA_CERTIFICATE_INVALID") from None
    now = dt.datetime.now(dt.UTC)
    if now < cert.not_valid_before_utc:
        raise server_error("CA_CERTIFICATE_NOT_VALID_YET", rfc3339(now),
                           rfc3339(cert.not_valid_before_utc))
    if now > cert.not_valid_after_utc:
        raise server_error("CA_CERTIFICATE_EXPIRED", rfc3339(now),
                           rfc3339(cert.not_valid_after_utc))


def install(ctx: Context, kind: Kind) -> None:
    filename = ctx.params["filename"]
    data = read_client_file(filename, kind)
    name = os.path.basename(filename)  # cli_operations.ml: Filename.basename
    if kind.ca:
        validate_ca_certificate(data)
    with xe_state.locked(ctx.state_path) as state:
        validate_name(kind, name)
        hosts = [ctx.host(h) for h in state["hosts"]]
        if (kind.dir(hosts[0]) / name).exists():
            raise server_error(f"{kind.prefix}_ALREADY_EXISTS", name)
        for host in hosts:
            xe_state.write_atomic(kind.dir(host) / name, data, mode=0o644)
            if kind.ca:
                xe_state.rebuild_bundle(host)
        if kind.ca and name not in state["ca_certificates"]:
            state["ca_certificates"].append(name)
            xe_state.save(ctx.state_path, state)


def _supports_force(state: State) -> bool:
    """`force` on pool-uninstall-ca-certificate arrived in xapi 24.35.0."""
    return xe_state.xapi_version(state) >= (24, 35)


def uninstall(ctx: Context, kind: Kind, *, force: bool) -> None:
    name = ctx.params["name"]
    with xe_state.locked(ctx.state_path) as state:
        force = force and _supports_force(state)
        validate_name(kind, name)
        hosts = [ctx.host(h) for h in state["hosts"]]
        if (kind.dir(hosts[0]) / name).exists():
            for host in hosts:
                (kind.dir(host) / name).unlink(missing_ok=True)
                if kind.ca:
                    xe_state.rebuild_bundle(host)
        elif not force:
            raise server_error(f"{kind.prefix}_DOES_NOT_EXIST", name)
        if kind.ca:
            _forget_ca_record(ctx, state, name, force=force)


def _forget_ca_record(ctx: Context, state: State, name: str, *, force: bool) -> None:
    """certificates.ml Db_util.remove_ca_cert_by_name: no record is INVALID_VALUE."""
    if name in state["ca_certificates"]:
        state["ca_certificates"].remove(name)
        xe_state.save(ctx.state_path, state)
    elif not force:  # inferred: force exists to clean up exactly this kind of leftover
        raise server_error("INVALID_VALUE", "certificate:name", name)


def list_installed(ctx: Context, kind: Kind) -> None:
    """CA certificates come from the Certificate DB (both lab versions have it; xapi before
    1.290 read the folder), CRLs from the coordinator's folder. Real xe promises no order;
    this one sorts."""
    state = ctx.state()
    if kind.ca:
        names = sorted(state["ca_certificates"])
    else:
        folder = kind.dir(ctx.host(state["hosts"][0]))
        names = [n for n in xe_state.regular_files(folder) if not n.startswith(".")]
    ctx.printer.lines(names)


def _replace_folder(source: Path, target: Path) -> None:
    for name in xe_state.regular_files(target):
        (target / name).unlink()
    for name in xe_state.regular_files(source):
        if not name.startswith("."):
            xe_state.write_atomic(target / name, (source / name).read_bytes(), mode=0o644)


def sync(ctx: Context) -> None:
    """xapi_pool.ml certificate_sync: every member gets exactly the coordinator's CA
    certificates and CRLs (erase and replace), then every bundle is rebuilt."""
    with xe_state.locked(ctx.state_path) as state:
        hosts = [ctx.host(h) for h in state["hosts"]]
        for member in hosts[1:]:
            for kind in (CA, CRL):
                _replace_folder(kind.dir(hosts[0]), kind.dir(member))
        for host in hosts:
            xe_state.rebuild_bundle(host)


# --- WLB (workload_balancing.ml) ------------------------------------------------------

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
# stunnel's verify.c (cert_check) writes `CERT: <reason>`; xapi's stunnel_log_scanner.ml
# reports what follows `CERT: ` as the SSL_VERIFY_ERROR reason.
PRE_VERIFICATION = "Pre-verification error: "
SUBJECT_CHECKS_FAILED = "Subject checks failed"
NOT_LOCAL = "Certificate not found in local repository"
# What a wildcard may stand for in X509_check_host (v3_utl.c): letters, digits, hyphen.
_LDH = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
# check_purpose_ssl_server: an extendedKeyUsage must name serverAuth or server gated crypto.
_SERVER_EKUS = frozenset({"1.3.6.1.5.5.7.3.1", "2.16.840.1.113730.4.1", "1.3.6.1.4.1.311.10.3.3"})


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
    leaf and ``_peer_checks`` judges it. checkHost is never OpenSSL's in-chain host check
    (Python's ``check_hostname``): it matches IP SANs and refuses partial wildcards, which
    stunnel's ``X509_check_host()`` does not; ``_peer_checks`` applies it after the chain.
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
        reason = _peer_checks(leaf, bundle, host, verify_peer=verification == "peer")
        if reason is not None:
            raise server_error("SSL_VERIFY_ERROR", reason)


def _peer_checks(leaf_der: bytes, bundle: Path, host: str, *, verify_peer: bool) -> str | None:
    """stunnel's verify callback at depth 0 (verify.c cert_check): why it rejects, or None.

    verifyChain: the chain was verified in the handshake; checkHost is left. verifyPeer:
    the leaf's own errors count (those of its issuers, and a missing issuer, do not); then
    checkHost; then a certificate with the leaf's subject and public key must be in the
    bundle (cert_check_local).
    """
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(leaf_der)
    installed = _bundle_certificates(bundle) if verify_peer else []
    if verify_peer:
        error = _leaf_error(leaf, leaf_der, installed)
        if error is not None:
            return PRE_VERIFICATION + error
    if not x509_check_host(leaf, host):
        return SUBJECT_CHECKS_FAILED
    if verify_peer and not _locally_installed(leaf, installed):
        return NOT_LOCAL
    return None


def _bundle_certificates(bundle: Path) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        ders = pem_certificates(bundle.read_bytes()) or []
    except OSError:
        return []
    certificates = []
    for der in ders:
        with contextlib.suppress(ValueError):
            certificates.append(x509.load_der_x509_certificate(der))
    return certificates


def _leaf_error(leaf: x509.Certificate, leaf_der: bytes,
                installed: list[x509.Certificate]) -> str | None:
    """OpenSSL's depth-0 errors that verifyPeer does not ignore, in OpenSSL's order
    (x509_vfy.c verify_chain: build_chain, check_extensions, check_auth_level, then
    internal_verify's dates); the texts are X509_verify_cert_error_string's. Not modelled:
    a bad leaf signature when its issuer is at hand, weak digests, nsCertType, CRLs."""
    import datetime as dt

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    der = serialization.Encoding.DER
    if _self_signed(leaf) and all(c.public_bytes(der) != leaf_der for c in installed):
        # Trusted only when this very certificate is installed: one with the same name and
        # key but other bytes is an impostor to OpenSSL (a "self-signed mimic").
        return "self-signed certificate"
    if not _server_purpose(leaf):
        return "unsuitable certificate purpose"
    key = leaf.public_key()  # RSA: the cipher suites admit no other
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:  # security level 2
        return "EE certificate key too weak"
    now = dt.datetime.now(dt.UTC)
    if now < leaf.not_valid_before_utc:
        return "certificate is not yet valid"
    if now > leaf.not_valid_after_utc:
        return "certificate has expired"
    return None


def _self_signed(cert: x509.Certificate) -> bool:
    """OpenSSL's EXFLAG_SS: issuer = subject and the authority key id, if any, is its own."""
    from cryptography import x509

    if cert.issuer != cert.subject:
        return False
    try:
        authority = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        subject = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return True
    keyid = authority.value.key_identifier
    return keyid is None or keyid == subject.value.digest


def _server_purpose(cert: x509.Certificate) -> bool:
    """v3_purp.c check_purpose_ssl_server for a leaf: extendedKeyUsage, if any, names
    serverAuth; keyUsage, if any, allows a key exchange."""
    from cryptography import x509

    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if not any(oid.dotted_string in _SERVER_EKUS for oid in usages):
            return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.digital_signature or usage.key_encipherment or usage.key_agreement


def _locally_installed(leaf: x509.Certificate, installed: list[x509.Certificate]) -> bool:
    """verify.c cert_check_local: an installed certificate with the leaf's subject and the
    same public key; not necessarily the same certificate (a re-issue with the same key)."""
    from cryptography.hazmat.primitives import serialization

    def spki(cert: x509.Certificate) -> bytes:
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    key = spki(leaf)
    return any(c.subject == leaf.subject and spki(c) == key for c in installed)


def x509_check_host(cert: x509.Certificate, host: str) -> bool:
    """OpenSSL's ``X509_check_host(cert, host, 0, 0, NULL)``, stunnel's checkHost.

    The host (even an IP literal) is compared with the DNS SANs, and with each CN only when
    the certificate has no DNS SAN; IP SANs are never consulted. Wildcards as OpenSSL
    allows them without flags: one `*` in the first label, partial (`w*.example.com`)
    included, never in an IDNA label, and at least two labels after it.
    """
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = host.encode("utf-8", "surrogateescape")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        patterns = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        patterns = []
    if not patterns:
        common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        patterns = [a.value for a in common_names if isinstance(a.value, str)]
    return any(_equal_wildcard(p.encode("utf-8", "surrogateescape"), name) for p in patterns)


def _equal_wildcard(pattern: bytes, subject: bytes) -> bool:
    """v3_utl.c equal_wildcard (no flags); bytes.lower() folds ASCII only, as OpenSSL."""
    if b"\0" in pattern:
        return False
    sub_domains = len(subject) > 1 and subject[:1] == b"."  # ".example.com": any below it
    star = None if sub_domains else _valid_star(pattern)
    if star is None:
        if sub_domains:  # skip_prefix: compare the pattern's tail of the subject's length
            pattern = pattern[max(0, len(pattern) - len(subject)):]
        return pattern.lower() == subject.lower()
    prefix, suffix = pattern[:star].lower(), pattern[star + 1:].lower()
    subject = subject.lower()
    if len(subject) < len(prefix) + len(suffix):
        return False
    if not subject.startswith(prefix) or not subject.endswith(suffix):
        return False
    middle = subject[len(prefix):len(subject) - len(suffix)]
    whole_label = not prefix and suffix.startswith(b".")
    if whole_label and not middle:
        return False
    if not whole_label and subject.startswith(b"xn--"):
        return False  # an IDNA label never matches a partial wildcard
    if middle == b"*":
        return True
    return all(c in _LDH for c in middle)


def _valid_star(pattern: bytes) -> int | None:
    """v3_utl.c valid_star (no flags): the index of the one acceptable `*`, or None."""
    star, dots = None, 0
    label_start, hyphen, idna = True, False, False
    for i, c in enumerate(pattern):
        if c == ord("*"):
            at_start = label_start
            at_end = i == len(pattern) - 1 or pattern[i + 1] == ord(".")
            if star is not None or idna or dots or not (at_start or at_end):
                return None
            star, label_start = i, False
        elif c in _LDH and c != ord("-"):
            if label_start and pattern[i:i + 4].lower() == b"xn--":
                idna = True
            label_start, hyphen = False, False
        elif c == ord("."):
            if hyphen or label_start:
                return None
            label_start, hyphen, idna, dots = True, False, False, dots + 1
        elif c == ord("-"):
            if label_start:
                return None
            hyphen = True
        else:
            return None
    if label_start or hyphen or dots < 2:
        return None
    return star


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
    wlb_call(ctx, ctx.state(), p["wlb_url"], p["wlb_username"], p["wlb_password"])
    with xe_state.locked(ctx.state_path) as state:
        pool = state["pool"]
        pool["wlb-url"], pool["wlb-username"] = p["wlb_url"], p["wlb_username"]
        pool["wlb-enabled"] = True
        state["wlb_password"] = p["wlb_password"]
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
    state = ctx.state()
    pool = state["pool"]
    if not pool["wlb-url"]:
        raise server_error("WLB_NOT_INITIALIZED")
    wlb_call(ctx, state, pool["wlb-url"], pool["wlb-username"], state["wlb_password"])
    ctx.printer.table([WLB_CONFIGURATION])


def enable_tls_verification(ctx: Context) -> None:
    """xapi_pool.ml enable_tls_verification: pool-wide TLS checks, and it turns on
    wlb-verify-cert too, silently (what operators get wrong)."""
    with xe_state.locked(ctx.state_path) as state:
        state["pool"]["tls-verification-enabled"] = True
        state["pool"]["wlb-verify-cert"] = True
        xe_state.save(ctx.state_path, state)


# --- the command table ----------------------------------------------------------------


def help_command(ctx: Context) -> None:
    ctx.printer.lines(["Usage: xe <command> [-s server] [-u user] [-pw password] "
                       "[-p port] [--minimal] [param=value ...]", "Commands:",
                       *sorted(COMMANDS)])


def _class_commands(cls: ObjectClass) -> dict[str, tuple[tuple[str, ...], Handler]]:
    """cli_operations.ml make_param_funs: the generic commands of every class."""
    return {
        f"{cls.name}-list": ((), list_command(cls)),
        f"{cls.name}-param-list": (("uuid",), param_list_command(cls)),
        f"{cls.name}-param-get": (("uuid", "param-name"), param_get_command(cls)),
        f"{cls.name}-param-set": (("uuid",), param_set_command(cls)),
    }


COMMANDS: dict[str, tuple[tuple[str, ...], Handler]] = {
    "help": ((), help_command),
    "pool-install-ca-certificate": (("filename",), lambda c: install(c, CA)),
    "pool-certificate-install": (("filename",), lambda c: install(c, CA)),  # deprecated alias
    "pool-uninstall-ca-certificate": (
        ("name",), lambda c: uninstall(c, CA, force=c.flag("force"))),
    "pool-certificate-uninstall": (("name",), lambda c: uninstall(c, CA, force=False)),
    "pool-certificate-list": ((), lambda c: list_installed(c, CA)),
    "pool-certificate-sync": ((), sync),
    "pool-crl-install": (("filename",), lambda c: install(c, CRL)),
    "pool-crl-uninstall": (("name",), lambda c: uninstall(c, CRL, force=False)),
    "pool-crl-list": ((), lambda c: list_installed(c, CRL)),
    "pool-initialize-wlb": (
        ("wlb_url", "wlb_username", "wlb_password", "xenserver_username",
         "xenserver_password"), initialize_wlb),
    "pool-deconfigure-wlb": ((), deconfigure_wlb),
    "pool-retrieve-wlb-configuration": ((), retrieve_wlb_configuration),
    "pool-enable-tls-verification": ((), enable_tls_verification),
    **_class_commands(POOL),
    **_class_commands(HOST),
}


def run(argv: Sequence[str], state_path: Path) -> None:
    call = parse(argv)
    name = call.command or "help"
    if name not in COMMANDS:
        raise usage_error("Unknown command", name)
    required, handler = COMMANDS[name]
    for key in required:  # xapi_cli.ml check_required_keys, in the table's order
        if key not in call.params:
            raise usage_error("Required parameter not found", key)
    printer = Printer(call.minimal)
    handler(Context(call.params, state_path, printer))
    printer.flush()


def main(argv: list[str], state_path: Path) -> int:
    try:
        run(argv, state_path)
    except FileNotFoundError:
        if state_path.exists():
            raise
        # like xe when xapi is not running, but saying which lab pool is missing
        sys.stderr.write(f"Error: no pool state at {state_path} (is the lab up?)\n")
        return 1
    except XeError as err:
        sys.stdout.flush()
        sys.stderr.write("".join(f"{line}\n" for line in err.lines))
        return 1
    return 0
