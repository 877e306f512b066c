"""Certificates and observed values for the data-driven differ cases (tests/core/diff_cases).

The certificates are generated once per test session (EC keys for the CAs, RSA for
what WLB serves) and named in a registry; a case file refers to them by name.
``observed(...)`` turns a case's compact ``observed`` section into the real
``wlbplan.model.observed.Observed`` value.

Compact ``observed`` form (every key optional)::

    appliance:
      chain: [leaf, intermediate, root]   # the server.pem file, leaf first; [] = missing
      served: [...]                       # what stunnel serves; default: the chain
      key: match | mismatch | missing     # server.key vs the chain's leaf; default match
      key_mode: "644"                     # server.key's mode; default 600
      served_error: connection refused    # the handshake on the port failed (served = [])
      backups: [server.pem_orig]          # names next to server.pem/server.key
      pending_key: leaf                   # a pending key: the one certificate NAME is for
      pending_csr:                        # a pending CSR, signed with NAME's key
        {key: leaf, subject: /CN=wlb.example.com, sans: ["DNS:wlb.example.com"]}
    pool:
      xapi: 24.19.2                       # default: a current xapi (chain verification)
      wlb_url: wlb.example.com:8012       # default: the target's wlb.address:port
      verify: false                       # wlb-verify-cert
      trusted:                            # installed CA certificates
        - {name: server.pem, cert: self_signed_wlb}
        - {name: "wlbplan-root-*", cert: root}      # * = wlbplan's own name for it
        - {name: "wlbplan-wlb-*", cert: old_self_signed_wlb, unreadable: true}
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from wlbplan import certs
from wlbplan.core.desired import PREFIX, Anchor
from wlbplan.lab import pki
from wlbplan.model.observed import (
    ApplianceFacts,
    CertFile,
    KeyFile,
    Observed,
    PoolFacts,
    Served,
    TrustedCert,
)
from wlbplan.model.spec import Target

FQDN = "wlb.example.com"
IP = "10.0.0.5"
CURRENT_XAPI = "25.6.0"
LEGACY_XAPI = "24.19.2"
POOL_UUID = "0b5e4b43-7d1c-4c2e-9a3e-2f1d6c9b8a71"
DAY = dt.timedelta(days=1)
ROLES = ("wlb", "leaf", "intermediate", "root")
# wlbplan's own trust names: prefix, role, 16 hex digits of the SHA-256 fingerprint.
MANAGED_NAME = re.compile(rf"^{PREFIX}(?:{'|'.join(ROLES)})-[0-9a-f]{{16}}\.pem$")


def _ca_key() -> pki.PrivateKey:
    return pki.make_key("ec", 256)  # CAs: fast to make; only the WLB's own key type matters


def _wlb_key() -> pki.PrivateKey:
    # What WLB serves gets an RSA key: xapi's stunnel client offers ECDHE-RSA suites only.
    return pki.make_key("rsa", 2048)


def _ca(cn: str, issuer: pki.Issued | None = None) -> pki.Issued:
    return pki.build(cn, key=_ca_key(), issuer=issuer, ca=True, days=3650)


def _leaf(issuer: pki.Issued, cn: str = FQDN, **kw: Any) -> pki.Issued:
    kw.setdefault("sans", [FQDN])
    return pki.build(cn, key=_wlb_key(), issuer=issuer, server_auth=True, **kw)


def _build() -> dict[str, pki.Issued]:
    made: dict[str, pki.Issued] = {}
    made["self_signed_wlb"] = pki.appliance_self_signed(FQDN, key=_wlb_key())
    made["old_self_signed_wlb"] = pki.appliance_self_signed(
        FQDN, key=_wlb_key(), not_before=pki.now() - 400 * DAY, days=730)
    made["expiring_self_signed_wlb"] = pki.appliance_self_signed(
        FQDN, key=_wlb_key(), not_before=pki.now() - 700 * DAY, days=710)
    # 45 days left: outside a 30-day policy window, inside the next one.
    made["renew_soon_self_signed_wlb"] = pki.appliance_self_signed(
        FQDN, key=_wlb_key(), not_before=pki.now() - 700 * DAY, days=745)
    # An appliance certificate made for an IP: CN=IP, no SAN (checkHost's CN fallback).
    made["ip_cn_self_signed"] = pki.build(IP, key=_wlb_key(), sans=None, ca=True)
    made["root"] = _ca("wlbplan Test Root CA")
    made["intermediate"] = _ca("wlbplan Test Intermediate CA", made["root"])
    made["leaf"] = _leaf(made["intermediate"])
    made["new_leaf"] = _leaf(made["intermediate"])  # rotation: same CA, new key and serial
    made["renewed_leaf"] = pki.build(  # renewal: same CA and same key, new serial
        FQDN, key=made["leaf"].key, issuer=made["intermediate"], sans=[FQDN], server_auth=True)
    made["issuing"] = _ca("wlbplan Test Issuing CA", made["intermediate"])
    made["deep_leaf"] = _leaf(made["issuing"])  # leaf → issuing → intermediate → root
    made["ec_leaf"] = pki.build(  # what request.key.type: ec gets signed
        FQDN, key=pki.make_key("ec", 256), issuer=made["intermediate"], sans=[FQDN],
        server_auth=True)
    made["ip_leaf"] = _leaf(made["intermediate"], sans=[FQDN, IP])
    made["expired_leaf"] = _leaf(made["intermediate"], not_before=pki.now() - 400 * DAY,
                                 not_after=pki.now() - 10 * DAY)
    made["other_root"] = _ca("wlbplan Other Root CA")
    made["other_intermediate"] = _ca("wlbplan Other Intermediate CA", made["other_root"])
    made["other_leaf"] = _leaf(made["other_intermediate"])
    made["corp_ca"] = _ca("Example Corp Internal CA")  # someone else's trust, never ours
    return made


@dataclass(frozen=True)
class Registry:
    """The session's certificates by name."""

    issued: Mapping[str, pki.Issued]

    def pem(self, name: str) -> str:
        return self.issued[name].cert_pem.decode()

    def fingerprint(self, name: str) -> str:
        return certs.fingerprint(self.issued[name].cert)

    def public_key(self, name: str) -> str:
        public = self.issued[name].key.public_key()
        return public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def install_name(self, role: str, name: str) -> str:
        """The name wlbplan gives certificate ``name`` when it trusts it as ``role``."""
        return Anchor(role, self.fingerprint(name), self.pem(name)).install_name  # type: ignore[arg-type]

    def name_of(self, fingerprint: str) -> str | None:
        """The registry name of the certificate with this fingerprint (None: not ours)."""
        return next((n for n in self.issued if self.fingerprint(n) == fingerprint), None)

    def write(self, folder: Path) -> Path:
        """Every certificate as ``folder/NAME.pem``; returns the folder."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, issued in self.issued.items():
            (folder / f"{name}.pem").write_bytes(issued.cert_pem)
        return folder


@functools.cache
def registry() -> Registry:
    return Registry(_build())


# ------------------------------------------------------------------- observed values


def trusted_name(pattern: str, cert: str, reg: Registry) -> str:
    """``wlbplan-ROLE-*`` → wlbplan's exact name for ``cert``; any other name as given."""
    match = re.fullmatch(rf"{PREFIX}({'|'.join(ROLES)})-\*", pattern)
    return reg.install_name(match.group(1), cert) if match else pattern


