"""Certificates the lab makes: an appliance's test certificate, small CAs, broken variants.

``self_signed`` mirrors ``openssl req -x509 -subj /CN=NAME -addext subjectAltName=DNS:NAME``
with OpenSSL 3's defaults (basicConstraints CA:TRUE, subject/authority key ids), which is
what a WLB appliance's own test certificate looks like.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

SigningHash = hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_DAY = dt.timedelta(days=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def make_key(kind: str = "rsa", bits: int = 2048) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ec":
        curves = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
        return ec.generate_private_key(curves[bits])
    raise ValueError(f"unknown key type {kind!r}")


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def build(
    common_name: str | None,
    *,
    key: PrivateKey | None = None,
    issuer: Issued | None = None,
    sans: list[str] | None = None,
    ca: bool | None = False,
    path_length: int | None = None,
    server_auth: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 365,
    hash_alg: SigningHash | None = None,
) -> Issued:
    """Make one certificate; self-signed unless ``issuer`` is given.

    ``ca=None`` leaves basicConstraints out altogether; ``sans=None`` leaves SAN out.
    """
    key = key or make_key()
    start = not_before or (now() - _DAY)
    end = not_after or (start + dt.timedelta(days=days))
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    subject = x509.Name(names)
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    aki_key = issuer.key.public_key() if issuer else key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_key), critical=False
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    if sans is not None:
        builder = builder.add_extension(_san(sans), critical=False)
    if server_auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return Issued(builder.sign(signing_key, hash_alg or hashes.SHA256()), key)


def appliance_self_signed(fqdn: str, *, key: PrivateKey | None = None, **kw: object) -> Issued:
    """What ``openssl req -x509`` makes by default for an appliance: CA:TRUE, CN and DNS SAN."""
    # Debian's openssl.cnf [v3_ca]: basicConstraints=critical,CA:true, SKI and AKI.
    return build(fqdn, key=key, sans=[fqdn], ca=True, **kw)  # type: ignore[arg-type]


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file created with ``mode`` from the start (no window with looser bits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
