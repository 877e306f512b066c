"""What ``wlbplan import`` writes: a spec describing a pool and its WLB as they are.

From the facts one inspection read (``Observed``) and the operator's options on how to
reach the two hosts (``Access``): a spec document whose comments say where each value
came from, and the public certificates a CA-signed spec names (written beside it). The
certificate source is what the appliance's file holds (a self-signed leaf, or a chain to
a root found in that file or in the pool's trust), ``verify`` is the pool's flag, and the
trust is the chain's; what the spec cannot say (certificates trusted for other reasons)
is listed in comments. The hosts chose every name, subject and certificate here: values
are written by ``spec.emit`` (quoted, read back), comments escaped by ``visible``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from wlbplan import certs
from wlbplan.core.desired import SUBJECT_OIDS, managed
from wlbplan.core.plan import TargetPlan
from wlbplan.errors import ImportRefused, VerifyError
from wlbplan.model.names import file_name_problem, ip_address_problem
from wlbplan.model.observed import Observed, observed_from_json
from wlbplan.model.spec import (
    DEFAULT_CERT_PATH,
    DEFAULT_KEY_PATH,
    DEFAULT_WLB_PORT,
    SUBJECT_MAX_LENGTH,
    Connection,
    Spec,
    is_ip_literal,
    url_host,
)
from wlbplan.spec import load_spec_text
from wlbplan.spec.emit import Block, Field, Items, Scalar, emit
from wlbplan.spec.rules import dns_key, host_problem

INSPECTION_MAJOR = "1"
_MAX_RSA_BITS = 16384
_EC_BITS = (256, 384, 521)


@dataclass(frozen=True)
class Access:
    """How wlbplan reaches the pool and the appliance: the operator's options, never host
    text. ``pool``, ``wlb``, ``paths`` and ``ssh`` hold the spec keys given, in order."""

    name: str
    coordinator: str
    appliance: str
    """Where the appliance is reached; the name the pool uses comes from its wlb-url."""
    connection: Connection = "ssh"
    pool: tuple[tuple[str, Scalar], ...] = ()
    wlb: tuple[tuple[str, Scalar], ...] = ()
    paths: tuple[tuple[str, str], ...] = ()
    ssh: tuple[tuple[str, Scalar], ...] = ()
    resolve: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Imported:
    """The spec document (its comments included) and the files it names beside it."""

    fields: tuple[Field, ...]
    header: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    """(file name beside the spec, its PEM text): public certificates only."""

    def text(self, verdict: Sequence[str] = ()) -> str:
        return emit(self.fields, header=[*self.header, *verdict])


# ---- the operator's options alone -----------------------------------------------------------

def skeleton(access: Access) -> str:
    """The spec the options make before anything is read (WLB at ``--wlb``, self-signed):
    loaded like any spec, it checks the options and gives the target to inspect with."""
    wlb = Block((Field("address", access.appliance), *_connection(access),
                 *_paths(dict(access.paths)), *_pairs(access.wlb)))
    target = Block((Field("name", access.name), Field("pool", _pool(access)), Field("wlb", wlb),
                    Field("certificate", Block((Field("source", "self-signed"),)))))
    return emit(_top(access, target))


def load(text: str, path: Path, what: str, *, check_files: bool = False) -> Spec:
    """``text`` as a validated spec, or ImportRefused quoting every error."""
    spec, diagnostics = load_spec_text(text, path, check_files=check_files)
    if spec is None:
        errors = "; ".join(f"{d.path or 'spec'}: {d.message}" for d in diagnostics if d.is_error)
        raise ImportRefused(f"{what}: not a valid spec: {errors}")
    return spec


def _pairs(pairs: Sequence[tuple[str, Scalar]], option: bool = False) -> tuple[Field, ...]:
    """Spec keys and values; ``option``: each says the option it came from beside it."""
    return tuple(Field(key, value, beside=f"--{key.replace('_', '-')}" if option else "")
                 for key, value in pairs)


def _connection(access: Access) -> tuple[Field, ...]:
    return (Field("connection", "local"),) if access.connection == "local" else ()


def _pool(access: Access, above: tuple[str, ...] = ()) -> Block:
    return Block((Field("coordinator", access.coordinator, above=above, beside="--pool"),
                  *_connection(access), *_pairs(access.pool, option=True)))


def _paths(paths: dict[str, str]) -> tuple[Field, ...]:
    given = tuple(Field(k, v) for k, v in paths.items()
                  if v != str({"cert": DEFAULT_CERT_PATH, "key": DEFAULT_KEY_PATH}[k]))
    return (Field("paths", Block(given)),) if given else ()


def _top(access: Access, target: Block) -> tuple[Field, ...]:
    fields = [Field("version", 1)]
    if access.ssh:
        fields.append(Field("defaults", Block((Field("ssh", Block(_pairs(access.ssh))),)),
                            above=("How wlbplan logs in (from the command line).",)))
    if access.resolve:
        fields.append(Field("resolve", Block(_pairs(access.resolve)),
                            above=("Addresses wlbplan connects to for these names (--resolve).",)))
    fields.append(Field("targets", Items((target,))))
    return tuple(fields)


# ---- an inspection report -------------------------------------------------------------------

def observed_from_report(document: Any, target: str | None, source: str) -> Observed:
    """One target's facts from ``wlbplan inspect --format json`` output."""
    if not isinstance(document, dict) or not isinstance(document.get("targets"), list):
        raise ImportRefused(f"{source}: not the JSON `wlbplan inspect --format json` writes")
    version = str(document.get("format_version", ""))
    if version.split(".")[0] != INSPECTION_MAJOR:
        raise ImportRefused(f"{source}: format_version {version!r} is not one this wlbplan "
                            f"reads ({INSPECTION_MAJOR}.x)")
    found = [t for t in document["targets"] if isinstance(t, dict)]
    names = [str(t.get("target")) for t in found]
    if target is None and len(found) != 1:
        raise ImportRefused(f"{source} holds {len(found)} targets ({', '.join(names)}); "
                            "choose one with --target")
    chosen = found[0] if target is None else next(
        (t for t, n in zip(found, names, strict=True) if n == target), None)
    if chosen is None:
        if target in _unreachable(document):
            raise ImportRefused(f"{source}: {target!r} could not be inspected when the report "
                                "was made (its `unreachable` list says why): inspect it again")
        raise ImportRefused(f"{source} has no target {target!r} (it has {', '.join(names)})")
    facts = {k: v for k, v in chosen.items() if k not in ("observed_digest", "derived")}
    try:
        seen = observed_from_json(facts)
    except ValueError as err:
        raise ImportRefused(f"{source}: {err}") from None
    for item in seen.pool.trusted:  # the rule inspection applies to what a pool lists
        problem = file_name_problem(item.name)
        if problem:
            raise ImportRefused(f"{source}: the pool lists a CA certificate named "
                                f"{item.name[:80]!r}, which is not a safe certificate name: "
                                f"it {problem} (xapi's own rule)")
    return seen


