"""What inspection found on one target: plain, frozen, JSON-able facts (no key material).

Certificates are kept as PEM text (public), so that a plan file can carry exactly what
was seen and later stages can re-derive anything from it.
"""

from __future__ import annotations

import hashlib
import json
import re
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
    """One CA certificate installed in the pool; ``pem`` is None when it could not be read."""

    name: str
    pem: str | None = None


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
        """A stable fingerprint of what was seen, to tell a stale plan."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
