"""Verdict 2, "does it meet modern policy?": ``cryptography.x509.verification``
(RFC 5280 / CA/Browser profile). Yields warnings; never refuses on its own."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from wlbplan.certs.chain import is_self_signed
from wlbplan.certs.common import _ip_or_none, _when
from wlbplan.certs.describe import _san, is_ca
from wlbplan.certs.policy import PolicyFinding
from wlbplan.errors import VerifyError


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
    said = "cryptography's verifier: " + re.sub(r"\s*\(encountered processing <.*$", "", message,
                                                flags=re.DOTALL)
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
