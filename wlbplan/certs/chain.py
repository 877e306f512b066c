"""Ordering a served chain and telling who issued whom, by signature."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from wlbplan.certs.parse import _PARSE_ERRORS


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