def _unreachable(document: dict[str, Any]) -> set[str]:
    """The targets a 1.1 report lists as not inspected (none in a 1.0 one)."""
    listed = document.get("unreachable")
    items = listed if isinstance(listed, list) else []
    return {str(i.get("target")) for i in items if isinstance(i, dict)}


def read_report(data: bytes, target: str | None, source: str) -> Observed:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as err:
        raise ImportRefused(f"{source} is not JSON: {err}") from None
    return observed_from_report(document, target, source)


# ---- the spec, from what was read -----------------------------------------------------------

def wlb_endpoint(wlb_url: str, name: str) -> tuple[str, int]:
    """The host and port of the pool's wlb-url: the name it reaches WLB by, and where."""
    if not wlb_url:
        raise ImportRefused(
            f"{name}: the pool is not connected to WLB (its wlb-url is empty), so there is no "
            "appliance to describe: connect it first (xe pool-initialize-wlb "
            "wlb_url=<fqdn>:<port> …), then import it")
    host, _, port = wlb_url.rpartition(":")
    problem = host_problem(url_host(wlb_url)) if host else "has no host:port"
    if problem is None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        problem = "has no port 1-65535"
    if problem is not None:
        raise ImportRefused(f"{name}: the pool's wlb-url {wlb_url!r} {problem}")
    return url_host(wlb_url), int(port)


