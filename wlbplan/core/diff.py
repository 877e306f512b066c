"""Desired vs observed, compared with deepdiff and turned at once into wlbplan's Changes.

deepdiff objects never leave this module: callers get typed ``Change`` values whose
``before``/``after`` are plain JSON-able summaries (no key material).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from deepdiff import DeepDiff

from wlbplan import certs
from wlbplan.core.desired import Anchor, Desired, Pending, managed
from wlbplan.core.trusted import fingerprint_of
from wlbplan.model.observed import Observed

Action = Literal["create", "update", "delete"]
CHAIN_SEPARATOR = " > "


@dataclass(frozen=True)
class Change:
    path: str
    action: Action
    before: Any
    after: Any
    reason: str


def _deepdiff(before: dict[str, Any], after: dict[str, Any]) -> Any:
    # threshold_to_diff_deeper=0: always report the keys added or removed, never "this
    # whole dict changed" (deepdiff's default when few keys are shared, e.g. none trusted).
    return DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)


def cert_summary(pem: str) -> dict[str, Any]:
    """The fields a reviewer checks, as plain values."""
    info = certs.describe(certs.parse_pem_bundle(pem.encode())[0])
    key = f"{info.key_type} {info.key_curve or info.key_bits}"
    return {
        "subject": info.subject,
        "sans": [f"DNS:{n}" for n in info.dns_names] + [f"IP:{a}" for a in info.ip_addresses],
        "issuer": info.issuer,
        "serial": info.serial,
        "fingerprint": info.fingerprint_sha256,
        "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": key,
    }


def _fingerprints(chain: tuple[str, ...]) -> str:
    return CHAIN_SEPARATOR.join(certs.fingerprint(certs.parse_pem_bundle(p.encode())[0])
                                for p in chain)


def observed_trust(observed: Observed) -> dict[str, str]:
    """Installed CA certificates by name → fingerprint (of the content, or as the pool
    reports it; ``unreadable`` when neither is known)."""
    return {item.name: fingerprint_of(item) or "unreadable" for item in observed.pool.trusted}


def observed_view(observed: Observed) -> dict[str, Any]:
    """What a plan was made against, compact: enough to say what moved since."""
    served = observed.appliance.served.chain
    return {
        "appliance": {
            "chain": _fingerprints(observed.appliance.cert.chain),
            "served": _fingerprints(served) if served else observed.appliance.served.error,
        },
        "pool": {
            "trust": observed_trust(observed),
            "wlb-url": observed.pool.wlb_url,
            "wlb-verify-cert": observed.pool.wlb_verify_cert,
            "xapi": observed.pool.xapi_version,
        },
    }


def drift(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human lines for what changed between two ``observed_view`` results."""
    lines = []
    for kind, levels in _deepdiff(before, after).items():
        for level in levels:
            where = ".".join(str(p) for p in level.path(output_format="list"))
            if kind == "dictionary_item_added":
                lines.append(f"{where} appeared ({level.t2})")
            elif kind == "dictionary_item_removed":
                lines.append(f"{where} disappeared (was {level.t1})")
            else:
                lines.append(f"{where}: {level.t1} → {level.t2}")
    return sorted(lines)


def pending_view(observed: Observed) -> dict[str, Any]:
    """The pending key and CSR on the appliance, as the fields a request is checked by."""
    app = observed.appliance
    key = certs.parse_public_key_pem(app.pending_key.encode()) if app.pending_key else None
    key_view = None
    if key is not None:
        info = certs.key_description(key)
        key_view = {"type": info[0], "bits": info[1]}
    csr_view = None
    if app.pending_csr:
        csr = x509.load_pem_x509_csr(app.pending_csr.encode())
        csr_view = {
            "subject": csr.subject.rfc4514_string(),
            "sans": sorted(_csr_sans(csr)),
            "matches_key": key is not None and certs.same_key(csr.public_key(), key),
        }
    return {"key": key_view, "csr": csr_view}


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)] + \
        [f"IP:{a}" for a in san.get_values_for_type(x509.IPAddress)]


