"""The pool's trusted CA certificates as the core judges them: by fingerprint, with their
content where it is known.

Over SSH wlbplan reads each certificate from the coordinator's trust store. XenAPI gives
no certificate, only its fingerprint (Certificate records). A certificate known by
fingerprint alone is matched with the certificates wlbplan holds from elsewhere: what WLB
serves, the appliance's file, the spec's anchors. Those that match none stay *unseen*: the
gate and audit leave them out of the pool's bundle. Another CA can only add trust, so
leaving one out can make a verdict stricter, never looser: the pool may accept what
wlbplan refuses, never the reverse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from wlbplan import certs
from wlbplan.core.desired import managed
from wlbplan.errors import VerifyError
from wlbplan.model.observed import Observed, TrustedCert


@dataclass(frozen=True)
class Resolved:
    item: TrustedCert
    cert: x509.Certificate | None
    """The certificate itself, when its content is known (read, or matched)."""

    @property
    def fingerprint(self) -> str | None:
        return certs.fingerprint(self.cert) if self.cert is not None else self.item.fingerprint


def _first(pem: str) -> x509.Certificate | None:
    try:
        found = certs.parse_pem_bundle(pem.encode())
    except VerifyError:
        return None
    return found[0] if found else None


def known_elsewhere(observed: Observed, *more: Iterable[str]) -> dict[str, x509.Certificate]:
    """Certificates wlbplan holds besides the pool's word, by fingerprint: what WLB serves,
    the appliance's file, and ``more`` (the spec's anchors)."""
    pems = [*observed.appliance.served.chain, *observed.appliance.cert.chain]
    for group in more:
        pems.extend(group)
    found = {}
    for pem in pems:
        cert = _first(pem)
        if cert is not None:
            found[certs.fingerprint(cert)] = cert
    return found


def resolve(observed: Observed, *more: Iterable[str]) -> tuple[Resolved, ...]:
    """Each trusted certificate with its content: read (``pem``), or matched by the
    fingerprint the pool reports; None when neither."""
    elsewhere: dict[str, x509.Certificate] | None = None
    resolved = []
    for item in observed.pool.trusted:
        cert = _first(item.pem) if item.pem else None
        if cert is None and (item.fingerprint or item.by_name):
            if elsewhere is None:
                elsewhere = known_elsewhere(observed, *more)
            cert = elsewhere.get(item.fingerprint) if item.fingerprint else \
                _by_own_name(item.name, elsewhere)
        resolved.append(Resolved(item, cert))
    return tuple(resolved)


def _by_own_name(name: str, known: dict[str, x509.Certificate]) -> x509.Certificate | None:
    """A certificate known by name alone, when the name is one wlbplan gives: the one it
    holds whose fingerprint the name carries (``desired.Anchor.install_name``)."""
    short = short_of(name) if managed(name) else None
    found = [c for fp, c in known.items() if fp.replace(":", "")[:16].lower() == short]
    return found[0] if len(found) == 1 else None


def fingerprint_of(item: TrustedCert) -> str | None:
    """SHA-256 of a trusted certificate: of its content, else as the pool reports it."""
    cert = _first(item.pem) if item.pem else None
    return certs.fingerprint(cert) if cert is not None else item.fingerprint


def unseen(resolved: Iterable[Resolved]) -> tuple[str, ...]:
    """Names of the certificates known by fingerprint or name only, matched with nothing."""
    return tuple(r.item.name for r in resolved
                 if r.cert is None and (r.item.fingerprint or r.item.by_name))


def short_of(name: str) -> str | None:
    """The 16 hex digits of the fingerprint in a name wlbplan gave (``desired.Anchor``)."""
    tail = name.removesuffix(".pem").rpartition("-")[2]
    return tail if len(tail) == 16 else None


def unseen_note(names: tuple[str, ...]) -> str:
    """What a verdict relies on when some trusted certificates could not be seen."""
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"the pool reports {len(names)} CA certificate(s) by fingerprint or name only "
            f"({listed}): "
            "their content is not available to wlbplan, so the check of what the pool will "
            "accept counts only the certificates wlbplan installs or could match by "
            "fingerprint; if one of these anchors WLB's certificate, the pool may accept "
            "what wlbplan refuses, never the reverse")