@dataclass(frozen=True)
class _Chain:
    """The certificate the appliance holds, as the spec names it."""

    source: str
    certs: tuple[x509.Certificate, ...]
    """The leaf (self-signed), or leaf → intermediates → root (CA-signed)."""
    needed: dict[str, str]
    """What the pool must trust for this chain: fingerprint → what it is."""
    origin: dict[str, str] = field(default_factory=dict)
    left_out: tuple[x509.Certificate, ...] = ()


def derive(observed: Observed, access: Access, *, when: str, origin: str) -> Imported:
    """The spec that describes ``observed`` (``origin`` says where the facts came from)."""
    name = access.name
    address, port = wlb_endpoint(observed.pool.wlb_url, name)
    chain = _chain(observed, name)
    certificate, files = _certificate(chain, observed, address, name)
    target = Block((
        Field("name", name),
        Field("pool", _pool(access, _pool_notes(observed))),
        Field("wlb", _wlb(observed, access, address, port, chain)),
        Field("certificate", certificate, above=_trust_notes(observed, chain)),
        Field("verify", observed.pool.wlb_verify_cert,
              beside="the pool's wlb-verify-cert as found"),
    ))
    written = ", ".join(n for n, _ in files)
    header = (
        f"wlbplan spec written by `wlbplan import` on {when}, from {origin}.",
        f"It describes target {name} as found: the certificate WLB holds, what the pool "
        "trusts and whether it verifies WLB. Comments say where each value comes from.",
        *((f"Beside it: {written} (public certificates as read; no private key is ever "
           "read).",) if files else ()),
        "",
    )
    return Imported(fields=_top(access, target), header=header, files=files)


def _load(pem: str) -> x509.Certificate:
    return certs.parse_pem_bundle(pem.encode())[0]


def _about(cert: x509.Certificate) -> str:
    info = certs.describe(cert)
    return (f"{info.subject or '(empty subject)'}, issued by {info.issuer or '(empty)'}, "
            f"expires {info.not_after:%Y-%m-%d}")


def _chain(observed: Observed, name: str) -> _Chain:
    held = observed.appliance.cert
    if not held.chain:
        raise ImportRefused(
            f"{name}: the appliance's certificate file {held.path} is "
            f"{held.error or 'missing'}, so there is no certificate to describe; check "
            "--cert-path (the file stunnel serves), or fix the file first")
    try:
        in_file = [_load(p) for p in held.chain]
        trusted = [(t.name, _load(t.pem)) for t in observed.pool.trusted if t.pem]
    except VerifyError as err:
        raise ImportRefused(f"{name}: a certificate read is not valid: {err}") from None
    leaf = in_file[0]
    origin = {certs.fingerprint(c): f"the appliance's {held.path}" for c in in_file}
    if certs.is_self_signed(leaf):
        return _Chain("self-signed", (leaf,), {certs.fingerprint(leaf): "WLB's certificate"},
                      origin, tuple(in_file[1:]))
    for trusted_name, cert in trusted:
        origin.setdefault(certs.fingerprint(cert), f"the pool's trusted {trusted_name}")
    ordered = certs.order_chain(leaf, [*in_file[1:], *(c for _, c in trusted)])
    if not ordered.complete:
        raise ImportRefused(
            f"{name}: {ordered.problem}: neither the appliance's {held.path} nor the pool's "
            "trust holds the root CA of WLB's certificate, and a CA-signed spec names it "
            "(certificate.root). Add the root to the appliance's file or the pool's trust, "
            "or write the spec by hand")
    chain = ordered.certs
    needed = {certs.fingerprint(chain[-1]): "the root CA of WLB's chain"}
    needed |= {certs.fingerprint(c): "an intermediate CA of WLB's chain" for c in chain[1:-1]}
    if not observed.pool.chain_verification:
        needed[certs.fingerprint(leaf)] = "WLB's certificate (xapi before 24.40 needs it)"
    return _Chain("ca-signed", chain, needed, origin,
                  tuple(c for c in in_file[1:] if c not in chain))


