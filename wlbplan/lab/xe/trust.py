"""The trust store (certificates.ml): CA certificates and CRLs on every host."""

from __future__ import annotations

import os
import re

from wlbplan.lab import xe_state
from wlbplan.lab.xe.errors import XeError, server_error

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable
    from pathlib import Path

    from wlbplan.lab.layout import HostLayout
    from wlbplan.lab.xe.cli import Context
    from wlbplan.lab.xe_state import State


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
    """certificates.ml is_unsafe: a leading dot, no `.pem` suffix or another character.

    An empty name fails before that: ``name.[0]`` raises Invalid_argument, which
    exnHelper.ml turns into INTERNAL_ERROR.
    """
    if not name:
        raise server_error("INTERNAL_ERROR", "Invalid argument: index out of bounds")
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
    install_named(ctx, kind, name, data)


def install_named(ctx: Context, kind: Kind, name: str, data: bytes) -> None:
    """xapi_pool.ml certificate_install (and crl_install): what xe and XenAPI both call."""
    with xe_state.locked(ctx.state_path) as state:
        if kind.ca and xe_state.has(state, xe_state.CONTENT_CHECK_SINCE):
            validate_ca_certificate(data)
        validate_name(kind, name)
        hosts = [ctx.host(h) for h in state["hosts"]]
        if (kind.dir(hosts[0]) / name).exists():
            raise server_error(f"{kind.prefix}_ALREADY_EXISTS", name)
        for host in hosts:
            xe_state.write_atomic(kind.dir(host) / name, data, mode=0o644)
            if kind.ca:
                xe_state.rebuild_bundle(host)
        if _recorded(kind, state) and name not in state["ca_certificates"]:
            state["ca_certificates"].append(name)
            state.setdefault("ca_records", {})[name] = ca_record(name, data)
            xe_state.save(ctx.state_path, state)


def pp_hash(digest: bytes) -> str:
    """certificates.ml pp_hash: upper-case hex pairs joined by colons."""
    return ":".join(f"{b:02X}" for b in digest)


def ca_record(name: str, data: bytes) -> dict[str, str]:
    """What certificates.ml Db_util.add_cert stores of a CA certificate: a uuid, its
    validity and fingerprints (dates as xapi's DateTime, ``YYYYMMDDTHH:MM:SSZ``).

    xapi makes a random uuid; the lab derives it from the name and the content, so that
    a certificate removed and put back by a rollback leaves the pool's state as it was
    (what the lab's tests compare byte for byte)."""
    import hashlib
    import uuid

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    made = uuid.UUID(bytes=hashlib.sha256(name.encode() + b"\0" + data).digest()[:16],
                     version=4)
    record = {"uuid": str(made), "not_before": "19700101T00:00:00Z",
              "not_after": "19700101T00:00:00Z", "fingerprint_sha256": "",
              "fingerprint_sha1": ""}
    ders = pem_certificates(data)
    try:
        cert = x509.load_der_x509_certificate(ders[0]) if ders else None
    except ValueError:
        cert = None
    if cert is None:  # only before xapi 1.304, which checked no content
        return record
    record["not_before"] = cert.not_valid_before_utc.strftime("%Y%m%dT%H:%M:%SZ")
    record["not_after"] = cert.not_valid_after_utc.strftime("%Y%m%dT%H:%M:%SZ")
    record["fingerprint_sha256"] = pp_hash(cert.fingerprint(hashes.SHA256()))
    record["fingerprint_sha1"] = pp_hash(cert.fingerprint(hashes.SHA1()))  # noqa: S303
    return record


def _recorded(kind: Kind, state: State) -> bool:
    """Does this xapi keep a Certificate DB record per CA certificate (since 1.290)?"""
    return kind.ca and xe_state.has(state, xe_state.CA_COMMANDS_SINCE)


def _supports_force(state: State) -> bool:
    """`force` on pool-uninstall-ca-certificate arrived in xapi 24.35.0."""
    return xe_state.xapi_version(state) >= (24, 35)


def uninstall(ctx: Context, kind: Kind, *, force: bool) -> None:
    force = force and _supports_force(ctx.state())
    uninstall_named(ctx, kind, ctx.params["name"], force=force)


def uninstall_named(ctx: Context, kind: Kind, name: str, *, force: bool) -> None:
    """xapi_pool.ml uninstall_ca_certificate (and crl_uninstall): what xe and XenAPI both
    call; ``force`` as the caller's xapi version allows it."""
    with xe_state.locked(ctx.state_path) as state:
        validate_name(kind, name)
        hosts = [ctx.host(h) for h in state["hosts"]]
        if (kind.dir(hosts[0]) / name).exists():
            for host in hosts:
                (kind.dir(host) / name).unlink(missing_ok=True)
                if kind.ca:
                    xe_state.rebuild_bundle(host)
        elif not force:
            raise server_error(f"{kind.prefix}_DOES_NOT_EXIST", name)
        if _recorded(kind, state):
            _forget_ca_record(ctx, state, name, force=force)


def _forget_ca_record(ctx: Context, state: State, name: str, *, force: bool) -> None:
    """certificates.ml Db_util.remove_ca_cert_by_name: no record is INVALID_VALUE."""
    if name in state["ca_certificates"]:
        state["ca_certificates"].remove(name)
        state.setdefault("ca_records", {}).pop(name, None)
        xe_state.save(ctx.state_path, state)
    elif not force:  # inferred: force exists to clean up exactly this kind of leftover
        raise server_error("INVALID_VALUE", "certificate:name", name)


def list_installed(ctx: Context, kind: Kind) -> None:
    """CA certificates come from the Certificate DB (xapi before 1.290 read the folder,
    certificates.ml local_list), CRLs from the coordinator's folder. Real xe promises no
    order; this one sorts."""
    ctx.printer.lines(installed_names(ctx, kind))


def installed_names(ctx: Context, kind: Kind) -> list[str]:
    state = ctx.state()
    if kind.ca:
        return xe_state.ca_names(ctx.layout, state)
    return xe_state.folder_names(kind.dir(ctx.host(state["hosts"][0])))


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

