"""What must be true for one target, from its spec and what was observed.

Self-signed: the pool trusts the certificate the appliance serves (by fingerprint) and
wlb-verify-cert is as ``verify`` says. CA-signed with ``signed`` present: the appliance
serves ``signed + intermediates + root`` and the pool trusts the root and intermediates
(the leaf too when xapi is older than 24.40). CA-signed without ``signed``: the request
stage (a key and CSR made on the appliance).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from wlbplan import certs
from wlbplan.errors import VerifyError
from wlbplan.limits import PEM, read_file
from wlbplan.model.observed import Observed
from wlbplan.model.spec import CertificateRequest, Target, is_ip_literal, url_host

PREFIX = "wlbplan-"
Stage = Literal["trust", "request", "install", "order"]
Role = Literal["wlb", "leaf", "intermediate", "root"]


@dataclass(frozen=True)
class Anchor:
    """A certificate the pool must trust."""

    role: Role
    fingerprint: str
    pem: str

    @property
    def install_name(self) -> str:
        """The name wlbplan installs it under: its prefix, role and fingerprint."""
        short = self.fingerprint.replace(":", "")[:16].lower()
        return f"{PREFIX}{self.role}-{short}.pem"


@dataclass(frozen=True)
class Pending:
    """Request stage: the pending key and CSR the appliance must hold (no key material)."""

    key_type: str
    key_bits: int
    subject: str
    sans: tuple[str, ...]
    replace: bool = False


@dataclass(frozen=True)
class AcmeOrder:
    """Order stage: a certificate to order from an ACME CA, and why it is due."""

    reason: str
    directory: str
    names: tuple[str, ...]
    root: Anchor
    """The CA's root (``acme.root``): the pool trusts it; the issued chain must end at it."""


@dataclass(frozen=True)
class Desired:
    target: str
    stage: Stage
    chain: tuple[str, ...]
    """PEMs the appliance must serve, leaf first (unchanged for self-signed)."""
    trust: tuple[Anchor, ...]
    verify: bool
    notes: tuple[str, ...] = ()
    pending: Pending | None = None
    key_source: Literal["pending", "live"] = "live"
    """Install stage: which key goes with the new chain (the pending one, or the live one)."""
    wlb_url: str = ""
    """The pool's wlb-url once applied (its host part is what xapi checks the name against)."""
    order: AcmeOrder | None = None
    """Order stage: the ACME order the apply makes before installing what it returns."""

    @property
    def wlb_host(self) -> str:
        return url_host(self.wlb_url)


def managed(name: str) -> bool:
    """Trust wlbplan installed itself, and so may remove; never anyone else's."""
    return name.startswith(PREFIX)


def desired_state(target: Target, observed: Observed, *, replace: bool = False,
                  now: dt.datetime | None = None, issued: tuple[str, ...] = ()) -> Desired:
    """``replace`` makes a new pending key and CSR even if matching ones exist; on a
    CA-signed target that has its certificate, that is a rotation's request stage (on an
    ACME target, an order now). ``now``: the clock an ACME renewal is judged by;
    ``issued``: the chain an ACME order of this apply returned (leaf first)."""
    spec = target.certificate
    if spec.source == "acme":
        return _acme(target, observed, replace, now or dt.datetime.now(dt.UTC), issued)
    if spec.source == "self-signed":
        made = _self_signed(target, observed)
    elif replace or spec.signed is None or (spec.signer is not None and
                                            not spec.signed.exists()):
        return dataclasses.replace(_request(target, observed, replace),
                                   wlb_url=observed.pool.wlb_url)
    else:
        made = _ca_signed(target, observed)
    return _with_url(target, observed, made)


def reaches_by_ip(target: Target, observed: Observed) -> bool:
    """The pool reaches WLB by IP while the spec names it: xapi's name check needs the name."""
    return is_ip_literal(observed.pool.wlb_host) and not target.wlb.address_is_ip


