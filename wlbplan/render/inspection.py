"""What ``wlbplan inspect`` prints: the observed facts, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from wlbplan import certs
from wlbplan.core.diff import cert_summary
from wlbplan.model.observed import Observed
from wlbplan.render.console import make_console

FORMAT_VERSION = "1.0"


def _leaf_fp(chain: Sequence[str]) -> str | None:
    return cert_summary(chain[0])["fingerprint"] if chain else None


def _key_matches(observed: Observed) -> bool | None:
    key, chain = observed.appliance.key, observed.appliance.cert.chain
    if not key.public_key or not chain:
        return None
    leaf = certs.parse_pem_bundle(chain[0].encode())[0]
    return certs.key_matches(leaf, key.public_key.encode())


def to_json(observed: Sequence[Observed]) -> str:
    targets: list[dict[str, Any]] = []
    for item in observed:
        data = item.to_json()
        data["observed_digest"] = item.digest()
        data["derived"] = {
            "key_matches_certificate": _key_matches(item),
            "served_matches_file": _leaf_fp(item.appliance.served.chain)
            == _leaf_fp(item.appliance.cert.chain),
            "chain_verification": item.pool.chain_verification,
            "certificates": {
                s["fingerprint"]: s for s in (cert_summary(p) for p in _all_pems(item))
            },
        }
        targets.append(data)
    return json.dumps({"format_version": FORMAT_VERSION, "targets": targets}, indent=2) + "\n"


def _all_pems(item: Observed) -> list[str]:
    pems = [*item.appliance.cert.chain, *item.appliance.served.chain]
    pems += [t.pem for t in item.pool.trusted if t.pem]
    return list(dict.fromkeys(pems))


def _cert_lines(pem: str, indent: str) -> list[str]:
    s = cert_summary(pem)
    sans = ", ".join(s["sans"]) or "none"
    return [
        f"{indent}subject     {escape(s['subject'])}",
        f"{indent}SANs        {escape(sans)}",
        f"{indent}issuer      {escape(s['issuer'])}",
        f"{indent}serial      {s['serial']}",
        f"{indent}not after   {s['not_after']}",
        f"{indent}key         {s['key']}",
        f"{indent}sha256      {s['fingerprint']}",
    ]


def _appliance(item: Observed) -> list[str]:
    app = item.appliance
    lines = ["  [bold]appliance[/bold]" + (f" ({escape(app.hostname)})" if app.hostname else "")]
    cert = app.cert
    if not cert.present:
        lines.append(f"    certificate {escape(cert.path)}: [red]missing[/red]")
    elif cert.error:
        lines.append(f"    certificate {escape(cert.path)}: [red]{escape(cert.error)}[/red]")
    for n, pem in enumerate(cert.chain):
        lines.append(f"    certificate {escape(cert.path)} [{n}]")
        lines += _cert_lines(pem, "      ")
    key = app.key
    if not key.present:
        lines.append(f"    key {escape(key.path)}: [red]missing[/red]")
    else:
        match = {True: "matches the certificate", False: "[red]does NOT match the "
                 "certificate[/red]", None: "match unknown"}[_key_matches(item)]
        lines.append(f"    key {escape(key.path)}: mode {key.mode}, {key.owner}:{key.group}, "
                     f"{match}" + (f" ({escape(key.error)})" if key.error else ""))
    lines.append("    backups " + (", ".join(escape(b) for b in app.backups) or "none"))
    served = app.served
    if served.error:
        lines.append(f"    served  [red]{escape(served.error)}[/red]")
    else:
        same = _leaf_fp(served.chain) == _leaf_fp(cert.chain)
        state = "the certificate file's leaf" if same else "[yellow]a different certificate " \
            "than the file (restart pending?)[/yellow]"
        lines.append(f"    served  {len(served.chain)} certificate(s); leaf is {state}")
    return lines


def _pool(item: Observed) -> list[str]:
    pool = item.pool
    mode = "chain (xapi >= 24.40)" if pool.chain_verification else \
        "leaf must be trusted (xapi < 24.40)"
    lines = [
        f"  [bold]pool[/bold] {pool.uuid} ({len(pool.hosts)} hosts)",
        f"    wlb-url          {escape(pool.wlb_url) or '(unset)'}",
        f"    wlb-enabled      {str(pool.wlb_enabled).lower()}",
        f"    wlb-verify-cert  {str(pool.wlb_verify_cert).lower()}",
        f"    xapi             {pool.xapi_version}; verifies {mode}",
    ]
    if not pool.trusted:
        lines.append("    CA certificates  none")
    for trusted in pool.trusted:
        lines.append(f"    CA certificate   {escape(trusted.name)}")
        if trusted.pem:
            lines += _cert_lines(trusted.pem, "      ")
        else:
            lines.append("      [yellow](content could not be read)[/yellow]")
    return lines


def to_text(observed: Sequence[Observed], color: bool = False) -> str:
    console, buffer = make_console(color)
    for item in observed:
        console.print(f"[bold]{escape(item.target)}[/bold]")
        for line in [*_appliance(item), *_pool(item)]:
            console.print(line)
        console.print()
    return buffer.getvalue()
