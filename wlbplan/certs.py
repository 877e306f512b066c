"""Certificate helpers and the two verdicts on a certificate (DESIGN.md §2).

Pure: nothing here touches the network or reads files; it works on bytes and
``cryptography`` objects handed to it. The one exception is :func:`pool_accepts`,
which writes temporary PEM files and runs the local ``openssl verify`` because the
pool's verdict must come from OpenSSL itself, not from a re-implementation.

Verdict 1, "will the pool accept it?" (:func:`pool_accepts`): OpenSSL's rules, as
xapi's stunnel client applies them (``checkHost`` plus ``verifyChain`` since xapi
24.40, ``verifyPeer`` before). Verdict 2, "does it meet modern policy?"
(:func:`modern_policy_findings`): ``cryptography.x509.verification`` (RFC 5280 /
CA/Browser profile), which yields warnings and never refuses on its own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from wlbplan.errors import VerifyError

Mode = Literal["current", "legacy"]
# "checkHost": how stunnel's checkHost matches, X509_check_host() - an IP literal is
# compared with DNS SANs and, failing any, the CN; IP SANs are never consulted.
# "auto": an IP literal is matched against IP SANs (Python's ssl, curl, browsers).
NameCheck = Literal["checkHost", "auto"]
Severity = Literal["error", "warning"]

_MAX_BUNDLE: Final = 10 * 1024 * 1024
_OPENSSL_TIMEOUT: Final = 30.0

_EKU_NAMES: Final[Mapping[x509.ObjectIdentifier, str]] = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


# --------------------------------------------------------------------------- describe


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


# ----------------------------------------------------------------------- fingerprints


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


# ---------------------------------------------------------------------------- parsing

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
    OpenSSL does when it reads a CAfile. Anything unusable raises VerifyError.
    """
    if len(data) > _MAX_BUNDLE:
        raise VerifyError(f"certificate bundle is too large ({len(data)} bytes)")
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) in _CERT_LABELS]
    if len(_CERT_BEGIN.findall(data)) != len(blocks):
        raise VerifyError("certificate bundle has a BEGIN CERTIFICATE line without its END line")
    if not blocks:
        raise VerifyError("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
    return [_load_block(block, number) for number, block in enumerate(blocks, start=1)]


def _load_block(block: bytes, number: int) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(block)
        # cryptography parses names, extensions and keys lazily: touch what
        # describe() needs so a broken one fails here, with the block number.
        _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key())
    except _PARSE_ERRORS as err:
        raise VerifyError(f"certificate {number} in the bundle is not valid: {err}") from None
    return cert


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
        raise VerifyError("no PEM public key found (expected -----BEGIN PUBLIC KEY-----)")
    try:
        key = serialization.load_pem_public_key(blocks[0])
    except _PARSE_ERRORS as err:
        raise VerifyError(f"public key is not valid: {err}") from None
    if not isinstance(key, _CERT_KEY_CLASSES):
        raise VerifyError(f"unsupported public key type {type(key).__name__}")
    return key


def key_matches(cert: x509.Certificate, public_key_pem: bytes) -> bool:
    """Does the appliance's key (public half, PEM) belong to this certificate?"""
    return _spki_der(cert.public_key()) == _spki_der(parse_public_key_pem(public_key_pem))


# ----------------------------------------------------------------------------- chains


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Is ``cert`` signed by ``issuer``'s key (names matching)?"""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except _PARSE_ERRORS:
        # cryptography 50 (measured) refuses SHA-1 here ("Unsupported signature
        # algorithm"); the chain still has to be ordered, so check the raw signature.
        return _raw_signature_ok(cert, issuer.public_key())
    return True


def _raw_signature_ok(cert: x509.Certificate, key: CertificatePublicKeyTypes) -> bool:
    try:
        algorithm = cert.signature_hash_algorithm
        params = cert.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)  # type: ignore[arg-type]
        else:
            return False
    except (InvalidSignature, *_PARSE_ERRORS):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the signature verifies with the certificate's own key."""
    return issued_by(cert, cert)


