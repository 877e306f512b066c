"""When an ACME target needs a new certificate: none is served for the spec's names, the
served one expires within ``renew_before_days``, or its names or key no longer match the
spec. Pure: the served chain, the spec, the CA's root and a clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from wlbplan import certs
from wlbplan.errors import VerifyError
from wlbplan.model.observed import Observed
from wlbplan.model.spec import CertificateRequest, Target


@dataclass(frozen=True)
class Renewal:
    due: str | None
    """Why a new certificate must be ordered now, in a reviewer's words; None: it need not."""
    next_due: dt.datetime | None = None
    """When the served certificate becomes due for renewal (notAfter less the margin)."""


def acme_names(request: CertificateRequest) -> tuple[str, ...]:
    """The CSR's subjectAltName for an ACME order: the CN first, then alt_names, as
    ``DNS:`` entries (a CA issues for exactly the names a CSR lists there)."""
    names = [f"DNS:{request.common_name}", *request.alt_names]
    return tuple(dict.fromkeys(names))


def renewal(target: Target, observed: Observed, root: x509.Certificate,
            now: dt.datetime) -> Renewal:
    acme, request = target.certificate.acme, target.certificate.request
    assert acme is not None  # the spec loader requires both for source: acme
    assert request is not None
    app = observed.appliance
    try:
        leaf, *rest = certs.parse_pem_bundle("".join(app.cert.chain).encode())
    except (VerifyError, ValueError):
        return Renewal(f"issue: {app.cert.path} holds no certificate "
                       f"({app.cert.error or 'missing'})")
    problem = _foreign(leaf, rest, root, acme.directory) or _mismatch(leaf, request, observed)
    if problem:
        return Renewal(problem)
    margin = dt.timedelta(days=acme.renew_before_days)
    expires = leaf.not_valid_after_utc
    next_due = expires - margin
    if now < next_due:
        return Renewal(None, next_due)
    days = (expires - now).days
    when = f"expires {expires:%Y-%m-%d}, in {days} day{'s' if days != 1 else ''}" \
        if expires > now else f"expired {expires:%Y-%m-%d}, {-days} day(s) ago"
    return Renewal(f"renew: {when} (renew_before_days: {acme.renew_before_days})", next_due)


def _foreign(leaf: x509.Certificate, rest: list[x509.Certificate], root: x509.Certificate,
             directory: str) -> str | None:
    ordered = certs.order_chain(leaf, [*rest, root])
    if ordered.complete and ordered.certs[-1] == root:
        return None
    subject = leaf.subject.rfc4514_string() or "no subject"
    if certs.is_self_signed(leaf):
        return f"issue: the appliance serves a self-signed certificate ({subject}), not one " \
               f"from the ACME CA at {directory}"
    return f"issue: the appliance serves a certificate issued by " \
           f"{leaf.issuer.rfc4514_string()}, not by the ACME CA at {directory}"


def _mismatch(leaf: x509.Certificate, request: CertificateRequest,
              observed: Observed) -> str | None:
    info = certs.describe(leaf)
    served = sorted(f"DNS:{n}" for n in info.dns_names)
    wanted = sorted(acme_names(request))
    if [n.lower() for n in served] != [n.lower() for n in wanted]:
        return f"names: the certificate carries {', '.join(served) or 'no DNS names'}; the " \
               f"spec asks for {', '.join(wanted)}"
    bits = info.key_bits
    if (info.key_type, bits) != (request.key.type, request.key.bits):
        return f"key: the certificate is for an {info.key_type.upper()} {bits} key; the " \
               f"spec asks for {request.key.type.upper()} {request.key.bits}"
    live = observed.appliance.key.public_key
    if live and not certs.key_matches(leaf, live.encode()):
        return f"key: {observed.appliance.key.path} does not match the certificate"
    return None
