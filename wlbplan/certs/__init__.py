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

The package: ``parse`` (PEM, keys, fingerprints), ``describe``, ``chain`` (ordering,
issuers), ``openssl`` (verdict 1), ``modern`` (verdict 2), ``policy`` (the spec's numbers).
"""

from __future__ import annotations

from wlbplan.certs.chain import OrderedChain, is_self_signed, issued_by, order_chain
from wlbplan.certs.common import Mode, NameCheck, Severity
from wlbplan.certs.describe import CertInfo, describe, dns_names, ip_addresses, is_ca
from wlbplan.certs.modern import modern_policy_findings
from wlbplan.certs.openssl import (
    NO_TRUST_REASON,
    NOT_LOCAL_REASON,
    Verdict,
    locally_installed,
    pool_accepts,
)
from wlbplan.certs.parse import (
    fingerprint,
    format_fingerprint,
    key_description,
    key_matches,
    parse_pem_bundle,
    parse_public_key_pem,
    public_key_fingerprint,
    same_key,
    to_pem,
)
from wlbplan.certs.policy import PolicyFinding, Role, policy_findings

__all__ = [
    "NOT_LOCAL_REASON",
    "NO_TRUST_REASON",
    "CertInfo",
    "Mode",
    "NameCheck",
    "OrderedChain",
    "PolicyFinding",
    "Role",
    "Severity",
    "Verdict",
    "describe",
    "dns_names",
    "fingerprint",
    "format_fingerprint",
    "ip_addresses",
    "is_ca",
    "is_self_signed",
    "issued_by",
    "key_description",
    "key_matches",
    "locally_installed",
    "modern_policy_findings",
    "order_chain",
    "parse_pem_bundle",
    "parse_public_key_pem",
    "policy_findings",
    "pool_accepts",
    "public_key_fingerprint",
    "same_key",
    "to_pem",
]