@dataclass(frozen=True)
class OrderedChain:
    """A chain sorted leaf → intermediates → root, and what was wrong with the input."""

    certs: tuple[x509.Certificate, ...]
    reordered: bool
    missing_issuer: str | None
    unused: tuple[x509.Certificate, ...] = ()

    @property
    def complete(self) -> bool:
        """Ends in a self-signed certificate."""
        return self.missing_issuer is None

    @property
    def problem(self) -> str | None:
        if self.missing_issuer is None:
            return None
        child = self.certs[-1].subject.rfc4514_string()
        return f"no certificate in the chain is the issuer '{self.missing_issuer}' of '{child}'"


def order_chain(leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> OrderedChain:
    """Follow issuers from ``leaf`` through ``others`` (by name and signature)."""
    pool = _unique(c for c in others if c != leaf)
    chain = [leaf]
    while not is_self_signed(chain[-1]):
        parent = next((c for c in pool if c not in chain and issued_by(chain[-1], c)), None)
        if parent is None:
            break
        chain.append(parent)
    top = chain[-1]
    missing = None if is_self_signed(top) else top.issuer.rfc4514_string()
    given = [c for c in _unique(others) if c in chain]
    return OrderedChain(
        certs=tuple(chain),
        reordered=given != chain[1:],
        missing_issuer=missing,
        unused=tuple(c for c in pool if c not in chain),
    )


def _unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: list[x509.Certificate] = []
    for cert in certs:
        if cert not in seen:  # Certificate equality is DER equality
            seen.append(cert)
    return seen


# ------------------------------------------------------------- verdict 1: the pool


@dataclass(frozen=True)
class Verdict:
    """Would the pool's stunnel accept the served chain? ``reason`` is OpenSSL's text."""

    ok: bool
    reason: str
    code: int | None = None  # X509_V_ERR_* number when OpenSSL gave one
    depth: int | None = None  # 0 = the leaf

    def __str__(self) -> str:
        if self.ok:
            return "accepted"
        where = f" (at depth {self.depth})" if self.depth is not None else ""
        return f"refused: {self.reason}{where}"


# stunnel's own words when a check fails outside OpenSSL's verify.
NO_TRUST_REASON: Final = "no trusted certificates found (the pool's CA bundle is empty)"
NOT_LOCAL_REASON: Final = (
    "certificate not found in local repository (xapi before 24.40 verifies the peer: "
    "the WLB certificate itself must be in the pool's bundle)"
)


@dataclass(frozen=True)
class _Check:
    name: str
    at: dt.datetime | None
    name_check: NameCheck
    auth_level: int | None


def pool_accepts(
    chain_served: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    name: str,
    *,
    mode: Mode,
    at: dt.datetime | None = None,
    name_check: NameCheck = "checkHost",
    auth_level: int | None = None,
) -> Verdict:
    """The pool's verdict on what WLB serves, from ``openssl verify`` run locally.

    ``chain_served``: leaf first, then whatever else the appliance sends.
    ``trust``: the pool's bundle (xapi-stunnel-ca-bundle.pem). ``name``: the host part
    of wlb-url. ``mode``: ``current`` (xapi >= 24.40, verifyChain: a chain to any
    anchor) or ``legacy`` (verifyPeer: the leaf itself must be in the bundle).

    As a TLS client, libssl checks the ``sslserver`` purpose (EKU/keyUsage), so this
    does too - plain ``openssl verify`` would not. ``auth_level`` models the pool's
    OpenSSL security level (key sizes, SHA-1 signatures); None skips it, like
    ``openssl verify`` and OpenSSL before 1.1.0.
    """
    if not chain_served:
        raise VerifyError("the appliance served no certificate")
    if mode not in ("current", "legacy"):
        raise ValueError(f"unknown verification mode {mode!r}")
    if not trust:
        return Verdict(ok=False, reason=NO_TRUST_REASON)
    check = _Check(name=name, at=at, name_check=name_check, auth_level=auth_level)
    leaf = chain_served[0]
    if mode == "current":
        return _openssl_verify(leaf, list(chain_served[1:]), list(trust), check, partial=False)
    return _legacy_verdict(leaf, trust, check)


def _legacy_verdict(
    leaf: x509.Certificate, trust: Sequence[x509.Certificate], check: _Check
) -> Verdict:
    # stunnel verifyPeer without verifyChain rejects at depth 0 only (issuer errors
    # there and all errors above are ignored); then checkHost; then the leaf must
    # match an installed certificate by subject and public key (cert_check_local).
    # The leaf as the only partial-chain anchor gives OpenSSL's depth-0 checks.
    verdict = _openssl_verify(leaf, [], [leaf], check, partial=True)
    if verdict.ok and is_self_signed(leaf) and leaf not in trust:
        # A self-signed leaf is its own issuer: OpenSSL looks it up in the CAfile and, not
        # finding these very bytes, refuses at depth 0 (measured with stunnel 5.68), even
        # when a certificate with the same name and key is installed.
        return Verdict(ok=False, reason="self-signed certificate", code=18, depth=0)
    if verdict.ok and not locally_installed(leaf, trust):
        return Verdict(ok=False, reason=NOT_LOCAL_REASON)
    return verdict


def locally_installed(leaf: x509.Certificate, trust: Iterable[x509.Certificate]) -> bool:
    """stunnel's verifyPeer test: a trusted certificate with the same subject and key."""
    spki = _spki_der(leaf.public_key())
    return any(c.subject == leaf.subject and _spki_der(c.public_key()) == spki for c in trust)


_ERROR_LINE = re.compile(r"^error (\d+) at (\d+) depth lookup: (.+)$", re.MULTILINE)


def _openssl_verify(
    leaf: x509.Certificate,
    untrusted: list[x509.Certificate],
    anchors: list[x509.Certificate],
    check: _Check,
    *,
    partial: bool,
) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="wlbplan-verify-") as tmp:
        folder = Path(tmp)
        argv = [_openssl(), "verify", *_verify_options(check, partial)]
        argv += ["-CAfile", _write(folder / "trust.pem", anchors)]
        if untrusted:
            argv += ["-untrusted", _write(folder / "untrusted.pem", untrusted)]
        argv.append(_write(folder / "leaf.pem", [leaf]))
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_OPENSSL_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise VerifyError(f"could not run openssl verify: {err}") from None
    return _verdict_from(done.returncode, done.stdout + done.stderr)