def _wanted_pending(pending: Pending) -> dict[str, Any]:
    return {
        "key": {"type": pending.key_type, "bits": pending.key_bits},
        "csr": {"subject": pending.subject, "sans": list(pending.sans), "matches_key": True},
    }


def _views(desired: Desired, observed: Observed) -> tuple[dict[str, Any], dict[str, Any]]:
    have = observed_trust(observed)
    # Known by name alone (XenAPI before xapi 1.290): wlbplan's own name for an anchor is
    # its word for that fingerprint; anyone else's stays unknown.
    by_name = {t.name for t in observed.pool.trusted if t.by_name}
    for anchor in desired.trust:
        if anchor.install_name in by_name:
            have[anchor.install_name] = anchor.fingerprint
    needed = {a.fingerprint for a in desired.trust}
    names = {a.install_name for a in desired.trust}
    # A wlbplan entry stays when it is needed (by fingerprint, or by its name, which
    # carries the fingerprint: an unreadable one is not removed and put back). The request
    # stage changes no trust at all: the appliance still serves what the pool trusts.
    keep_all = desired.pending is not None
    want = {name: fp for name, fp in have.items()
            if keep_all or not managed(name) or fp in needed or name in names}
    for anchor in desired.trust:
        if want.get(anchor.install_name) == "unreadable":
            want[anchor.install_name] = anchor.fingerprint  # reinstall what cannot be read
    present = set(want.values())
    for anchor in desired.trust:
        if anchor.fingerprint not in present:
            want[anchor.install_name] = anchor.fingerprint
            present.add(anchor.fingerprint)
    before: dict[str, dict[str, Any]] = {
        "appliance": {"chain": _fingerprints(observed.appliance.cert.chain)},
        "pool": {"trust": have, "wlb-verify-cert": observed.pool.wlb_verify_cert,
                 "wlb-url": observed.pool.wlb_url},
    }
    after: dict[str, dict[str, Any]] = {
        "appliance": {"chain": _fingerprints(desired.chain)},
        "pool": {"trust": want, "wlb-verify-cert": desired.verify,
                 "wlb-url": desired.wlb_url or observed.pool.wlb_url},
    }
    if desired.pending is not None:
        wanted = _wanted_pending(desired.pending)
        seen = pending_view(observed)
        if desired.pending.replace:
            seen = {"key": None, "csr": None}  # --replace: as if there were none
        elif seen["key"] != wanted["key"] and seen["csr"] is not None:
            # A new key makes a new CSR, whatever the old one says.
            seen["csr"] = {**seen["csr"], "matches_key": False}
        before["appliance"].update(seen)
        after["appliance"].update(wanted)
    return before, after


def diff(desired: Desired, observed: Observed) -> tuple[Change, ...]:
    before, after = _views(desired, observed)
    changes: dict[str, Change] = {}
    for kind, levels in _deepdiff(before, after).items():
        for level in levels:
            path = [str(p) for p in level.path(output_format="list")]
            change = _change(kind, path, desired, observed)
            changes.setdefault(change.path, change)  # one change per thing, however deep
    if desired.order is not None:
        changes["appliance.chain"] = _ordered_chain(desired, observed)
    return tuple(sorted(changes.values(), key=_order))


def _ordered_chain(desired: Desired, observed: Observed) -> Change:
    """Order stage: the chain the CA will issue is not known yet; what it will be is."""
    order, pending = desired.order, desired.pending
    assert order is not None  # only called for the order stage
    assert pending is not None
    served = observed.appliance.cert.chain
    after = {"subject": f"(as the CA issues it, for {order.names[0]})",
             "sans": list(pending.sans), "issuer": f"the ACME CA at {order.directory}",
             "key": f"{pending.key_type} {pending.key_bits}"}
    return Change("appliance.chain", "update" if served else "create",
                  [cert_summary(p) for p in served], [after], order.reason)


