"""Pool facts from the coordinator: WLB settings, xapi version, hosts, installed CA certs.

The certificates' content is read from the coordinator's trust store so that trust can
be matched by fingerprint whatever name it was installed under.
"""

from __future__ import annotations

import ipaddress
import re

from wlbplan import certs
from wlbplan.errors import RemoteCommandError, VerifyError
from wlbplan.inspect.script import RawFact, build, fact
from wlbplan.model.checks import NameLookup
from wlbplan.model.command import Raw, sh
from wlbplan.model.lock import LOCK_KEY, LockInfo, lock_path, parse_lock
from wlbplan.model.names import file_name_problem, shell_skip_unsafe_file_name
from wlbplan.model.observed import CaCommands, PoolFacts, TrustedCert
from wlbplan.model.spec import Target, is_ip_literal

PARAMS = ("wlb-url", "wlb-username", "wlb-enabled", "wlb-verify-cert", "master")
POOL_RECORD = "pool.params"
CA_PROBE = "pool-install-ca-certificate"
LOCK = "lock"
LOCK_IN_POOL = "lock.key"
LOOKUP = "wlb.getent"
# getent(1): exit 2 is "one or more keys not found"; 0 found. Anything else (no getent,
# a broken resolver configuration) says nothing about the name.
_NOT_FOUND = 2
MAX_ADDRESSES = 64
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.ASCII)
# One line of `xe <class>-param-list` (cli_operations.ml print_field, cli_printer.ml
# multi_line_record): the name padded with spaces, its access marker ( RO, RW, MRO, MRW,
# SRO, SRW), "[DEPRECATED]" for some fields, then ": " and the value as xapi renders it.
_FIELD = re.compile(r" *(?P<name>[A-Za-z0-9_.-]+) \((?P<access>[ MS]R[OW])\)"
                    r"(?: \[DEPRECATED\])? *: ?(?P<value>.*)", re.ASCII)
# What the script itself needs of that record (the coordinator's uuid for host-param-get,
# wlb-url's host for getent), cut out in the shell; parse() reads the record on its own.
_FROM_RECORD = ("master=$(printf '%s\\n' \"$record\" | "
                "sed -n 's/^ *master ([ MS]R[OW])[^:]*: //p')",
                "wlburl=$(printf '%s\\n' \"$record\" | "
                "sed -n 's/^ *wlb-url ([ MS]R[OW])[^:]*: //p')")


def script(target: Target) -> str:
    xe = target.pool.xe
    certs_dir = f"{str(target.pool.trust_dir).rstrip('/')}/certs/"
    uuid = Raw('uuid="$uuid"')
    lines = [fact("uuid", xe, "pool-list", "--minimal"), 'uuid=$_o',
             # Every field of the pool in one call (one xapi round trip, not one per field).
             fact(POOL_RECORD, xe, "pool-param-list", uuid), 'record=$_o', *_FROM_RECORD]
    # How the coordinator resolves the host xapi connects WLB by.
    lines += _lookup_lines(target)
    lines += [
        fact("xapi", xe, "host-param-get", Raw('uuid="$master"'), "param-name=software-version",
             "param-key=xapi"),
        fact("hosts", xe, "host-list", "--minimal"),
        # Which CA certificate commands this xapi has (1.290 added the current ones).
        fact("help.ca", xe, "help", CA_PROBE),
        # The apply lock: not a fact a plan is made against, read in the same round trip:
        # the pool's other_config key (a run over XenAPI holds only that), and the file.
        fact(LOCK_IN_POOL, xe, "pool-param-get", uuid, "param-name=other-config",
             f"param-key={LOCK_KEY}"),
        fact(LOCK, "cat", "--", lock_path(target)),
        fact("certs", xe, "pool-certificate-list", "--minimal"),
        # Globbing off: the names are split on commas only, never expanded.
        "set -f",
        "for _c in $(printf '%s' \"$_o\" | tr ',' ' '); do",
        # A name that is not one file name never reaches the path (parse refuses it).
        "  " + shell_skip_unsafe_file_name("_c"),
        "  " + fact(Raw('"ca:$_c"'), "cat", "--", Raw(sh(certs_dir) + '"$_c"')),
        "done",
    ]
    return build(lines)


