"""Pool facts from XenAPI records: the same ``PoolFacts`` the xe inspection yields.

``read`` makes the calls, in the target's one session; ``parse`` is pure: it takes what
was read (``ApiRecords``, as the wire gave it: untrusted, any shape) and checks every
value it keeps. The difference from the SSH path is in the
trusted certificates: XenAPI's Certificate records give each one's name and SHA-256
fingerprint, never its content (``TrustedCert.fingerprint``, ``pem`` None); before xapi
1.290 there are no such records and ``pool.certificate_list`` gives names only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wlbplan.connectors.xenapi import XenapiSession
from wlbplan.errors import RemoteCommandError
from wlbplan.model.names import file_name_problem
from wlbplan.model.observed import CaCommands, PoolFacts, TrustedCert, xapi_at_least
from wlbplan.model.spec import Target

_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.ASCII)
_FINGERPRINT = re.compile(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", re.ASCII)
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
CA_CALLS_SINCE = (1, 290)  # pool.install_ca_certificate, Certificate rows of type ca
# Longer than any wlb-url, user name or version a pool holds: what exceeds it is not one.
MAX_TEXT = 1024


@dataclass(frozen=True)
class ApiRecords:
    """What one XenAPI session read, unchecked."""

    pools: Any
    """``pool.get_all_records()``"""
    hosts: Any
    """``host.get_all_records()``"""
    certificates: Any
    """``Certificate.get_all_records()``"""
    ca_names: Any = None
    """``pool.certificate_list()``, read on pools without CA certificate records."""
    ca_commands: CaCommands = "current"
    """``current`` when the pool has ``pool.install_ca_certificate`` (xapi >= 1.290)."""


def _unusable(target: Target, what: str, got: Any, wanted: str) -> RemoteCommandError:
    shown = repr(got)[:80] if got not in (None, "") else "nothing"
    return RemoteCommandError(
        f"{target.name}: the pool's XenAPI gave {shown} for {what}, not {wanted}; is "
        "the pool URL a XenServer pool coordinator?")


def _text(value: Any, what: str, target: Target) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _unusable(target, what, value, "a text")
    return value


def _flag(value: Any, what: str, target: Target) -> bool:
    if type(value) is not bool:
        raise _unusable(target, what, value, "true or false")
    return value


def _uuid(value: Any, what: str, target: Target) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise _unusable(target, what, value, "a UUID")
    return value


def _records(value: Any, what: str, target: Target) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()):
        raise _unusable(target, what, value, "records by reference")
    return value


def fingerprint(value: Any) -> str | None:
    """A SHA-256 fingerprint as ``certs.fingerprint`` writes it (upper-case hex pairs and
    colons), from xapi's form or bare hex; None for anything else."""
    if not isinstance(value, str):
        return None
    if _HEX64.fullmatch(value):
        value = ":".join(value[i:i + 2] for i in range(0, 64, 2))
    value = value.upper()
    return value if _FINGERPRINT.fullmatch(value) else None


def _ca_name(value: Any, target: Target) -> str:
    """Each name becomes a file name in the trust store (an uninstall names it): one that
    could leave its folder refuses the pool, as on the SSH path."""
    if not isinstance(value, str):
        raise _unusable(target, "a CA certificate's name", value, "a text")
    problem = file_name_problem(value)
    if problem:
        raise RemoteCommandError(
            f"{target.name}: the pool lists a CA certificate named {value[:80]!r}, which "
            f"is not a safe certificate name: it {problem} (xapi's own rule). wlbplan will "
            "not use this pool until that entry is removed.")
    return value


def _trusted(records: ApiRecords, target: Target) -> tuple[TrustedCert, ...]:
    if records.ca_commands == "pre-1.290":
        names = records.ca_names
        if not isinstance(names, list):
            raise _unusable(target, "pool.certificate_list", names, "a list of names")
        return tuple(TrustedCert(name=n, by_name=True)
                     for n in sorted({_ca_name(n, target) for n in names}))
    rows = _records(records.certificates, "Certificate.get_all_records", target)
    found: dict[str, set[str | None]] = {}
    for row in rows.values():
        if row.get("type") != "ca":
            continue
        name = _ca_name(row.get("name"), target)
        # fingerprint_sha256 where the pool fills it, else the older (SHA-256) field
        said = fingerprint(row.get("fingerprint_sha256")) or fingerprint(row.get("fingerprint"))
        found.setdefault(name, set()).add(said)
    # Two rows of one name that disagree say nothing certain: unreadable, as on SSH.
    return tuple(TrustedCert(name=name, fingerprint=next(iter(prints)) if len(prints) == 1
                             else None) for name, prints in sorted(found.items()))


def parse(records: ApiRecords, target: Target) -> PoolFacts:
    pools = _records(records.pools, "pool.get_all_records", target)
    if len(pools) != 1:
        raise _unusable(target, "pool.get_all_records", sorted(pools)[:3], "one pool")
    pool = next(iter(pools.values()))
    hosts = _records(records.hosts, "host.get_all_records", target)
    master = pool.get("master")
    if not isinstance(master, str) or master not in hosts:
        raise _unusable(target, "the pool's master", master, "one of its hosts")
    uuids = tuple(sorted(_uuid(h.get("uuid"), "a host's uuid", target) for h in hosts.values()))
    versions = hosts[master].get("software_version")
    if not isinstance(versions, Mapping):
        raise _unusable(target, "the coordinator's software_version", versions, "a map")
    xapi = _text(versions.get("xapi"), "the xapi version", target)
    if not xapi.strip():
        raise _unusable(target, "the xapi version", xapi, "a version")
    return PoolFacts(
        uuid=_uuid(pool.get("uuid"), "the pool's uuid", target),
        coordinator=_uuid(hosts[master].get("uuid"), "the coordinator's uuid", target),
        hosts=uuids,
        xapi_version=xapi.strip(),
        wlb_url=_text(pool.get("wlb_url"), "wlb_url", target),
        wlb_username=_text(pool.get("wlb_username"), "wlb_username", target),
        wlb_enabled=_flag(pool.get("wlb_enabled"), "wlb_enabled", target),
        wlb_verify_cert=_flag(pool.get("wlb_verify_cert"), "wlb_verify_cert", target),
        trusted=_trusted(records, target),
        ca_commands=records.ca_commands,
    )


def ca_commands_of(hosts: Any) -> CaCommands:
    """Which CA calls the pool has, from its coordinator's xapi version (``xapi`` of
    software_version: MAJOR.MINOR, and ``1.20`` on the 1.249 line, below 1.290): no
    probing call needed. A version that does not parse counts as old."""
    versions = [h.get("software_version", {}).get("xapi") for h in hosts.values()
                if isinstance(h, Mapping) and isinstance(h.get("software_version"), Mapping)] \
        if isinstance(hosts, Mapping) else []
    return "current" if versions and all(
        isinstance(v, str) and xapi_at_least(v, CA_CALLS_SINCE) for v in versions) \
        else "pre-1.290"


def read(session: XenapiSession) -> ApiRecords:
    """Everything the pool's facts need, in the target's one session."""
    pools = session.call("pool.get_all_records")
    hosts = session.call("host.get_all_records")
    commands = ca_commands_of(hosts)
    if commands == "pre-1.290":
        return ApiRecords(pools, hosts, certificates={},
                          ca_names=session.call("pool.certificate_list"),
                          ca_commands=commands)
    return ApiRecords(pools, hosts, session.call("Certificate.get_all_records"),
                      ca_commands=commands)


def inspect_pool(target: Target, session: XenapiSession) -> PoolFacts:
    return parse(read(session), target)
