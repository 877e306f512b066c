"""Parsing PEM bundles and public keys, fingerprints, and key-to-certificate matching."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from wlbplan.certs.common import _MAX_BUNDLE
from wlbplan.errors import VerifyError


def format_fingerprint(digest: bytes) -> str:
    """Upper-case hex pairs joined by ':' - how xapi prints certificate fingerprints."""
    return digest.hex(":").upper()


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER."""
    return format_fingerprint(cert.fingerprint(hashes.SHA256()))


def public_key_fingerprint(item: x509.Certificate | CertificatePublicKeyTypes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo DER: equal for a certificate and its key.

    This is how a key is matched to a certificate without the private key ever
    leaving the appliance (it sends ``openssl pkey -pubout``).
    """
    key = item.public_key() if isinstance(item, x509.Certificate) else item
    digest = hashes.Hash(hashes.SHA256())
    digest.update(_spki_der(key))
    return format_fingerprint(digest.finalize())


def key_description(key: CertificatePublicKeyTypes) -> tuple[str, int, str | None]:
    """(type, bits, curve name) of a public key: ("rsa", 2048, None), ("ec", 384, "secp384r1")."""
    return _key_facts(key)


def same_key(a: CertificatePublicKeyTypes, b: CertificatePublicKeyTypes) -> bool:
    return _spki_der(a) == _spki_der(b)


def _spki_der(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )



_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_CERT_LABELS: Final = (b"CERTIFICATE", b"X509 CERTIFICATE")
_CERT_BEGIN = re.compile(rb"-----BEGIN (?:X509 )?CERTIFICATE-----")
_PUBLIC_LABELS: Final = (b"PUBLIC KEY", b"RSA PUBLIC KEY")
# What cryptography raises on malformed input; several are not ValueErrors.
_PARSE_ERRORS: Final = (
    ValueError, TypeError, UnsupportedAlgorithm,
    x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
)
_CERT_KEY_CLASSES: Final = (
    rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey, dsa.DSAPublicKey,
)


def parse_pem_bundle(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in file order.

    Text between blocks and non-certificate blocks (keys, CRLs) are ignored, as
    OpenSSL does when it reads a CAfile. Anything unusable raises VerifyError, whose
    message says what is wrong in words (never a library's internals, never PEM armour,
    which every renderer would redact together with the rest of the message).
    """
    if len(data) > _MAX_BUNDLE:
        raise VerifyError(f"certificate bundle is too large ({len(data)} bytes)")
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) in _CERT_LABELS]
    if len(_CERT_BEGIN.findall(data)) != len(blocks):
        raise VerifyError("certificate bundle has a BEGIN CERTIFICATE line without its END "
                          "line (cut short?)")
    if not blocks:
        raise VerifyError(f"no PEM certificate found: {_no_certificate(data)}")
    return [_load_block(block, number) for number, block in enumerate(blocks, start=1)]


def _no_certificate(data: bytes) -> str:
    """Why a bundle holds no certificate, in the words an operator can act on."""
    if not data.strip():
        return "it is empty"
    if b"PRIVATE KEY-----" in data:
        # Never more than that: nothing of a key is ever repeated.
        return "it holds a private key where a certificate is expected"
    if data.startswith(b"\x30") and not data.isascii():
        return ("it is binary, DER-encoded perhaps; wlbplan reads PEM: convert it with "
                "`openssl x509 -inform DER -in FILE -out FILE.pem`")
    return "there is no BEGIN CERTIFICATE line"


def _load_block(block: bytes, number: int) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(block)
        # cryptography parses names, extensions and keys lazily: touch what
        # describe() needs so a broken one fails here, with the block number.
        _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key())
    except _PARSE_ERRORS as err:
        raise VerifyError(f"certificate {number} in the bundle is not valid: "
                          f"{_why(block, err)}") from None
    return cert


_ARMOUR = re.compile(rb"-----[A-Z0-9 ]+-----")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _why(block: bytes, err: Exception) -> str:
    """cryptography's reason in words: its texts quote Rust parser states and FAQ links."""
    body = b"".join(_ARMOUR.sub(b"", block).split())
    if not _BASE64.fullmatch(body) or len(body) % 4:
        return "its base64 text is damaged"
    said = str(err)
    if "asn1" in said.lower() or "ParseError" in said or "Unable to load" in said:
        return "its content is not a well-formed X.509 certificate (DER)"
    return said.split(". See https://")[0][:200]


def to_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def parse_public_key_pem(data: bytes) -> CertificatePublicKeyTypes:
    """The public key in ``openssl pkey -pubout`` output (text around it is ignored)."""
    if b"PRIVATE KEY-----" in data:
        raise VerifyError(
            "expected a public key (openssl pkey -pubout) but got a private key; "
            "private keys never leave the appliance"
        )
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) in _PUBLIC_LABELS]
    if not blocks:
        raise VerifyError("no PEM public key found (no BEGIN PUBLIC KEY line)")
    try:
        key = serialization.load_pem_public_key(blocks[0])
    except _PARSE_ERRORS as err:
        raise VerifyError(f"public key is not valid: {_why(blocks[0], err)}") from None
    if not isinstance(key, _CERT_KEY_CLASSES):
        raise VerifyError(f"unsupported public key type {type(key).__name__}")
    return key


def key_matches(cert: x509.Certificate, public_key_pem: bytes) -> bool:
    """Does the appliance's key (public half, PEM) belong to this certificate?"""
    return _spki_der(cert.public_key()) == _spki_der(parse_public_key_pem(public_key_pem))

def _key_facts(key: CertificatePublicKeyTypes) -> tuple[str, int, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, None
    return "unknown", 0, None
