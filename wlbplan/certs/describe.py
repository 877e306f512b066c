"""Describing a certificate: names, key, signature, usages, dates (what plans show)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from wlbplan.certs.chain import is_self_signed
from wlbplan.certs.common import _EKU_NAMES, _when
from wlbplan.certs.parse import _key_facts, fingerprint


@dataclass(frozen=True)
class CertInfo:
    """What a reviewer needs to know about one certificate; no key material."""

    subject: str
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str
    key_type: str
    key_bits: int
    key_curve: str | None
    signature_hash: str | None
    is_self_signed: bool
    is_ca: bool
    eku: tuple[str, ...] | None

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until notAfter; negative once expired (floors, so -1 s is -1)."""
        return (self.not_after - _when(now)).days


def describe(cert: x509.Certificate) -> CertInfo:
    key_type, key_bits, key_curve = _key_facts(cert.public_key())
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=_common_name(cert),
        dns_names=dns_names(cert),
        ip_addresses=ip_addresses(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial=_serial_hex(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=fingerprint(cert),
        key_type=key_type,
        key_bits=key_bits,
        key_curve=key_curve,
        signature_hash=_signature_hash(cert),
        is_self_signed=is_self_signed(cert),
        is_ca=is_ca(cert),
        eku=_eku(cert),
    )


def _common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    san = _san(cert)
    return tuple(san.get_values_for_type(x509.DNSName)) if san else ()


def ip_addresses(cert: x509.Certificate) -> tuple[str, ...]:
    san = _san(cert)
    return tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) if san else ()


def _serial_hex(serial: int) -> str:
    # Upper-case, even length: what `openssl x509 -serial` prints.
    text = format(serial, "X")
    return text.rjust(len(text) + len(text) % 2, "0")




def _signature_hash(cert: x509.Certificate) -> str | None:
    """The hash the issuer signed with; None for Ed25519/Ed448 (no separate hash)."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return cert.signature_algorithm_oid.dotted_string
    return algorithm.name if algorithm is not None else None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _eku(cert: x509.Certificate) -> tuple[str, ...] | None:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in usages)