def _pool_notes(observed: Observed) -> tuple[str, ...]:
    pool = observed.pool
    mode = ("it verifies WLB's chain: a trusted root is enough" if pool.chain_verification
            else "older than 24.40: the pool must trust WLB's own certificate too")
    hosts = f"{len(pool.hosts)} host{'' if len(pool.hosts) == 1 else 's'}"
    notes = [f"Pool {pool.uuid}: {hosts}, xapi {pool.xapi_version} ({mode})."]
    if pool.ca_commands == "pre-1.290":
        notes.append("Its xe has only pool-certificate-install/-uninstall (xapi < 1.290).")
    return tuple(notes)


def _wlb(observed: Observed, access: Access, address: str, port: int, chain: _Chain) -> Block:
    pool, app = observed.pool, observed.appliance
    above = [f"From the pool's wlb-url ({pool.wlb_url}): the name the pool reaches WLB by "
             "and checks its certificate against."]
    if not pool.wlb_enabled:
        above.append("The pool has WLB disabled (wlb-enabled false); wlbplan leaves that.")
    if is_ip_literal(address):
        above += _by_ip_notes(chain.certs[0])
    fields = [Field("address", address, above=tuple(above))]
    if port != DEFAULT_WLB_PORT:
        fields.append(Field("port", port))
    fields += _connection(access)
    if access.connection == "ssh" and dns_key(access.appliance) != dns_key(address):
        fields.append(Field("ssh_host", access.appliance, beside="--wlb"))
    fields += _paths({"cert": app.cert.path, "key": app.key.path})
    fields += _pairs(access.wlb, option=True)
    return Block(tuple(fields))


def _by_ip_notes(leaf: x509.Certificate) -> list[str]:
    fqdn = _host_name(leaf)
    fix = (f"set address to {fqdn} (the name in WLB's certificate), " if fqdn else
           "set address to the appliance's FQDN (WLB's certificate names none: reissue it), ")
    return [
        "The pool reaches WLB by IP address. xapi checks WLB's certificate against the host "
        "part of wlb-url and never matches an IP: with verify true the pool cannot verify "
        "WLB, and `wlbplan plan` refuses such a spec (`wlbplan validate` warns).",
        "To verify: " + fix + "add wlb.credentials so that apply reconnects the pool by "
        "that name (pool-initialize-wlb), and set verify: true.",
    ]


def _host_name(leaf: x509.Certificate) -> str | None:
    """The first DNS name in the certificate (CN, then DNS SANs) a spec can carry."""
    info = certs.describe(leaf)
    names = [n for n in (info.common_name, *info.dns_names) if n is not None]
    return next((n for n in names if _dns_name(n) and len(n) <= SUBJECT_MAX_LENGTH["CN"]), None)


def _dns_name(text: str) -> bool:
    return not is_ip_literal(text) and host_problem(text) is None


