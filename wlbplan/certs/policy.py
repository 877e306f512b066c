"""The spec's policy numbers (days left, key sizes, SHA-1) and the findings they yield."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cryptography import x509

from wlbplan.certs.common import Severity, _iso, _when
from wlbplan.certs.describe import CertInfo, describe


@dataclass(frozen=True)
class PolicyFinding:
    rule_id: str
    severity: Severity
    message: str
    hint: str
    subject: str | None = None  # RFC 4514 subject of the certificate concerned




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