def _verify_options(check: _Check, partial: bool) -> list[str]:
    # No default CA path/store: only the pool's bundle may count as trust, as in
    # stunnel's CAfile= (SSL_CTX_load_verify_locations never adds the system store).
    options = ["-no-CApath", "-no-CAstore", "-purpose", "sslserver"]
    options += _name_option(check.name, check.name_check)
    if partial:
        options.append("-partial_chain")
    if check.at is not None:
        options += ["-attime", str(int(_when(check.at).timestamp()))]
    if check.auth_level is not None:
        options += ["-auth_level", str(check.auth_level)]
    return options


def _name_option(name: str, name_check: NameCheck) -> list[str]:
    address = _ip_or_none(name)
    if name_check == "auto" and address is not None:
        return ["-verify_ip", str(address)]
    return ["-verify_hostname", name]


def _verdict_from(returncode: int, output: str) -> Verdict:
    if returncode == 0:
        return Verdict(ok=True, reason="ok")
    match = _ERROR_LINE.search(output)
    if match is None:
        lines = [line for line in output.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {returncode}"
        return Verdict(ok=False, reason=f"openssl could not verify: {last}")
    return Verdict(
        ok=False, reason=match.group(3).strip(), code=int(match.group(1)), depth=int(match.group(2))
    )


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise VerifyError("openssl is not installed; it is needed to judge what the pool accepts")
    return path


def _write(path: Path, certs: Iterable[x509.Certificate]) -> str:
    path.write_bytes(to_pem(certs))
    return str(path)


# --------------------------------------------------------- verdict 2: modern policy


@dataclass(frozen=True)
class PolicyFinding:
    rule_id: str
    severity: Severity
    message: str
    hint: str
    subject: str | None = None  # RFC 4514 subject of the certificate concerned


def modern_policy_findings(
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    name: str,
    at: dt.datetime | None = None,
) -> list[PolicyFinding]:
    """Warnings from cryptography's verifier; [] when it accepts the chain."""
    if not chain:
        raise VerifyError("no certificate to check")
    message = _modern_rejection(chain, trust, name, _when(at))
    if message is None:
        return []
    return [_explain_modern(chain, trust, message)]


def _modern_rejection(
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    name: str,
    when: dt.datetime,
) -> str | None:
    if not trust:
        return "no trust anchors to verify against"
    try:
        verifier = (
            PolicyBuilder().store(Store(list(trust))).time(when).build_server_verifier(_subject(name))
        )
        verifier.verify(chain[0], list(chain[1:]))
    except VerificationError as err:
        return str(err)
    except ValueError as err:  # e.g. a name the verifier cannot express
        return f"{name!r}: {err}"
    return None


def _subject(name: str) -> x509.DNSName | x509.IPAddress:
    address = _ip_or_none(name)
    return x509.IPAddress(address) if address is not None else x509.DNSName(name)


def _explain_modern(
    chain: Sequence[x509.Certificate], trust: Sequence[x509.Certificate], message: str
) -> PolicyFinding:
    leaf = chain[0]
    subject = leaf.subject.rfc4514_string()
    # The library appends "(encountered processing <Certificate(...)>)": noise in a plan.
    said = "cryptography's verifier: " + re.sub(r"\s*\(encountered processing <.*$", "", message)
    if "has no subjectAltName" in message and _san(leaf) is None:
        return PolicyFinding(
            "WLB-CERT-NO-SAN", "warning",
            f"the certificate has no subjectAltName; the pool accepts it through OpenSSL's "
            f"CN fallback, modern clients do not ({said})",
            "reissue it with the FQDN as a DNS subjectAltName (keep it as the CN too), "
            "e.g. openssl req -addext subjectAltName=DNS:<fqdn>",
            subject,
        )
    if "cA must not be asserted in an EE certificate" in message and is_self_signed(leaf):
        return PolicyFinding(
            "WLB-CERT-SELF-SIGNED-CA", "warning",
            f"the self-signed certificate asserts CA:TRUE (openssl req -x509's default); "
            f"the pool trusts it as an anchor, modern clients refuse it as a server "
            f"certificate ({said})",
            "regenerate it with -addext basicConstraints=critical,CA:FALSE, "
            "or use a CA-signed certificate",
            subject,
        )
    if "2.5.29.15" in message and _ca_without_key_usage(chain, trust):
        return PolicyFinding(
            "WLB-CHAIN-CA-NO-KEY-USAGE", "warning",
            f"a CA certificate has no keyUsage extension (openssl's default v3_ca "
            f"section leaves it out); OpenSSL accepts that, RFC 5280 does not ({said})",
            "reissue the CA with keyUsage=critical,keyCertSign,cRLSign",
            _ca_without_key_usage(chain, trust),
        )
    return PolicyFinding(
        "WLB-CHAIN-MODERN-REJECT", "warning",
        f"a strict RFC 5280 verifier rejects this chain ({said})",
        "fix what the message names; the pool's own verdict is reported separately",
        subject,
    )


def _ca_without_key_usage(
    chain: Sequence[x509.Certificate], trust: Sequence[x509.Certificate]
) -> str | None:
    for cert in [*chain[1:], *trust]:
        if is_ca(cert) and not _has_extension(cert, x509.KeyUsage):
            return cert.subject.rfc4514_string()
    return None


def _has_extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bool:
    try:
        cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return False
    return True


# ------------------------------------------------------------------- policy numbers


@dataclass(frozen=True)
class _Policy:
    min_days_left: int
    min_rsa_bits: int
    forbid_sha1: bool
    when: dt.datetime


def policy_findings(
    chain: Sequence[x509.Certificate],
    *,
    min_days_left: int,
    min_rsa_bits: int,
    forbid_sha1: bool,
    at: dt.datetime | None = None,
) -> list[PolicyFinding]:
    """Findings for an ordered chain (leaf first) against the spec's policy numbers."""
    policy = _Policy(min_days_left, min_rsa_bits, forbid_sha1, _when(at))
    findings: list[PolicyFinding] = []
    for position, cert in enumerate(chain):
        info = describe(cert)
        role = _role(position, len(chain))
        findings += _validity(info, policy)
        findings += _key(info, policy, role)
        findings += _signature(info, policy)
        findings += _ca_flag(info, role)
        findings += _purpose(info)
    return findings


Role = Literal["leaf", "intermediate", "root"]


def _role(position: int, length: int) -> Role:
    if position == 0:
        return "leaf"
    return "root" if position == length - 1 else "intermediate"


def _finding(
    rule: str, severity: Severity, info: CertInfo, message: str, hint: str
) -> PolicyFinding:
    return PolicyFinding(rule, severity, f"{info.subject}: {message}", hint, info.subject)


def _validity(info: CertInfo, policy: _Policy) -> list[PolicyFinding]:
    if policy.when > info.not_after:
        message = f"expired on {_iso(info.not_after)}"
        return [_finding("WLB-CERT-EXPIRED", "error", info, message, "replace it")]
    if policy.when < info.not_before:
        message = f"not valid before {_iso(info.not_before)}"
        hint = "check the clocks, or wait until it becomes valid"
        return [_finding("WLB-CERT-NOT-YET-VALID", "error", info, message, hint)]
    days = info.days_left(policy.when)
    if days < policy.min_days_left:
        message = (
            f"expires in {days} days ({_iso(info.not_after)}); "
            f"the policy wants at least {policy.min_days_left}"
        )
        return [_finding("WLB-CERT-EXPIRING", "warning", info, message, "renew it")]
    return []


def _key(info: CertInfo, policy: _Policy, role: Role) -> list[PolicyFinding]:
    if info.key_type == "rsa" and info.key_bits < policy.min_rsa_bits:
        message = f"RSA key of {info.key_bits} bits; the policy wants {policy.min_rsa_bits}"
        hint = f"reissue it with an RSA key of at least {policy.min_rsa_bits} bits"
        return [_finding("WLB-CERT-RSA-WEAK", "warning", info, message, hint)]
    if role == "leaf" and info.key_type != "rsa":
        # xapi's stunnel client offers only ECDHE-RSA-AES*-GCM suites (Constants.
        # good_ciphersuites), so a non-RSA server key fails the handshake.
        message = f"{info.key_type} key; the pool's TLS client offers ECDHE-RSA suites only"
        hint = "reissue the WLB certificate with an RSA key"
        return [_finding("WLB-CERT-KEY-NOT-RSA", "error", info, message, hint)]
    return []


_WEAK_HASHES: Final = frozenset({"sha1", "md5"})


def _signature(info: CertInfo, policy: _Policy) -> list[PolicyFinding]:
    # A self-signed certificate is trusted by presence; its own signature is never
    # checked, so SHA-1 there weakens nothing.
    weak = info.signature_hash in _WEAK_HASHES
    if not policy.forbid_sha1 or info.is_self_signed or not weak:
        return []
    message = f"signed with {info.signature_hash}"
    hint = "have it reissued with a SHA-256 signature"
    return [_finding("WLB-CERT-SHA1-SIGNATURE", "warning", info, message, hint)]


def _ca_flag(info: CertInfo, role: Role) -> list[PolicyFinding]:
    if role == "leaf" or info.is_ca:
        return []
    rule = "WLB-CHAIN-ROOT-NOT-CA" if role == "root" else "WLB-CHAIN-INTERMEDIATE-NOT-CA"
    message = f"the {role} does not assert CA:TRUE"
    return [_finding(rule, "warning", info, message, "reissue it with CA:TRUE")]


def _purpose(info: CertInfo) -> list[PolicyFinding]:
    # OpenSSL's sslserver purpose (checked by every TLS client) wants serverAuth in
    # any EKU that is present, on the leaf and on its issuers.
    if info.eku is None or "serverAuth" in info.eku:
        return []
    message = (
        f"extendedKeyUsage is {', '.join(info.eku)} without serverAuth; "
        "TLS clients refuse it (unsuitable certificate purpose)"
    )
    hint = "reissue it with extendedKeyUsage=serverAuth (or without extendedKeyUsage)"
    return [_finding("WLB-CERT-EKU-NO-SERVERAUTH", "error", info, message, hint)]


# ---------------------------------------------------------------------------- helpers


def _when(at: dt.datetime | None) -> dt.datetime:
    """``at`` in UTC; now when None; a naive datetime is taken to be UTC."""
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ip_or_none(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None