def _with_url(target: Target, observed: Observed, made: Desired) -> Desired:
    if not reaches_by_ip(target, observed):
        return dataclasses.replace(made, wlb_url=observed.pool.wlb_url)
    if target.wlb.credentials is None:
        note = (f"the pool reaches WLB by IP ({observed.pool.wlb_url}); reconnect it by "
                f"name as a manual step: xe pool-initialize-wlb wlb_url={target.wlb.url} "
                "wlb_username=… wlb_password=… xenserver_username=… xenserver_password=… "
                "(or give wlb.credentials in the spec and wlbplan does it)")
        return dataclasses.replace(made, wlb_url=observed.pool.wlb_url,
                                   notes=(*made.notes, note))
    return dataclasses.replace(made, wlb_url=target.wlb.url)


def _request(target: Target, observed: Observed, replace: bool) -> Desired:
    request = target.certificate.request
    assert request is not None  # the spec loader requires it for ca-signed
    pending = Pending(
        key_type=request.key.type,
        key_bits=request.key.bits,
        subject=request_subject(request).rfc4514_string(),
        sans=tuple(sorted(request.alt_names)),
        replace=replace,
    )
    return Desired(target=target.name, stage="request", chain=observed.appliance.cert.chain,
                   trust=(), verify=observed.pool.wlb_verify_cert, pending=pending)


SUBJECT_OIDS = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
                 "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
                 "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "emailAddress": NameOID.EMAIL_ADDRESS}


def request_subject(request: CertificateRequest) -> x509.Name:
    """The subject ``openssl req -subj`` makes from the spec (same order, CN last)."""
    attrs = [x509.NameAttribute(SUBJECT_OIDS[k], v) for k, v in request.subject.items()]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, request.common_name)])


def _self_signed(target: Target, observed: Observed) -> Desired:
    chain = observed.appliance.cert.chain
    if not chain:
        problem = observed.appliance.cert.error or "missing"
        raise VerifyError(
            f"{target.name}: the appliance's certificate {observed.appliance.cert.path} cannot "
            f"be used ({problem}); a self-signed target trusts what the appliance has, so fix "
            "that first"
        )
    leaf = _load(chain[0])
    anchor = Anchor(role="wlb", fingerprint=certs.fingerprint(leaf), pem=chain[0])
    return Desired(target=target.name, stage="trust", chain=chain, trust=(anchor,),
                   verify=target.verify)


def _acme(target: Target, observed: Observed, replace: bool, now: dt.datetime,
          issued: tuple[str, ...]) -> Desired:
    from wlbplan.core.renewal import acme_names, renewal

    acme, request = target.certificate.acme, target.certificate.request
    assert acme is not None  # the spec loader requires both for source: acme
    assert request is not None
    root = _read_all(acme.root, "ACME root")[0]
    if issued:  # the order of this apply returned its chain: install it as ca-signed does
        leaf, *others = certs.parse_pem_bundle("".join(issued).encode())
        made = _chain_desired(target, observed, leaf, others, root, "the issued chain")
        return _with_url(target, observed, made)
    due = "replace: a new key and certificate were asked for (--replace)" if replace else \
        renewal(target, observed, root, now).due
    if due is None:  # what the appliance serves is what the spec asks: keep it trusted
        leaf, *others = certs.parse_pem_bundle("".join(observed.appliance.cert.chain).encode())
        made = _chain_desired(target, observed, leaf, others, root, "the served chain")
        return _with_url(target, observed, made)
    names = tuple(n.removeprefix("DNS:") for n in acme_names(request))
    anchor = Anchor("root", certs.fingerprint(root), _pem(root))
    ordering = dataclasses.replace(
        _request(target, observed, replace), stage="order", trust=(anchor,),
        verify=target.verify, order=AcmeOrder(due, acme.directory, names, anchor))
    assert ordering.pending is not None
    pending = dataclasses.replace(ordering.pending, sans=tuple(sorted(acme_names(request))))
    return _with_url(target, observed, dataclasses.replace(ordering, pending=pending))


