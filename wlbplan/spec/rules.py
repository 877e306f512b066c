"""Semantic rules: what a JSON Schema cannot say (CN vs address, IP SAN, signed needs
root ...). Each rule reads only the parts that passed the schema."""

from __future__ import annotations

import difflib
import ipaddress
import posixpath
import re
from typing import Any

from wlbplan.model.ignore import parse_date
from wlbplan.model.names import ip_address_problem
from wlbplan.model.spec import (
    DEFAULT_CERT_PATH,
    DEFAULT_STATE_DIR,
    HOOK_PLACEHOLDERS,
    SUBJECT_MAX_LENGTH,
    Policy,
    is_ip_literal,
)
from wlbplan.spec.report import Data, PathT, Report

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def host_problem(text: str) -> str | None:
    """Why ``text`` is neither an IP literal nor a DNS name, or None when it is one."""
    if is_ip_literal(text):
        return ip_address_problem(text)  # a scoped IPv6 address is refused, saying why
    if ":" in text or "/" in text:
        return "must be a bare host name or IP address (put the port in `port`, no scheme)"
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return "is not a valid host name"
    return None


def dns_key(name: str) -> str:
    return name.lower().rstrip(".")


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...`` or None when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


class _Clean:
    """Which parts passed the schema: semantic rules only read parts that did."""

    def __init__(self, dirty: set[PathT]) -> None:
        self.dirty = dirty

    def __call__(self, prefix: PathT) -> bool:
        return not any(path[: len(prefix)] == prefix for path in self.dirty)


def check_semantics(data: Any, report: Report, dirty: set[PathT]) -> None:
    if not isinstance(data, dict):
        return
    clean = _Clean(dirty)
    if isinstance(data.get("resolve"), dict):
        _check_resolve(data["resolve"], report, clean)
    targets = data.get("targets")
    if not isinstance(targets, list):
        return
    _check_ignores(data, targets, report, clean)
    _check_unique_names(targets, report)
    _check_one_target_per_host(data, targets, report, clean)
    min_rsa = _min_rsa_bits(data)
    for index, target in enumerate(targets):
        if isinstance(target, dict):
            _check_target(target, ("targets", index), report, min_rsa, clean)


