"""The appliance's fake root: certificate, key, hostname and the emulated WLB accounts."""

from __future__ import annotations

import json
import secrets

from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.pki import Issued, PrivateKey, appliance_self_signed, write_private

WLB_USERNAME = "wlbuser"


def write_certificate(layout: TargetLayout, issued: Issued) -> None:
    layout.certs_dir.mkdir(parents=True, exist_ok=True)
    write_private(layout.cert, issued.cert_pem, mode=0o644)


def write_key(layout: TargetLayout, key: PrivateKey) -> None:
    from wlbplan.lab.pki import key_pem

    write_private(layout.key, key_pem(key), mode=0o600)


def build(layout: TargetLayout, fqdn: str) -> str:
    """Make the appliance's own test certificate and WLB account; returns the WLB password."""
    issued = appliance_self_signed(fqdn)
    write_certificate(layout, issued)
    write_key(layout, issued.key)
    layout.hostname_file.parent.mkdir(parents=True, exist_ok=True)
    layout.hostname_file.write_text(fqdn.split(".", 1)[0] + "\n")
    password = secrets.token_urlsafe(18)
    write_private(
        layout.wlb_accounts,
        json.dumps({"username": WLB_USERNAME, "password": password}).encode(),
    )
    return password
