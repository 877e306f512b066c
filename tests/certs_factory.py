"""Test PKIs built in memory with wlbplan.lab.pki, plus the committed openssl fixtures.

Keys are cached by label: RSA key generation dominates the cost of a certificate,
and tests only need distinct keys where they say so.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wlbplan.lab import pki

FQDN = "wlb.example.com"
IP = "10.0.0.5"
DATA = Path(__file__).parent / "data" / "certs"
DAY = dt.timedelta(days=1)


@functools.cache
def key(label: str, kind: str = "rsa", bits: int = 2048) -> pki.PrivateKey:
    return pki.make_key(kind, bits)


@dataclass(frozen=True)
class Pki:
    root: pki.Issued
    intermediate: pki.Issued
    leaf: pki.Issued

    @property
    def served(self) -> list[x509.Certificate]:
        """What a well-configured appliance serves: leaf then intermediate."""
        return [self.leaf.cert, self.intermediate.cert]


def root(label: str = "root", **kw: Any) -> pki.Issued:
    return pki.build(kw.pop("cn", "Test Root CA"), key=key(label), ca=True, **kw)


def intermediate(issuer: pki.Issued, label: str = "int", **kw: Any) -> pki.Issued:
    return pki.build(kw.pop("cn", "Int CA"), key=key(label), issuer=issuer, ca=True, **kw)


def leaf(issuer: pki.Issued | None, label: str = "leaf", **kw: Any) -> pki.Issued:
    kw.setdefault("sans", [FQDN])
    return pki.build(kw.pop("cn", FQDN), key=kw.pop("key", key(label)), issuer=issuer, **kw)


def make_pki(**leaf_kw: Any) -> Pki:
    top = root()
    middle = intermediate(top)
    return Pki(top, middle, leaf(middle, **leaf_kw))


def expired(**kw: Any) -> dict[str, Any]:
    """build() arguments for a certificate that expired ten days ago."""
    return {"not_before": pki.now() - 40 * DAY, "not_after": pki.now() - 10 * DAY, **kw}


def not_yet_valid(**kw: Any) -> dict[str, Any]:
    return {"not_before": pki.now() + 10 * DAY, "days": 365, **kw}


def appliance(fqdn: str = FQDN, **kw: Any) -> pki.Issued:
    """The lab's stand-in for `openssl req -x509`: self-signed, CA:TRUE, CN + DNS SAN."""
    return pki.appliance_self_signed(fqdn, key=key("appliance"), **kw)


def with_eku(issuer: pki.Issued, usages: list[x509.ObjectIdentifier]) -> pki.Issued:
    """A leaf whose extendedKeyUsage is exactly ``usages`` (pki.build only knows serverAuth)."""
    own = key("eku-leaf")
    now = pki.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FQDN)]))
        .issuer_name(issuer.cert.subject)
        .public_key(own.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 365 * DAY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(FQDN)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    return pki.Issued(builder.sign(issuer.key, hashes.SHA256()), own)


CLIENT_AUTH_ONLY = [ExtendedKeyUsageOID.CLIENT_AUTH]


def fixture(name: str) -> x509.Certificate:
    """One of the openssl-made PEMs from tests/data/certs (see generate.py there)."""
    return x509.load_pem_x509_certificate((DATA / name).read_bytes())