def _lookup_lines(target: Target) -> list[str]:
    """``getent hosts HOST`` for wlb-url's host (``[v6]:port`` or ``name:port``), when
    there is one; the host is cut out by the shell's own expansions, never re-parsed."""
    return [
        'wlbhost=${wlburl%:*}; wlbhost=${wlbhost#\\[}; wlbhost=${wlbhost%\\]}',
        'if [ -n "$wlbhost" ]; then ' + fact(LOOKUP, target.pool.getent, "hosts", "--",
                                              Raw('"$wlbhost"')) + '; fi',
    ]


def _value(raw: dict[str, RawFact], name: str, target: Target) -> str:
    got = raw.get(name)
    if got is None:
        raise RemoteCommandError(
            f"{target.name}: the coordinator did not report {name!r}; is {target.pool.xe!r} "
            "the xe CLI of a pool coordinator?"
        )
    if not got.ok:
        raise RemoteCommandError(f"{target.name}: xe failed reading {name}: {got.problem()}")
    return got.output.strip()


def _uuid(text: str, what: str, target: Target) -> str:
    if not _UUID.fullmatch(text):
        raise _unusable(target, what, text, "a UUID")
    return text


def _bool(text: str, what: str, target: Target) -> bool:
    # xe prints booleans as true/false; anything else (nothing at all, say) is not a fact.
    if text not in ("true", "false"):
        raise _unusable(target, what, text, "true or false")
    return text == "true"


def _unusable(target: Target, what: str, text: str, wanted: str) -> RemoteCommandError:
    got = f"{text[:80]!r}" if text else "nothing"
    return RemoteCommandError(
        f"{target.name}: the coordinator's {target.pool.xe!r} printed {got} for {what}, "
        f"not {wanted}; is it the xe CLI of a pool coordinator?")


def parse_param_list(text: str) -> dict[str, str]:
    """``xe <class>-param-list``'s one record: each field's name and value as printed.

    A value can hold line breaks (a description, a user's text): a line that is not a
    field's continues the value before it. So a value can also hold a line that looks
    like a field: a name seen twice is refused (ValueError) rather than guessed, and the
    fields wlbplan reads are always in the record, so a forged one is always a repeat.
    """
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        match = _FIELD.fullmatch(line)
        if match is None:
            if last is None:
                if line.strip():
                    raise ValueError(f"{line[:80]!r} before any field")
                continue
            last.append(line)
            continue
        name = match["name"]
        if name in fields:
            raise ValueError(f"the field {name!r} twice")
        last = fields[name] = [match["value"]]
    return {name: "\n".join(lines).strip() for name, lines in fields.items()}


def _pool_record(raw: dict[str, RawFact], target: Target) -> dict[str, str]:
    text = _value(raw, POOL_RECORD, target)
    try:
        record = parse_param_list(text)
    except ValueError as err:
        raise _unusable(target, "pool-param-list", text,
                        f"one record of fields ({err})") from None
    missing = [p for p in PARAMS if p not in record]
    if missing:
        raise _unusable(target, "pool-param-list", text,
                        f"a record with the field {missing[0]!r}")
    return record


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted(n for n in (p.strip() for p in text.replace("\n", ",").split(",")) if n))


def _ca_names(text: str, target: Target) -> tuple[str, ...]:
    """The installed CA certificates' names; each becomes a file name in the trust store,
    so one that could leave its folder refuses the pool (xapi itself never makes one)."""
    names = _names(text)
    for name in names:
        problem = file_name_problem(name)
        if problem:
            raise RemoteCommandError(
                f"{target.name}: the coordinator lists a CA certificate named {name[:80]!r}, "
                f"which is not a safe certificate name: it {problem} (xapi's own rule). "
                "wlbplan will not use this pool until that entry is removed.")
    return names