def _ca_signed(target: Target, observed: Observed) -> Desired:
    spec = target.certificate
    # The spec loader guarantees both for ca-signed with a signed certificate.
    assert spec.signed is not None
    assert spec.root is not None
    # A "full chain" signed file is common: its first certificate is the leaf, the rest
    # join the intermediates.
    leaf, *bundled = _read_all(spec.signed, "signed")
    given = [c for path in spec.intermediates for c in _read_all(path, "intermediate")]
    root = _read_all(spec.root, "root")[0]
    files = ", ".join(str(p) for p in (spec.signed, *spec.intermediates, spec.root))
    return _chain_desired(target, observed, leaf, [*bundled, *given], root,
                          f"the chain of {spec.signed}", files)


def _chain_desired(target: Target, observed: Observed, leaf: x509.Certificate,
                   others: list[x509.Certificate], root: x509.Certificate, what: str,
                   files: str = "") -> Desired:
    """Serve ``leaf`` up to ``root`` and trust what the pool needs for it (install stage)."""
    spec = target.certificate
    root_file = spec.root if spec.acme is None else spec.acme.root
    ordered = certs.order_chain(leaf, [*others, root])
    if not ordered.complete and files:
        raise VerifyError(f"{target.name}: {ordered.problem} (the chain was built from "
                          f"{files}); add the missing certificate to certificate.intermediates")
    if not ordered.complete:
        raise VerifyError(f"{target.name}: {what}: {ordered.problem}")
    if ordered.certs[-1] != root:
        top = ordered.certs[-1].subject.rfc4514_string()
        raise VerifyError(
            f"{target.name}: {what} ends at '{top}', not at the root given "
            f"in {'acme.root' if spec.acme else 'certificate.root'} ({root_file}: "
            f"'{root.subject.rfc4514_string()}'); set root to the CA that really issued the "
            "chain"
        )
    chain = tuple(_pem(c) for c in ordered.certs)
    trust = [Anchor("root", certs.fingerprint(root), _pem(root))]
    trust += [Anchor("intermediate", certs.fingerprint(c), _pem(c)) for c in ordered.certs[1:-1]]
    if not observed.pool.chain_verification:
        trust.append(Anchor("leaf", certs.fingerprint(leaf), _pem(leaf)))
    notes: tuple[str, ...] = (
        ("intermediates were given out of order; wlbplan serves them leaf → root",)
        if ordered.reordered else ()
    )
    notes += tuple(f"{c.subject.rfc4514_string()} is not part of the chain and is not served"
                   for c in ordered.unused)
    return Desired(target=target.name, stage="install", chain=chain, trust=tuple(trust),
                   verify=target.verify, notes=notes,
                   key_source=_key_source(target, observed, leaf, chain))


def _key_source(target: Target, observed: Observed, leaf: x509.Certificate,
                chain: tuple[str, ...]) -> Literal["pending", "live"]:
    """Which appliance key the signed certificate was issued for, compared by public key."""
    app = observed.appliance
    if app.pending_key and certs.key_matches(leaf, app.pending_key.encode()):
        return "pending"
    if app.key.public_key and certs.key_matches(leaf, app.key.public_key.encode()):
        return "live"
    if app.cert.chain == chain:
        return "live"  # installed already; the key check is inspect's and audit's business
    raise VerifyError(
        f"{target.name}: {target.certificate.signed or 'the issued chain'}: the signed "
        f"certificate was not issued for this appliance: its public key matches neither the "
        f"pending key ({'absent' if not app.pending_key else 'present'}) nor the live key "
        f"{app.key.path}. Send the CSR wlbplan made to the CA, or run plan without "
        "`signed` to make a new key and CSR."
    )


def _read_all(path: Path, what: str) -> list[x509.Certificate]:
    try:
        data = read_file(path, PEM)
    except OSError as err:
        raise VerifyError(f"cannot read the {what} certificate {path}: {err.strerror}") from None
    try:
        return certs.parse_pem_bundle(data)
    except VerifyError as err:
        raise VerifyError(f"{path}: {err}") from None


def _load(pem: str) -> x509.Certificate:
    return certs.parse_pem_bundle(pem.encode())[0]


def _pem(cert: x509.Certificate) -> str:
    return certs.to_pem([cert]).decode()
