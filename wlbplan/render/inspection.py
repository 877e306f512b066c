"""What ``wlbplan inspect`` prints: the observed facts, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.text import Text

from wlbplan import certs
from wlbplan.core.diff import cert_summary
from wlbplan.model.observed import Observed, Uninspected
from wlbplan.render.console import make_console
from wlbplan.render.planjson import redact_text
from wlbplan.render.safe import safe

FORMAT_VERSION = "1.1"
"""1.1: ``unreachable`` lists the targets that could not be inspected (1.0 failed whole)."""

Inspected = Observed | Uninspected


def _leaf_fp(chain: Sequence[str]) -> str | None:
    return cert_summary(chain[0])["fingerprint"] if chain else None


def _key_matches(observed: Observed) -> bool | None:
    key, chain = observed.appliance.key, observed.appliance.cert.chain
    if not key.public_key or not chain:
        return None
    leaf = certs.parse_pem_bundle(chain[0].encode())[0]
    return certs.key_matches(leaf, key.public_key.encode())


def to_json(results: Sequence[Inspected]) -> str:
    """``targets``: the facts of each target inspected; ``unreachable``: each one that
    could not be, and why. Both in the spec's order. An entry of ``targets`` keeps 1.0's
    shape: a reader of 1.0 (``wlbplan import --from-inspect``) reads it as it did."""
    targets: list[dict[str, Any]] = []
    for item in results:
        if isinstance(item, Uninspected):
            continue
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
    unreachable = [{"target": item.target, "error": redact_text(item.error)}
                   for item in results if isinstance(item, Uninspected)]
    return json.dumps({"format_version": FORMAT_VERSION, "targets": targets,
                       "unreachable": unreachable}, indent=2) + "\n"


def _all_pems(item: Observed) -> list[str]:
    pems = [*item.appliance.cert.chain, *item.appliance.served.chain]
    pems += [t.pem for t in item.pool.trusted if t.pem]
    return list(dict.fromkeys(pems))


Styled = str | tuple[str, str]
"""A piece of a line: plain text, or (text, rich style). Never markup: a subject such as
``[bold]`` or ``\x1b[2J`` prints as it is, escaped by ``safe``."""


def _line(*pieces: Styled) -> Text:
    return Text.assemble(*pieces)


def _cert_lines(pem: str, indent: str) -> list[Text]:
    s = cert_summary(pem)
    sans = ", ".join(s["sans"]) or "none"
    return [
        _line(f"{indent}subject     {safe(s['subject'])}"),
        _line(f"{indent}SANs        {safe(sans)}"),
        _line(f"{indent}issuer      {safe(s['issuer'])}"),
        _line(f"{indent}serial      {safe(str(s['serial']))}"),
        _line(f"{indent}not after   {safe(str(s['not_after']))}"),
        _line(f"{indent}key         {safe(str(s['key']))}"),
        _line(f"{indent}sha256      {s['fingerprint']}"),
    ]


def _appliance(item: Observed) -> list[Text]:
    app = item.appliance
    lines = [_line("  ", ("appliance", "bold"),
                   f" ({safe(app.hostname)})" if app.hostname else "")]
    cert = app.cert
    path = safe(cert.path)
    if not cert.present:
        lines.append(_line(f"    certificate {path}: ", ("missing", "red")))
    elif cert.error:
        lines.append(_line(f"    certificate {path}: ", (safe(cert.error), "red")))
    for n, pem in enumerate(cert.chain):
        lines.append(_line(f"    certificate {path} [{n}]"))
        lines += _cert_lines(pem, "      ")
    key = app.key
    if not key.present:
        lines.append(_line(f"    key {safe(key.path)}: ", ("missing", "red")))
    else:
        verdicts: dict[bool | None, Styled] = {
            True: "matches the certificate", False: ("does NOT match the certificate", "red"),
            None: "match unknown"}
        match = verdicts[_key_matches(item)]
        lines.append(_line(f"    key {safe(key.path)}: mode {safe(str(key.mode))}, "
                           f"{safe(str(key.owner))}:{safe(str(key.group))}, ", match,
                           f" ({safe(key.error)})" if key.error else ""))
    lines.append(_line("    backups " + (", ".join(safe(b) for b in app.backups) or "none")))
    served = app.served
    if served.error:
        lines.append(_line("    served  ", (safe(served.error), "red")))
    else:
        same = _leaf_fp(served.chain) == _leaf_fp(cert.chain)
        state: Styled = "the certificate file's leaf"
        if not same:
            state = ("a different certificate than the file (restart pending?)", "yellow")
        lines.append(_line(f"    served  {len(served.chain)} certificate(s); leaf is ", state))
    return lines


def _pool(item: Observed) -> list[Text]:
    pool = item.pool
    mode = "chain (xapi >= 24.40)" if pool.chain_verification else \
        "leaf must be trusted (xapi < 24.40)"
    lines = [
        _line("  ", ("pool", "bold"), f" {safe(pool.uuid)} ({len(pool.hosts)} hosts)"),
        _line(f"    wlb-url          {safe(pool.wlb_url) or '(unset)'}"),
        _line(f"    wlb-enabled      {str(pool.wlb_enabled).lower()}"),
        _line(f"    wlb-verify-cert  {str(pool.wlb_verify_cert).lower()}"),
        _line(f"    xapi             {safe(str(pool.xapi_version))}; verifies {mode}"),
    ]
    if pool.ca_commands == "pre-1.290":
        lines.append(_line("    CA commands      pool-certificate-install / -uninstall "
                           "(xapi < 1.290)"))
    if not pool.trusted:
        lines.append(_line("    CA certificates  none"))
    for trusted in pool.trusted:
        lines.append(_line(f"    CA certificate   {safe(trusted.name)}"))
        if trusted.pem:
            lines += _cert_lines(trusted.pem, "      ")
        elif trusted.fingerprint:
            lines.append(_line(f"      sha256      {safe(trusted.fingerprint)} ",
                               ("(as the pool reports it; its content is not given)", "dim")))
        elif trusted.by_name:
            lines.append(_line("      ", ("(the pool gives its name only: no content, no "
                                          "fingerprint)", "dim")))
        else:
            lines.append(_line("      ", ("(content could not be read)", "yellow")))
    return lines


def to_text(results: Sequence[Inspected], color: bool = False) -> str:
    console, buffer = make_console(color)
    for item in results:
        console.print(Text(safe(item.target), style="bold"))
        lines = ([_line("  ", ("could not be inspected: ", "red"), safe(item.error))]
                 if isinstance(item, Uninspected) else [*_appliance(item), *_pool(item)])
        for line in lines:
            console.print(line)
        console.print()
    return buffer.getvalue()