def parse(raw: dict[str, RawFact], target: Target) -> PoolFacts:
    def value(name: str) -> str:
        return _value(raw, name, target)

    # The pool's uuid first: every later command was given it, so when it is wrong (a
    # garbage or an enormous output) what they said is only the echo of that.
    uuid = _uuid(value("uuid"), "pool-list", target)
    names = _ca_names(value("certs"), target)
    record = _pool_record(raw, target)
    coordinator = _uuid(record["master"], "the pool's master", target)
    hosts = tuple(_uuid(h, "a host", target) for h in _names(value("hosts")))
    if coordinator not in hosts:
        raise _unusable(target, "host-list", ",".join(hosts), "a list with the coordinator")
    xapi = value("xapi")
    if not xapi:
        raise _unusable(target, "the xapi version", xapi, "a version")
    return PoolFacts(
        uuid=uuid,
        coordinator=coordinator,
        hosts=hosts,
        xapi_version=xapi,
        wlb_url=record["wlb-url"],
        wlb_username=record["wlb-username"],
        wlb_enabled=_bool(record["wlb-enabled"], "wlb-enabled", target),
        wlb_verify_cert=_bool(record["wlb-verify-cert"], "wlb-verify-cert", target),
        trusted=tuple(_trusted(name, raw.get(f"ca:{name}")) for name in names),
        ca_commands=_ca_commands(value("help.ca"), target),
    )


def _ca_commands(text: str, target: Target) -> CaCommands:
    """From ``xe help pool-install-ca-certificate`` (cli_frontend.ml rio_help): the
    command's record when xapi has it, ``Unknown command '…'`` (exit 0) when it does not."""
    lines = [line.strip() for line in text.splitlines()]
    if f"Unknown command '{CA_PROBE}'" in lines:
        return "pre-1.290"
    if any(re.fullmatch(rf"command name\s*:\s*{re.escape(CA_PROBE)}", line) for line in lines):
        return "current"
    raise _unusable(target, f"`xe help {CA_PROBE}`", text,
                    "that command's help or `Unknown command` (which CA certificate commands "
                    "the pool has)")


def _trusted(name: str, raw: RawFact | None) -> TrustedCert:
    if raw is None or not raw.ok:
        return TrustedCert(name=name)
    try:
        found = certs.parse_pem_bundle(raw.output.encode())
    except VerifyError:
        return TrustedCert(name=name)
    pem = certs.to_pem(found[:1]).decode() if found else None
    return TrustedCert(name=name, pem=pem)


def parse_held_lock(raw: dict[str, RawFact], target: Target) -> LockInfo | None:
    """The apply lock the script read, as ``run.lock.read_lock`` reads it: the file, else
    the pool's other_config key; None when neither is there (``cat`` or xe failed), else
    its record (or an unreadable one)."""
    for name in (LOCK, LOCK_IN_POOL):
        got = raw.get(name)
        if got is not None and got.ok:
            return parse_lock(got.output, target.name)
    return None


def parse_lookup(raw: dict[str, RawFact], wlb_host: str) -> NameLookup | None:
    """What ``getent hosts`` said of WLB's host name on the coordinator: None when it was
    not asked (no wlb-url, an IP literal) or gave no verdict on the name."""
    got = raw.get(LOOKUP)
    if got is None or not wlb_host or is_ip_literal(wlb_host):
        return None
    if got.exit_code == _NOT_FOUND:
        return NameLookup(name=wlb_host, found=False)
    if not got.ok:
        return None
    addresses = _addresses(got.output)
    return NameLookup(name=wlb_host, found=True, addresses=addresses) if addresses else None


def _addresses(text: str) -> tuple[str, ...]:
    """The first field of each ``ADDRESS NAME [ALIAS…]`` line that is an IP address, in
    its canonical form; anything else on the line, or any other line, is ignored."""
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            address = str(ipaddress.ip_address(fields[0]))
        except ValueError:
            continue
        if address not in found:
            found.append(address)
        if len(found) == MAX_ADDRESSES:
            break
    return tuple(found)
