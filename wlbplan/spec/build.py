"""Validated data → the frozen ``model.Spec`` (local paths anchored, defaults merged)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path, PurePosixPath

from wlbplan.model.ignore import Ignore, parse_date
from wlbplan.model.spec import (
    DEFAULT_KEY_BITS,
    DEFAULT_LEFTOVER_DAYS,
    DEFAULT_ORDER_TIMEOUT,
    DEFAULT_RENEW_BEFORE_DAYS,
    AcmeAccount,
    AcmeSpec,
    CertificateRequest,
    CertificateSpec,
    ChallengeHooks,
    Defaults,
    ExternalAccountBinding,
    KeySpec,
    Policy,
    PoolCredentials,
    PoolSpec,
    PoolTls,
    Signer,
    Spec,
    SshSettings,
    Subject,
    Target,
    WlbCredentials,
    WlbPaths,
    WlbSpec,
)
from wlbplan.spec.report import Data, Report
from wlbplan.spec.rules import dns_key

# Parts of a target that findings point at (audit's SARIF / GitHub locations).
_LINED = ("", "name", "pool", "wlb", "wlb.address", "certificate", "verify")
_SSH_LINED = ("ssh", "ssh.known_hosts", "ssh.host_key_policy")


def to_spec(data: Data, path: Path, digest: str, report: Report) -> Spec:
    base = path.absolute().parent
    defaults = _defaults(data.get("defaults", {}), base)
    targets = []
    for index, raw in enumerate(data["targets"]):
        target = _target(raw, defaults.ssh, base)
        targets.append(dataclasses.replace(target, lines=_lines(report, index),
                                           spec_path=str(path)))
    return Spec(
        version=data["version"],
        path=path,
        digest=digest,
        targets=tuple(targets),
        defaults=defaults,
        policy=Policy(**data.get("policy", {})),
        resolve=tuple((dns_key(host), ip) for host, ip in data.get("resolve", {}).items()),
        ignores=tuple(_ignore(raw, report.line_of(("audit", "ignore", index)))
                      for index, raw in enumerate(data.get("audit", {}).get("ignore", []))),
        leftover_days=data.get("audit", {}).get("leftover_days", DEFAULT_LEFTOVER_DAYS),
    )


def _ignore(raw: Data, line: int | None) -> Ignore:
    until = raw.get("until")
    return Ignore(rule=raw["rule"], target=raw.get("target"),
                  until=None if until is None else parse_date(until), reason=raw["reason"],
                  line=line)


def _defaults(given: Data, base: Path) -> Defaults:
    """``timeout`` bounds connects and commands alike; the older, narrower keys
    (``ssh.connect_timeout`` here or in a target, ``command_timeout``) win where set."""
    timeout = float(given["timeout"]) if "timeout" in given else None
    inherited = SshSettings() if timeout is None else SshSettings(connect_timeout=timeout)
    defaults = Defaults(_ssh(given.get("ssh", {}), inherited, base), timeout=timeout)
    command = given.get("command_timeout", timeout)
    if command is not None:
        defaults = dataclasses.replace(defaults, command_timeout=float(command))
    return defaults


def _lines(report: Report, index: int) -> tuple[tuple[str, int], ...]:
    found = []
    for where in _LINED:
        parts = tuple(part for part in where.split(".") if part)
        line = report.line_of(("targets", index, *parts))
        if line is not None:
            found.append((where, line))
    # Host-key settings: where the value that applies is written (the target's ssh
    # block, else defaults.ssh), for the refusal that names the line to change.
    for where in _SSH_LINED:
        parts = tuple(where.split("."))
        line = report.line_of(("targets", index, *parts)) or report.line_of(("defaults", *parts))
        if line is not None:
            found.append((where, line))
    return tuple(found)


def local_path(text: str, base: Path) -> Path:
    """A local path: ``~`` expanded, relative ones anchored at the spec file's folder."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path


def _optional_local(text: str | None, base: Path) -> Path | None:
    return None if text is None else local_path(text, base)