def name_matches(pattern: str, name: str, cert: str | None, reg: Registry) -> bool:
    """A name against a pattern from a case; ``cert`` pins ``wlbplan-ROLE-*`` exactly."""
    if cert is not None:
        return name == trusted_name(pattern, cert, reg)
    return fnmatch.fnmatchcase(name, pattern)


def _chain(names: list[str] | None, reg: Registry) -> tuple[str, ...]:
    return tuple(reg.pem(n) for n in names or ())


_SUBJECT_OIDS = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
                 "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
                 "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
                 "emailAddress": NameOID.EMAIL_ADDRESS}


def csr_pem(compact: Mapping[str, Any], reg: Registry) -> str:
    """A CSR as ``openssl req -new -subj SUBJECT -addext subjectAltName=SANS`` makes it."""
    _known(compact, {"key", "subject", "sans"}, "observed.appliance.pending_csr")
    pairs = [part.split("=", 1) for part in compact["subject"].strip("/").split("/")]
    subject = x509.Name([x509.NameAttribute(_SUBJECT_OIDS[k], v) for k, v in pairs])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    names: list[x509.GeneralName] = []
    for entry in compact.get("sans", []):
        kind, _, value = entry.partition(":")
        names.append(x509.IPAddress(ipaddress.ip_address(value)) if kind == "IP"
                     else x509.DNSName(value))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = builder.sign(reg.issued[compact["key"]].key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def appliance_facts(compact: Mapping[str, Any], target: Target, reg: Registry) -> ApplianceFacts:
    _known(compact, {"chain", "served", "key", "key_mode", "served_error", "backups",
                     "pending_key", "pending_csr"}, "observed.appliance")
    names = compact.get("chain", [])
    chain = _chain(names, reg)
    cert_path, key_path = target.wlb.paths.cert, target.wlb.paths.key
    key_state = compact.get("key", "match" if names else "missing")
    key_public: Callable[[], str | None] = {
        "match": lambda: reg.public_key(names[0]),
        "mismatch": lambda: reg.public_key("corp_ca"),
        "missing": lambda: None,
    }[key_state]
    public = key_public()
    backups = tuple(str(PurePosixPath(cert_path).parent / b) for b in compact.get("backups", []))
    return ApplianceFacts(
        cert=CertFile(path=str(cert_path), present=bool(chain), chain=chain,
                      error=None if chain else "missing"),
        key=KeyFile(path=str(key_path), present=public is not None,
                    mode=str(compact.get("key_mode", "600")) if public else None,
                    owner="root" if public else None,
                    group="root" if public else None, public_key=public),
        served=_served(compact, names, reg),
        backups=backups,
        hostname=FQDN,
        pending_key=reg.public_key(compact["pending_key"]) if "pending_key" in compact else None,
        pending_csr=csr_pem(compact["pending_csr"], reg) if "pending_csr" in compact else None,
    )


def _served(compact: Mapping[str, Any], names: list[str], reg: Registry) -> Served:
    if "served_error" in compact:
        return Served(error=compact["served_error"])
    return Served(chain=_chain(compact.get("served", names), reg))


def pool_facts(compact: Mapping[str, Any], target: Target, reg: Registry) -> PoolFacts:
    _known(compact, {"xapi", "wlb_url", "verify", "trusted"}, "observed.pool")
    trusted = []
    for item in compact.get("trusted", []):
        _known(item, {"name", "cert", "unreadable"}, "observed.pool.trusted[]")
        trusted.append(TrustedCert(
            name=trusted_name(item["name"], item["cert"], reg),
            pem=None if item.get("unreadable") else reg.pem(item["cert"]),
        ))
    return PoolFacts(
        uuid=POOL_UUID,
        coordinator=target.pool.coordinator,
        hosts=("host-1", "host-2"),
        xapi_version=str(compact.get("xapi", CURRENT_XAPI)),
        wlb_url=compact.get("wlb_url", target.wlb.url),
        wlb_username="wlbuser",
        wlb_enabled=True,
        wlb_verify_cert=bool(compact.get("verify", False)),
        trusted=tuple(trusted),
    )


def observed(compact: Mapping[str, Any], target: Target, reg: Registry) -> Observed:
    _known(compact, {"appliance", "pool"}, "observed")
    return Observed(
        target=target.name,
        appliance=appliance_facts(compact.get("appliance", {}), target, reg),
        pool=pool_facts(compact.get("pool", {}), target, reg),
    )


def _known(data: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = set(data) - keys
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(keys)})")
