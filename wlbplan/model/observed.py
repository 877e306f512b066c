"""What inspection found on one target: plain, frozen, JSON-able facts (no key material).

Certificates are kept as PEM text (public), so that a plan file can carry exactly what
was seen and later stages can re-derive anything from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import asdict, dataclass
from typing import Any, Literal

from wlbplan.model.spec import url_host


@dataclass(frozen=True)
class CertFile:
    """The appliance's certificate file: the chain it holds, leaf first."""

    path: str
    present: bool
    chain: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class KeyFile:
    """The appliance's key file, described without its secret: mode, owner, public key."""

    path: str
    present: bool
    mode: str | None = None
    owner: str | None = None
    group: str | None = None
    public_key: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Served:
    """What stunnel actually serves on the port (a real handshake from the appliance)."""

    chain: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ApplianceFacts:
    cert: CertFile
    key: KeyFile
    served: Served
    backups: tuple[str, ...] = ()
    hostname: str | None = None
    pending_key: str | None = None
    """Public half of the pending key (request stage), when there is one."""
    pending_csr: str | None = None


@dataclass(frozen=True)
class TrustedCert:
    """One CA certificate installed in the pool; ``pem`` is None when it could not be read.

    ``fingerprint`` (SHA-256, upper-case hex pairs and colons) is what the pool itself
    reports of a certificate whose content wlbplan cannot read: XenAPI's Certificate
    records carry fingerprints, never the certificates. With a ``pem`` it stays None (the
    content says more than the pool's word for it).

    ``by_name``: the pool gives its name alone, neither content nor fingerprint (XenAPI
    before xapi 1.290, which has no Certificate records for CA certificates). Not damaged,
    only unseen: wlbplan knows its own by the name it gave them, which carries the first
    16 hex digits of their fingerprint.
    """

    name: str
    pem: str | None = None
    fingerprint: str | None = None
    by_name: bool = False


CaCommands = Literal["current", "pre-1.290"]


@dataclass(frozen=True)
class PoolFacts:
    uuid: str
    coordinator: str
    hosts: tuple[str, ...]
    xapi_version: str
    wlb_url: str
    wlb_username: str
    wlb_enabled: bool
    wlb_verify_cert: bool
    trusted: tuple[TrustedCert, ...] = ()
    ca_commands: CaCommands = "current"
    """The xe commands this pool offers for CA certificates: ``pre-1.290`` is the 1.249
    line (Citrix Hypervisor 8.2), which has only pool-certificate-install / -uninstall."""

    @property
    def wlb_host(self) -> str:
        """The host part of wlb-url (what xapi's stunnel checks the name against)."""
        return url_host(self.wlb_url)

    @property
    def chain_verification(self) -> bool:
        """xapi >= 24.40 verifies the chain; older xapi needs the WLB leaf itself trusted."""
        return xapi_at_least(self.xapi_version, (24, 40))

    @property
    def verify_mode(self) -> Literal["current", "legacy"]:
        """How this pool's xapi verifies WLB (``certs.pool_accepts``'s ``mode``)."""
        return "current" if self.chain_verification else "legacy"


def xapi_at_least(version: str, minimum: tuple[int, int]) -> bool:
    """``25.33.1`` ≥ (24, 40)? A version that does not parse counts as old (the safe side:
    old xapi needs the WLB leaf itself trusted, which also satisfies a new one)."""
    match = re.match(r"\s*(\d{1,6})\.(\d{1,6})", version, re.ASCII)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) >= minimum


@dataclass(frozen=True)
class Observed:
    target: str
    appliance: ApplianceFacts
    pool: PoolFacts

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """A stable fingerprint of what was seen, to tell a stale plan.

        The facts only: an error counts by there being one, never by its words, which
        can differ from one look to the next (OpenSSL's carry a thread id) while nothing
        has moved.
        """
        canonical = json.dumps(_facts_only(self.to_json()), sort_keys=True,
                               separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Uninspected:
    """A target whose facts could not be read (unreachable, refused, timed out): ``error``
    says why, in the words of the error that stopped it (host text inside)."""

    target: str
    error: str


def _facts_only(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v is not None) if k == "error" else _facts_only(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_facts_only(v) for v in node]
    return node


def observed_from_json(data: Any) -> Observed:
    """``Observed.to_json()`` read back (from a plan file): every field checked for its
    type, ValueError naming the first that is wrong."""
    built: Observed = _build(Observed, data, "facts")
    return built


# Facts added within plan format 1.2, absent from the files older wlbplans wrote.
_ADDED_LATER = frozenset({(TrustedCert, "fingerprint"), (TrustedCert, "by_name")})


def _build(kind: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    hints = typing.get_type_hints(kind)
    names = [f.name for f in dataclasses.fields(kind)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]} is not a fact wlbplan records")
    values = {}
    for f in dataclasses.fields(kind):
        if f.name not in data and (kind, f.name) in _ADDED_LATER:
            continue  # a plan file of the same format made before this fact: its default
        if f.name not in data:
            raise ValueError(f"{where}.{f.name} is missing")
        values[f.name] = _value(hints[f.name], data[f.name], f"{where}.{f.name}")
    return kind(**values)


def _value(hint: Any, data: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, data, where)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(data, list):
            raise ValueError(f"{where} must be a list")
        return tuple(_value(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
    if origin is typing.Literal:
        if data in args:
            return data
        raise ValueError(f"{where} must be one of {', '.join(map(str, args))}")
    if args and type(None) in args:  # X | None
        return None if data is None else _value(args[0], data, where)
    if hint in (str, bool) and type(data) is hint:
        return data
    raise ValueError(f"{where} must be {getattr(hint, '__name__', hint)}")