def _ssh(raw: Data, inherited: SshSettings, base: Path) -> SshSettings:
    changes = dict(raw)
    for key in ("identity_file", "known_hosts"):
        if key in changes:
            changes[key] = local_path(changes[key], base)
    if "connect_timeout" in changes:
        changes["connect_timeout"] = float(changes["connect_timeout"])
    return dataclasses.replace(inherited, **changes)


def _target(raw: Data, default_ssh: SshSettings, base: Path) -> Target:
    wlb = _wlb(raw["wlb"])
    return Target(
        name=raw["name"],
        pool=_pool(raw["pool"], base),
        wlb=wlb,
        certificate=_certificate(raw["certificate"], wlb.address, base),
        verify=raw.get("verify", True),
        ssh=_ssh(raw.get("ssh", {}), default_ssh, base),
    )


def _pool(raw: Data, base: Path) -> PoolSpec:
    fields = dict(raw)
    for name in ("trust_dir", "state_dir"):
        if name in fields:
            fields[name] = PurePosixPath(fields[name])
    if "credentials" in fields:
        fields["credentials"] = PoolCredentials(**fields["credentials"])
    tls = dict(fields.pop("tls", {}))
    if "ca_file" in tls:
        tls["ca_file"] = local_path(tls["ca_file"], base)
    if "fingerprint_sha256" in tls:
        tls["fingerprint_sha256"] = canonical_fingerprint(tls["fingerprint_sha256"])
    fields["tls"] = PoolTls(**tls)
    return PoolSpec(**fields)


def canonical_fingerprint(text: str) -> str:
    """``ab:cd…`` or ``abcd…`` (as the schema allows) → ``AB:CD:…``, xapi's own form."""
    digits = text.replace(":", "").upper()
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def _wlb(raw: Data) -> WlbSpec:
    fields = dict(raw)
    paths = fields.pop("paths", {})
    fields["paths"] = WlbPaths(**{key: PurePosixPath(value) for key, value in paths.items()})
    if "stunnel_conf" in fields:
        fields["stunnel_conf"] = PurePosixPath(fields["stunnel_conf"])
    if "credentials" in fields:
        fields["credentials"] = WlbCredentials(**fields["credentials"])
    return WlbSpec(**fields)


def _certificate(raw: Data, address: str, base: Path) -> CertificateSpec:
    request = raw.get("request")
    signer = raw.get("signer")
    return CertificateSpec(
        source=raw["source"],
        request=None if request is None else _request(request, address, base),
        signed=_optional_local(raw.get("signed"), base),
        intermediates=tuple(local_path(item, base) for item in raw.get("intermediates", [])),
        root=_optional_local(raw.get("root"), base),
        signer=None if signer is None else Signer(tuple(signer["command"])),
        acme=_acme(raw["acme"], base) if "acme" in raw else None,
    )


def _acme(raw: Data, base: Path) -> AcmeSpec:
    account = raw.get("account", {})
    eab = raw.get("eab")
    challenge = raw["challenge"]
    return AcmeSpec(
        directory=raw["directory"],
        root=local_path(raw["root"], base),
        challenge=ChallengeHooks(set=tuple(challenge["set"]), clear=tuple(challenge["clear"]),
                                 type=challenge["type"]),
        ca_file=_optional_local(raw.get("ca_file"), base),
        account=AcmeAccount(email=account.get("email"),
                            key_file=_optional_local(account.get("key_file"), base)),
        eab=None if eab is None else ExternalAccountBinding(eab["kid_env"], eab["hmac_env"]),
        renew_before_days=raw.get("renew_before_days", DEFAULT_RENEW_BEFORE_DAYS),
        order_timeout=raw.get("order_timeout", DEFAULT_ORDER_TIMEOUT),
    )


def _request(raw: Data, address: str, base: Path) -> CertificateRequest:
    key = raw.get("key", {})
    key_type = key.get("type", "rsa")
    return CertificateRequest(
        # Only reached when valid: a missing CN means wlb.address is a name (see semantics).
        common_name=raw.get("common_name", address),
        alt_names=tuple(raw.get("alt_names", [])),
        subject=Subject(**raw.get("subject", {})),
        key=KeySpec(key_type, key.get("bits", DEFAULT_KEY_BITS[key_type])),
        csr_out=_optional_local(raw.get("csr_out"), base),
    )