def _check_ignores(data: Data, targets: list[Any], report: Report, clean: _Clean) -> None:
    """``audit.ignore``: a real day in ``until``, a target the spec has in ``target``."""
    ignores = _dig(data, "audit", "ignore")
    if not isinstance(ignores, list):
        return
    names = [name for t in targets if isinstance(name := _dig(t, "name"), str)]
    for index, entry in enumerate(ignores):
        path = ("audit", "ignore", index)
        if not isinstance(entry, dict) or not clean(path):
            continue
        if "until" in entry:
            try:
                parse_date(entry["until"])
            except ValueError as err:
                report.error((*path, "until"), str(err))
        target = entry.get("target")
        if target is not None and target not in names:
            close = difflib.get_close_matches(target, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (targets: {', '.join(names)})"
            report.error((*path, "target"), f"no target named '{target}'{hint}")


def _min_rsa_bits(data: Data) -> int:
    bits = _dig(data, "policy", "min_rsa_bits")
    return bits if isinstance(bits, int) and not isinstance(bits, bool) else Policy().min_rsa_bits


def _check_resolve(resolve: Data, report: Report, clean: _Clean) -> None:
    for host, address in resolve.items():
        if not clean(("resolve", host)):
            continue
        problem = host_problem(host)
        if problem:
            report.error(("resolve", host), f"host name '{host}' {problem}", on_key=True)
        problem = ip_address_problem(address)
        if problem:
            report.error(
                ("resolve", host),
                f"'{address}' {problem}",
                "resolve maps a host name to an IPv4 or IPv6 literal, like curl --resolve.",
            )


def _check_unique_names(targets: list[Any], report: Report) -> None:
    first: dict[str, int] = {}
    for index, target in enumerate(targets):
        name = _dig(target, "name")
        if not isinstance(name, str):
            continue
        if name in first:
            line = report.line_of(("targets", first[name], "name"))
            report.error(
                ("targets", index, "name"), f"duplicate target name '{name}' (first at line {line})"
            )
        else:
            first[name] = index


def _check_one_target_per_host(data: Data, targets: list[Any], report: Report,
                                clean: _Clean) -> None:
    """Two targets for one pool take the same apply lock, and two for one appliance write
    the same files: each pool and each appliance belongs to one target."""
    first: dict[tuple[object, ...], int] = {}
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or not clean(("targets", index)):
            continue
        for side, identity, what in _host_identities(data, target):
            key = (side, *identity)
            if key not in first:
                first[key] = index
                continue
            line = report.line_of(("targets", first[key], side))
            report.error(
                ("targets", index, side),
                f"targets[{first[key]}] (line {line}) already manages this {what}",
                "One pool or one appliance per target: two targets would take the same "
                "apply lock or write the same files. Merge them, or point one elsewhere.",
                on_key=True)


def _host_identities(data: Data, target: Data) -> list[tuple[str, tuple[object, ...], str]]:
    pool, wlb = target.get("pool", {}), target.get("wlb", {})
    cert = posixpath.normpath(_dig(wlb, "paths", "cert") or str(DEFAULT_CERT_PATH))
    appliance = wlb.get("ssh_host") or wlb.get("address", "")
    return [_pool_identity(data, target, pool),
            ("wlb", (*_host(data, target, wlb.get("connection", "ssh"), appliance), cert),
             f"appliance ({appliance}, certificate {cert})")]


def _pool_identity(data: Data, target: Data,
                   pool: Data) -> tuple[str, tuple[object, ...], str]:
    coordinator = pool.get("coordinator", "")
    if pool.get("connector", "ssh") == "xenapi":
        # Over XenAPI the lock is in the pool itself: one API endpoint, one pool.
        from urllib.parse import urlsplit

        url = pool.get("url") or f"https://{coordinator}"
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or 443
        except ValueError:
            return ("pool", ("xenapi", url), f"pool (XenAPI {url})")
        return ("pool", ("xenapi", *_resolved(data, host), port), f"pool (XenAPI {url})")
    state_dir = posixpath.normpath(pool.get("state_dir", str(DEFAULT_STATE_DIR)))
    xe = pool.get("xe", "xe")
    coordinator = pool.get("ssh_host") or coordinator
    return ("pool", (*_host(data, target, pool.get("connection", "ssh"), coordinator), xe,
                     state_dir),
            f"pool (coordinator {coordinator}, xe {xe}, state_dir {state_dir})")


def _resolved(data: Data, name: str) -> tuple[str]:
    """``name`` after ``resolve``, compared as DNS does (an IP in its compressed form)."""
    resolve = _dig(data, "resolve")
    resolve = {dns_key(k): v for k, v in resolve.items() if isinstance(v, str)} \
        if isinstance(resolve, dict) else {}
    address = resolve.get(dns_key(name), name)
    if is_ip_literal(address):
        address = ipaddress.ip_address(address).compressed
    return (dns_key(address),)


def _host(data: Data, target: Data, connection: str, name: str) -> tuple[object, ...]:
    """Where commands for a host run: this machine, or an SSH address and port (after
    ``resolve``; names compared as DNS does)."""
    if connection == "local":
        return ("local",)
    resolve = _dig(data, "resolve")
    resolve = {dns_key(k): v for k, v in resolve.items() if isinstance(v, str)} \
        if isinstance(resolve, dict) else {}
    address = resolve.get(dns_key(name), name)
    port = _dig(target, "ssh", "port") or _dig(data, "defaults", "ssh", "port") or 22
    port = port if isinstance(port, int) else str(port)  # a wrong type was reported already
    if is_ip_literal(address):
        address = ipaddress.ip_address(address).compressed
    return ("ssh", dns_key(address), port)


def _check_target(target: Data, path: PathT, report: Report, min_rsa: int, clean: _Clean) -> None:
    """Rules per target; each reads only parts that passed the schema, so one typo
    elsewhere in the target does not hide these errors."""
    _check_hosts(target, path, report, clean)
    pool = target.get("pool")
    if isinstance(pool, dict) and clean((*path, "pool")):
        _check_connector(pool, (*path, "pool"), report)
    address = _dig(target, "wlb", "address")
    if not isinstance(address, str) or not clean((*path, "wlb", "address")):
        return
    if is_ip_literal(address):
        report.warning(
            (*path, "wlb", "address"),
            "the pool reaches WLB by IP address; reconnect it by FQDN",
            "With wlb-verify-cert on, the pool checks the certificate against the host part "
            "of wlb-url; a name is what CA-signed certificates carry (the vendor procedure).",
        )
    certificate = target.get("certificate")
    if not isinstance(certificate, dict):
        return
    cert_path = (*path, "certificate")
    if isinstance(certificate.get("source"), str) and clean((*cert_path, "source")):
        _check_source(certificate, cert_path, report, clean)
    request = certificate.get("request")
    if isinstance(request, dict):
        _check_request(request, address, (*cert_path, "request"), report, min_rsa, clean)


_HOST_KEYS = (
    ("pool", "coordinator"),
    ("pool", "ssh_host"),
    ("wlb", "address"),
    ("wlb", "ssh_host"),
)


def _check_hosts(target: Data, path: PathT, report: Report, clean: _Clean) -> None:
    for side, key in _HOST_KEYS:
        value = _dig(target, side, key)
        if not isinstance(value, str) or not clean((*path, side, key)):
            continue
        problem = host_problem(value)
        if problem:
            report.error((*path, side, key), f"'{value}' {problem}")


_SSH_ONLY = ("xe", "getent", "connection", "ssh_host", "trust_dir", "state_dir")
_XENAPI_ONLY = ("url", "credentials", "tls")


def _check_connector(pool: Data, path: PathT, report: Report) -> None:
    """What each connector uses, and that a XenAPI login is given and kept private."""
    xenapi = pool.get("connector", "ssh") == "xenapi"
    for key in _SSH_ONLY if xenapi else _XENAPI_ONLY:
        if key in pool:
            used = "ssh" if xenapi else "xenapi"
            report.error((*path, key), f"'{key}' is used only with connector: {used}",
                         "Over XenAPI wlbplan calls the pool's API at `url`; over SSH it "
                         "runs xe on the coordinator. Remove the key, or change connector.",
                         on_key=True)
    if not xenapi:
        return
    if "credentials" not in pool:
        report.error((*path, "connector"), "connector: xenapi needs 'credentials' "
                     "(username_env, password_env: the names of the environment variables "
                     "holding the pool's login)")
    if isinstance(pool.get("url"), str):
        problem = api_url_problem(pool["url"])
        if problem:
            report.error((*path, "url"), f"'{pool['url']}' {problem}")
    tls = pool.get("tls")
    if isinstance(tls, dict):
        _check_tls(tls, (*path, "tls"), report)


def api_url_problem(url: str) -> str | None:
    """Why ``url`` is not ``https://HOST[:PORT][/]``, else None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        return f"is not a URL ({err})"
    if parts.scheme != "https":
        return "must start with https://"
    if parts.username is not None or parts.password is not None:
        return ("must not carry a login: the login goes in credentials, as names of "
                "environment variables")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be https://HOST[:PORT], with no path (XenAPI answers at / and /RPC2)"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    problem = host_problem(host)
    if problem:
        return f"has host '{host}', which {problem}"
    if port == 0:
        return "has port 0"
    return None


def _check_tls(tls: Data, path: PathT, report: Report) -> None:
    given = [key for key in ("ca_file", "fingerprint_sha256") if key in tls]
    if len(given) == 2:
        report.error((*path, "fingerprint_sha256"),
                     "give ca_file or fingerprint_sha256, not both", on_key=True)
    if tls.get("insecure") is True and given:
        report.error((*path, "insecure"),
                     f"insecure: true turns off the check {given[0]} asks for; remove one",
                     on_key=True)
    elif tls.get("insecure") is True:
        report.warning((*path, "insecure"),
                       "the pool's certificate is not verified: anyone on the path can read "
                       "the XenAPI login",
                       "Every run says so. Give ca_file or fingerprint_sha256 instead.")


_CA_ONLY = ("signed", "intermediates", "root", "signer")


def _check_source(certificate: Data, path: PathT, report: Report, clean: _Clean) -> None:
    source = certificate["source"]
    if source != "acme" and "acme" in certificate:
        report.error((*path, "acme"), "'acme' applies to source: acme only", on_key=True)
    if source in ("self-signed", "acme"):
        for key in _CA_ONLY:
            if key in certificate:
                hint = " (the ACME CA's root is acme.root)" if key == "root" and \
                    source == "acme" else ""
                report.error(
                    (*path, key), f"'{key}' applies to source: ca-signed only{hint}",
                    on_key=True)
    if source == "self-signed":
        return
    if "request" not in certificate:
        report.error(
            (*path, "source"),
            f"source: {source} needs certificate.request",
            "The key and CSR are made on the appliance; request says what goes in the CSR.",
        )
    if source == "acme":
        _check_acme(certificate, path, report, clean)
        return
    for key in ("signed", "signer"):
        if key in certificate and "root" not in certificate:
            report.error(
                (*path, key),
                f"'{key}' needs 'root': the pool must be told which CA to trust",
                on_key=True,
            )
    if "signer" in certificate and "signed" not in certificate:
        report.error(
            (*path, "signer"),
            "'signer' needs 'signed': the path where the signer writes the certificate",
            on_key=True,
        )
    if "signer" in certificate and clean((*path, "signer")):
        _check_signer(certificate["signer"]["command"], (*path, "signer", "command"), report)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _check_acme(certificate: Data, path: PathT, report: Report, clean: _Clean) -> None:
    acme_path = (*path, "acme")
    if "acme" not in certificate:
        report.error((*path, "source"), "source: acme needs certificate.acme",
                     "acme says which CA issues the certificate (its directory URL and "
                     "root) and how its challenge is answered.")
        return
    names = _dig(certificate, "request", "alt_names")
    if isinstance(names, list) and clean((*path, "request", "alt_names")):
        for index, name in enumerate(names):
            if isinstance(name, str) and name.startswith("IP:"):
                report.error((*path, "request", "alt_names", index),
                             f"'{name}': a dns-01 challenge proves names, not IP "
                             "addresses; an ACME certificate carries DNS names only",
                             "The pool must reach WLB by name (wlb.address) to verify it.")
    challenge_path = (*acme_path, "challenge")
    challenge = _dig(certificate, "acme", "challenge")
    # A missing challenge (or acme of the wrong type) is reported on acme itself.
    if not isinstance(challenge, dict) or acme_path in clean.dirty or \
            not clean(challenge_path):
        return
    for hook in ("set", "clear"):
        used = {name for arg in challenge[hook] for name in _PLACEHOLDER.findall(arg)}
        for name in sorted(used - set(HOOK_PLACEHOLDERS)):
            report.error((*challenge_path, hook),
                         f"unknown placeholder {{{name}}} (use {{domain}}, {{name}} and "
                         "{value})")
    if not any("{value}" in arg for arg in challenge["set"]):
        report.error((*challenge_path, "set"),
                     "the set command must contain {value}: the TXT value it publishes")


def _check_signer(command: list[str], path: PathT, report: Report) -> None:
    used = {name for arg in command for name in _PLACEHOLDER.findall(arg)}
    for name in sorted(used - {"csr", "cert"}):
        report.error(path, f"unknown placeholder {{{name}}} (use {{csr}} and {{cert}})")
    for name in sorted({"csr", "cert"} - used):
        report.error(path, f"the command must contain {{{name}}}")


def _check_request(
    request: Data, address: str, path: PathT, report: Report, min_rsa: int, clean: _Clean
) -> None:
    names_path, key_path = (*path, "alt_names"), (*path, "key")
    if clean(names_path):
        _check_alt_names(request.get("alt_names", []), names_path, report)
    if clean(key_path):
        _check_key(request.get("key", {}), key_path, report, min_rsa)
    if clean(names_path) and clean((*path, "common_name")):
        _check_common_name(request, address, path, report)


def _check_common_name(request: Data, address: str, path: PathT, report: Report) -> None:
    common_name = request.get("common_name")
    limit = SUBJECT_MAX_LENGTH["CN"]
    if common_name is None and not is_ip_literal(address) and len(address) > limit:
        # The CN defaults to wlb.address, and must equal it: no CSR can carry this name.
        report.error(
            path,
            f"the CN would be wlb.address '{address}', {len(address)} characters; a "
            f"certificate's CN holds at most {limit} (RFC 5280 ub-common-name)",
            "Give the appliance a shorter name for the pool to reach it by.",
            on_key=True)
        return
    if is_ip_literal(address):
        _check_ip_request(common_name, request.get("alt_names", []), address, path, report)
    elif common_name is not None and dns_key(common_name) != dns_key(address):
        report.error(
            (*path, "common_name"),
            f"common_name '{common_name}' must equal wlb.address '{address}'",
            "The pool checks the certificate against the host part of its wlb-url; "
            "a CN that differs breaks the connection.",
        )


def _check_ip_request(
    common_name: str | None, alt_names: list[str], address: str, path: PathT, report: Report
) -> None:
    if common_name is None:
        report.error(
            path,
            "common_name is required when wlb.address is an IP address: "
            "the CN must be the appliance's FQDN",
            on_key=True,
        )
    elif is_ip_literal(common_name) or host_problem(common_name):
        report.error(
            (*path, "common_name"),
            f"common_name '{common_name}' must be the appliance's FQDN (a DNS name)",
        )
    wanted = ipaddress.ip_address(address)
    if not any(_san_ip(name) == wanted for name in alt_names):
        where = (*path, "alt_names") if alt_names else path
        report.error(
            where,
            f"wlb.address is the IP address {address}: add 'IP:{address}' to alt_names",
            "The vendor procedure's rule: CN = FQDN and the IP as a SAN.",
            on_key=True,
        )


def _san_ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    kind, _, value = name.partition(":")
    ok = kind == "IP" and ip_address_problem(value) is None
    return ipaddress.ip_address(value) if ok else None


def _check_alt_names(alt_names: list[str], path: PathT, report: Report) -> None:
    for index, name in enumerate(alt_names):
        kind, _, value = name.partition(":")
        problem = ip_address_problem(value) if kind == "IP" else None
        if problem:
            report.error((*path, index), f"'{value}' {problem}")
        elif kind == "DNS" and is_ip_literal(value):
            report.error((*path, index), f"'{value}' is an IP address: write IP:{value}")
        elif kind == "DNS" and host_problem(value.removeprefix("*.")):
            report.error((*path, index), f"'{value}' is not a valid DNS name")


_EC_BITS = (256, 384, 521)
_MAX_RSA_BITS = 16384


def _check_key(key: Data, path: PathT, report: Report, min_rsa: int) -> None:
    bits = key.get("bits")
    if bits is None:
        return
    if key.get("type", "rsa") == "ec":
        if bits not in _EC_BITS:
            report.error((*path, "bits"), f"EC keys are 256, 384 or 521 bits, got {bits}")
    elif bits < min_rsa:
        report.error(
            (*path, "bits"), f"RSA key of {bits} bits is below policy.min_rsa_bits ({min_rsa})"
        )
    elif bits > _MAX_RSA_BITS:
        report.error((*path, "bits"), f"RSA keys above {_MAX_RSA_BITS} bits are not supported")