def _trust_notes(observed: Observed, chain: _Chain) -> tuple[str, ...]:
    """What the pool trusts now, each with what it is to this spec."""
    trusted = observed.pool.trusted
    lines = [f"The appliance's {observed.appliance.cert.path} holds "
             f"{_about(chain.certs[0])}: {chain.source}."]
    lines += [f"It also holds {_about(c)}, which is not in WLB's chain: the spec leaves it "
              "out." for c in chain.left_out]
    if not trusted:
        lines.append("The pool trusts no CA certificate (xe pool-certificate-list is empty).")
    else:
        lines.append("The pool trusts (xe pool-certificate-list):")
    seen = set()
    for item in trusted:
        if item.pem is None:
            lines.append(f"- {item.name}: could not be read on the coordinator")
            continue
        cert = _load(item.pem)
        fingerprint = certs.fingerprint(cert)
        seen.add(fingerprint)
        what = chain.needed.get(fingerprint) or (
            "installed by wlbplan and not needed by this spec: plan removes it"
            if managed(item.name) else "not in WLB's chain: wlbplan leaves it alone")
        lines += [f"- {item.name}: {cert.subject.rfc4514_string()}: {what}",
                  f"  sha256={fingerprint}"]
    for cert in chain.certs:
        fingerprint = certs.fingerprint(cert)
        if fingerprint in chain.needed and fingerprint not in seen:
            lines.append(f"Not trusted yet: {cert.subject.rfc4514_string()} "
                         f"({chain.needed[fingerprint]}): plan installs it.")
    served = observed.appliance.served
    if served.error:
        lines.append(f"WLB serves nothing now ({served.error}): this spec describes the file.")
    elif served.chain[:1] != observed.appliance.cert.chain[:1]:
        lines.append("WLB serves another certificate than its file holds (a restart pending?): "
                     "this spec describes the file, which the next stunnel restart serves.")
    return tuple(lines)


def _certificate(chain: _Chain, observed: Observed, address: str,
                 name: str) -> tuple[Block, tuple[tuple[str, str], ...]]:
    if chain.source == "self-signed":
        return Block((Field("source", "self-signed"),)), ()
    leaf, *intermediates, root = chain.certs
    files = [(f"{name}.signed.pem", leaf)]
    files += [(f"{name}.intermediate{'' if len(intermediates) == 1 else f'-{n}'}.pem", c)
              for n, c in enumerate(intermediates, start=1)]
    files.append((f"{name}.root.pem", root))
    request, request_notes = _request(leaf, address, name)
    fields = [
        Field("source", "ca-signed"),
        Field("request", request, above=request_notes),
        Field("signed", files[0][0], above=(f"WLB's certificate, from {_origin(chain, leaf)}.",)),
    ]
    if intermediates:
        fields.append(Field("intermediates", Items(tuple(n for n, _ in files[1:-1])),
                            above=tuple(f"{_about(c)}, from {_origin(chain, c)}."
                                        for c in intermediates)))
    fields.append(Field("root", files[-1][0],
                        above=(f"{_about(root)}, from {_origin(chain, root)}.",)))
    if observed.appliance.pending_key:
        fields[0] = replace(fields[0], above=(
            "A new key waits on the appliance (a request stage under way): plan says what "
            "to do next.",))
    pems = tuple((file_name, certs.to_pem([c]).decode()) for file_name, c in files)
    return Block(tuple(fields)), pems


def _origin(chain: _Chain, cert: x509.Certificate) -> str:
    return chain.origin.get(certs.fingerprint(cert), "the inspection")


def _request(leaf: x509.Certificate, address: str,
             name: str) -> tuple[Block, tuple[str, ...]]:
    """The CSR of the next rotation, from the certificate served now (where it fits)."""
    info = certs.describe(leaf)
    notes = ["What the next key and CSR ask for, taken from WLB's certificate."]
    if is_ip_literal(address):
        common_name = _host_name(leaf)
        if common_name is None:
            raise ImportRefused(
                f"{name}: the pool reaches WLB by IP address ({address}) and WLB's "
                "certificate names no host name, but a CA-signed spec needs the appliance's "
                "FQDN as certificate.request.common_name; reconnect the pool by name, or "
                "write the spec by hand")
    else:
        common_name = address
        if info.common_name is None or dns_key(info.common_name) != dns_key(address):
            notes.append(f"The certificate's CN is {info.common_name or '(none)'}; the pool "
                         f"checks the name {address}, which the next CSR carries.")
    alt_names = [f"DNS:{n}" for n in info.dns_names if _dns_name(n.removeprefix("*."))]
    alt_names += [f"IP:{a}" for a in info.ip_addresses if ip_address_problem(a) is None]
    if is_ip_literal(address) and not _has_ip(alt_names, address):
        alt_names.append(f"IP:{address}")
        notes.append(f"IP:{address} is added: the pool reaches WLB by that address.")
    fields = [Field("common_name", common_name)]
    if alt_names:
        fields.append(Field("alt_names", Items(tuple(dict.fromkeys(alt_names)))))
    subject, left_out = _subject(leaf)
    notes += left_out
    if subject:
        fields.append(Field("subject", Block(subject)))
    key, note = _key(info)
    notes += note
    if key is not None:
        fields.append(Field("key", key))
    return Block(tuple(fields)), tuple(notes)