_ORDER = ("appliance.pending_key", "appliance.csr", "pool.trust+", "appliance.chain",
          "pool.wlb-url", "pool.wlb-verify-cert", "pool.trust-")


def _order(change: Change) -> int:
    head = change.path.split("[", 1)[0]
    if head == "pool.trust":  # creating and repairing first, removing last
        head += "-" if change.action == "delete" else "+"
    return _ORDER.index(head)


def _change(kind: str, path: list[str], desired: Desired, observed: Observed) -> Change:
    where = ".".join(path[:2])
    if where == "pool.trust":
        return _trust_change(kind, path[2], desired, observed)
    if where == "pool.wlb-url":
        return Change("pool.wlb-url", "update", observed.pool.wlb_url, desired.wlb_url,
                      "the pool reaches WLB by IP, and xapi checks the certificate against "
                      "the host part of wlb-url: reconnect it by the name the certificate "
                      "carries")
    if where == "pool.wlb-verify-cert":
        return Change("pool.wlb-verify-cert", "update", observed.pool.wlb_verify_cert,
                      desired.verify, _verify_reason(desired.verify))
    if where in ("appliance.key", "appliance.csr"):
        return _pending_change(where, desired, observed)
    if where == "appliance.chain":
        return Change(
            "appliance.chain", "update",
            [cert_summary(p) for p in observed.appliance.cert.chain],
            [cert_summary(p) for p in desired.chain],
            "the spec asks the appliance to serve the CA-signed chain (leaf → root)",
        )
    raise AssertionError(f"unexpected difference {kind} at {path}")  # a bug, not input


def _pending_change(where: str, desired: Desired, observed: Observed) -> Change:
    before, after = _views(desired, observed)
    part = where.split(".")[1]
    old, new = before["appliance"][part], after["appliance"][part]
    path = "appliance.pending_key" if part == "key" else "appliance.csr"
    reason = {
        "key": "the request stage needs a key on the appliance of the type and size the spec "
               "asks for",
        "csr": "the CSR must carry the spec's subject and alt_names and the pending key",
    }[part]
    return Change(path, "create" if old is None else "update", old, new, reason)


def _verify_reason(verify: bool) -> str:
    if verify:
        return "verify: true — the pool must check WLB's certificate (name and chain)"
    return "verify: false — the pool must not check WLB's certificate"


def _trust_change(kind: str, name: str, desired: Desired, observed: Observed) -> Change:
    if kind == "dictionary_item_added":
        anchor = next(a for a in desired.trust if a.install_name == name)
        summary = {"name": name, "role": anchor.role, **cert_summary(anchor.pem)}
        return Change(f"pool.trust[{name}]", "create", None, summary, _trust_reason(anchor))
    if kind == "values_changed":
        anchor = next(a for a in desired.trust if a.install_name == name)
        summary = {"name": name, "role": anchor.role, **cert_summary(anchor.pem)}
        return Change(f"pool.trust[{name}]", "update", {"name": name}, summary,
                      "the coordinator's copy cannot be read as a certificate: reinstall it")
    item = next(t for t in observed.pool.trusted if t.name == name)
    removed: dict[str, Any] = {"name": name}
    if item.pem:
        removed |= cert_summary(item.pem)
    elif item.fingerprint:
        removed["fingerprint"] = item.fingerprint  # all the pool says of it
    return Change(f"pool.trust[{name}]", "delete", removed, None,
                  "installed by wlbplan for a certificate the appliance no longer needs")


def _trust_reason(anchor: Anchor) -> str:
    return {
        "wlb": "the pool must trust the certificate the appliance serves",
        "root": "the pool must trust the root CA of the appliance's chain",
        "intermediate": "the pool must trust the intermediate CA of the appliance's chain",
        "leaf": "xapi before 24.40 verifies the peer: the WLB leaf itself must be trusted",
    }[anchor.role]
