"""Types and small helpers shared by the certificate modules."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from typing import Final, Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

Mode = Literal["current", "legacy"]
# "checkHost": how stunnel's checkHost matches, X509_check_host() - an IP literal is
# compared with DNS SANs and, failing any, the CN; IP SANs are never consulted.
# "auto": an IP literal is matched against IP SANs (Python's ssl, curl, browsers).
NameCheck = Literal["checkHost", "auto"]
Severity = Literal["error", "warning"]

_MAX_BUNDLE: Final = 10 * 1024 * 1024
_OPENSSL_TIMEOUT: Final = 30.0

_EKU_NAMES: Final[Mapping[x509.ObjectIdentifier, str]] = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}



def _when(at: dt.datetime | None) -> dt.datetime:
    """``at`` in UTC; now when None; a naive datetime is taken to be UTC."""
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ip_or_none(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None