def _has_ip(alt_names: list[str], address: str) -> bool:
    wanted = ipaddress.ip_address(address)
    return any(n.startswith("IP:") and ipaddress.ip_address(n[3:]) == wanted for n in alt_names)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _subject(leaf: x509.Certificate) -> tuple[tuple[Field, ...], list[str]]:
    fields, notes = [], []
    for key, oid in SUBJECT_OIDS.items():
        values = [a.value for a in leaf.subject.get_attributes_for_oid(oid)]
        if not values:
            continue
        value = values[0]
        problem = _subject_problem(key, value) if isinstance(value, str) else "is not text"
        if problem or not isinstance(value, str):
            notes.append(f"The certificate's subject {key} is left out: it {problem}.")
            continue
        if len(values) > 1:
            notes.append(f"The certificate's subject has {len(values)} {key} values; a "
                         "spec holds one, the first.")
        fields.append(Field(key, value))
    return tuple(fields), notes


def _subject_problem(key: str, value: str) -> str | None:
    if not value:
        return "is empty"
    if key == "C":
        return None if re.fullmatch(r"[A-Za-z]{2}", value) else "is not a two-letter code"
    if key == "emailAddress" and not re.fullmatch(r"[ -~]+", value):
        return "is not plain ASCII"
    if _CONTROL.search(value):
        return "holds control characters"
    if len(value) > SUBJECT_MAX_LENGTH[key]:
        return f"is longer than {SUBJECT_MAX_LENGTH[key]} characters"
    return None


def _key(info: certs.CertInfo) -> tuple[Block | None, list[str]]:
    kind, bits = info.key_type, info.key_bits
    if kind == "rsa" and 2048 <= bits <= _MAX_RSA_BITS:
        return Block((Field("type", "rsa"), Field("bits", bits))), []
    if kind == "ec" and bits in _EC_BITS:
        return None, [f"WLB's key is EC {bits}, and xapi's stunnel client offers ECDHE-RSA "
                      "suites only: the next key is RSA 2048 (the default)."]
    return None, [f"WLB's key is {kind} {bits}: the next key is RSA 2048 (the default)."]


# ---- what plan makes of it ------------------------------------------------------------------

_MARK = {"create": "+", "update": "~", "delete": "-"}


def verdict(made: TargetPlan) -> tuple[str, ...]:
    """``wlbplan plan``'s verdict on the imported spec, against the same facts."""
    head = "`wlbplan plan` on this spec, against the state read:"
    if made.status == "no_changes":
        lines = [f"{head} no changes."]
    elif made.status == "refused":
        lines = [f"{head} refused, as the pool is now:", f"  {made.reason}"]
    elif made.status == "waiting":
        lines = [f"{head} nothing to apply; waiting: {made.reason}"]
    else:
        count = len(made.changes)
        lines = [f"{head} {count} change{'' if count == 1 else 's'}: what a spec cannot leave "
                 "as it is (apply them, or edit the spec):"]
        lines += [f"  {_MARK[c.action]} {c.path}: {c.reason}" for c in made.changes]
    lines += [f"  {note}" for note in made.notes]
    return (*lines, "")


def default_name(host: str) -> str:
    """A target name from the coordinator's name: its first label (an address as it is)."""
    first = host if is_ip_literal(host) else host.split(".", 1)[0]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", first).lstrip("._-")[:63]
    return cleaned or "pool"


def as_target(observed: Observed, name: str) -> Observed:
    """The facts under the target name the spec gives them."""
    return replace(observed, target=name)
