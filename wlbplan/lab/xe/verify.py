"""What stunnel checks of WLB's certificate as xapi configures it (verify.c, v3_utl.c)."""

from __future__ import annotations

import contextlib

from wlbplan.lab.xe.trust import pem_certificates

# Not typing's: importing typing costs every xe call ~10 ms. mypy reads it as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography import x509

# stunnel's verify.c (cert_check) writes `CERT: <reason>`; xapi's stunnel_log_scanner.ml
# reports what follows `CERT: ` as the SSL_VERIFY_ERROR reason.
PRE_VERIFICATION = "Pre-verification error: "
SUBJECT_CHECKS_FAILED = "Subject checks failed"
NOT_LOCAL = "Certificate not found in local repository"
# What a wildcard may stand for in X509_check_host (v3_utl.c): letters, digits, hyphen.
_LDH = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
# check_purpose_ssl_server: an extendedKeyUsage must name serverAuth or server gated crypto.
_SERVER_EKUS = frozenset({"1.3.6.1.5.5.7.3.1", "2.16.840.1.113730.4.1", "1.3.6.1.4.1.311.10.3.3"})


def peer_checks(leaf_der: bytes, bundle: Path, host: str, *, verify_peer: bool) -> str | None:
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

