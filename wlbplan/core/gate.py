"""Before a plan is offered: will the pool accept WLB once it is applied?

That verdict is OpenSSL's (``certs.pool_accepts``: the pool verifies WLB through
stunnel), and a "no" refuses the plan. Modern policy (cryptography's RFC 5280 verifier)
and the spec's ``policy`` thresholds only add warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from wlbplan import certs
from wlbplan.core import trusted
from wlbplan.core.desired import Desired, managed
from wlbplan.errors import VerifyError, WlbplanError
from wlbplan.limits import PEM, read_file
from wlbplan.model.observed import Observed
from wlbplan.model.spec import Policy, Target, is_ip_literal

# Findings about the served leaf that no TLS handshake with xapi survives.
NO_HANDSHAKE = frozenset({"WLB-CERT-KEY-NOT-RSA"})


@dataclass(frozen=True)
class GateResult:
    refusal: str | None
    warnings: tuple[str, ...]


def _load(pem: str) -> x509.Certificate:
    return certs.parse_pem_bundle(pem.encode())[0]


def _anchors(desired: Desired) -> list[str]:
    return [a.pem for a in desired.trust]


def trust_after(desired: Desired, observed: Observed) -> list[x509.Certificate]:
    """The pool's bundle once the plan is applied: others' certificates stay, wlbplan's
    own are what the spec needs. A certificate known by fingerprint only and matched with
    nothing wlbplan holds is left out (``trusted``: never a looser verdict)."""
    needed = {a.fingerprint for a in desired.trust}
    kept = [r.cert for r in trusted.resolve(observed, desired.chain, _anchors(desired))
            if r.cert is not None and (not managed(r.item.name) or r.fingerprint in needed)]
    return kept + [_load(a.pem) for a in desired.trust]


def _unseen_note(desired: Desired, observed: Observed) -> tuple[str, ...]:
    names = trusted.unseen(trusted.resolve(observed, desired.chain, _anchors(desired)))
    others = tuple(n for n in names if not managed(n))
    return (trusted.unseen_note(others),) if others else ()


def check(target: Target, observed: Observed, desired: Desired, policy: Policy) -> GateResult:
    if desired.pending is not None and desired.pending.key_type != "rsa":
        return GateResult(
            f"{target.name}: certificate.request.key.type is {desired.pending.key_type}, but "
            "xapi's stunnel client offers ECDHE-RSA cipher suites only: the pool could not "
            "connect to a WLB with a non-RSA key, even with verification off. Use "
            "key: {type: rsa, bits: 3072}.", ())
    if desired.stage in ("request", "order") or not desired.chain:
        return GateResult(None, ())
    chain = [_load(p) for p in desired.chain]
    trust = trust_after(desired, observed)
    host = desired.wlb_host or observed.pool.wlb_host or target.wlb.address
    findings = certs.policy_findings(
        chain, min_days_left=policy.min_days_left, min_rsa_bits=policy.min_rsa_bits,
        forbid_sha1=policy.forbid_sha1)
    unusable = [f for f in findings if f.rule_id in NO_HANDSHAKE]
    if unusable:
        # Not a policy choice: the pool cannot even finish a TLS handshake with this key,
        # verification on or off, so no plan that keeps it can be offered.
        problems = "; ".join(f"{f.rule_id}: {f.message}" for f in unusable)
        return GateResult(
            f"{target.name}: WLB would serve a certificate the pool cannot connect to "
            f"({problems}): xapi's stunnel client offers ECDHE-RSA cipher suites only. "
            f"{unusable[0].hint}.", ())
    if desired.stage == "install" and findings:
        # A certificate wlbplan is about to install must meet the policy; one already on
        # the appliance (self-signed) is only warned about, as audit does.
        problems = "; ".join(f"{_file_of(target, f.subject) or 'the issued chain'}: "
                             f"{f.message}" for f in findings)
        return GateResult(f"{target.name}: {problems}", ())
    warnings = [_say(f) for f in findings]
    warnings += [_say(f) for f in certs.modern_policy_findings(chain, trust, host)]
    if not desired.verify:
        return GateResult(None, tuple(warnings))
    warnings += _unseen_note(desired, observed)
    try:
        verdict = certs.pool_accepts(chain, trust, host, mode=observed.pool.verify_mode)
    except VerifyError as err:
        return GateResult(str(err), tuple(warnings))
    if verdict.ok:
        return GateResult(None, tuple(warnings))
    signed = target.certificate.signed or "the issued chain"
    source = f" ({signed})" if desired.stage == "install" else ""
    return GateResult(
        f"{target.name}{source}: once this plan is applied the pool would refuse WLB at {host} "
        f"({verdict}); turning wlb-verify-cert on would cut the pool off from WLB. "
        + advice(verdict.reason, host),
        tuple(warnings),
    )


def _file_of(target: Target, subject: str | None) -> Path | None:
    """Which of the spec's certificate files holds the certificate a finding is about."""
    spec = target.certificate
    files = [p for p in (spec.signed, *spec.intermediates, spec.root) if p is not None]
    for path in files:
        try:
            found = certs.parse_pem_bundle(read_file(path, PEM))
        except (OSError, WlbplanError):
            continue
        if any(c.subject.rfc4514_string() == subject for c in found):
            return path
    return spec.signed


def _say(finding: certs.PolicyFinding) -> str:
    return f"{finding.severity}: {finding.rule_id}: {finding.message} — {finding.hint}"


def advice(reason: str, host: str) -> str:
    lowered = reason.lower()
    if is_ip_literal(host):
        return (f"The pool reaches WLB by IP address ({host}), and xapi's name check "
                "(stunnel checkHost) never matches an IP against IP subjectAltNames: "
                "reconnect the pool to WLB by its FQDN (pool-initialize-wlb with "
                "wlb_url=<fqdn>:<port>), whose name the certificate carries.")
    if "hostname" in lowered or "subject" in lowered:
        return (f"The certificate does not name {host}: the pool must reach WLB by the name "
                "in the certificate: connect it by host name, not by IP address.")
    if "expired" in lowered or "not yet valid" in lowered:
        return "Renew the appliance's certificate first."
    return "Fix the certificate or the trust before turning verification on."
