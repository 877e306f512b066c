"""Appliance facts: the certificate file, the key (public half only), backups, what is served.

The private key never leaves the appliance: ``openssl pkey -pubout`` runs there and only
the public key comes back, which is all a key-to-certificate match needs.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from cryptography import x509

from wlbplan import certs
from wlbplan.core.steps.appliance import OLD, pending_csr, pending_key
from wlbplan.core.stunnel_conf import Served as StunnelServes
from wlbplan.core.stunnel_conf import served_files
from wlbplan.errors import VerifyError
from wlbplan.inspect.script import RawFact, build, fact
from wlbplan.model.checks import ApplianceChecks, Leftover
from wlbplan.model.command import Raw
from wlbplan.model.names import join_host_port
from wlbplan.model.observed import ApplianceFacts, CertFile, KeyFile, Served
from wlbplan.model.spec import Target
from wlbplan.model.text import visible

HANDSHAKE_TIMEOUT = "10"
# Print only complete certificate blocks: a block is held back until its END line, and
# any other "-----" line (a key's BEGIN, say) drops it. So no key can leave the appliance,
# not even after a certificate whose END line is missing.
_CERT_BLOCKS = (
    r'/^-----BEGIN (X509 )?CERTIFICATE-----\r?$/ { b = $0 "\n"; inb = 1; next } '
    r'inb && /^-----END (X509 )?CERTIFICATE-----\r?$/ '
    r'{ printf "%s%s\n", b, $0; inb = 0; next } '
    r'inb && /^-----/ { inb = 0; b = ""; next } '
    r'inb { b = b $0 "\n" }'
)
BACKUP_SUFFIX = "_orig"
STUNNEL_CONF = "stunnel.conf"
LEFTOVERS = "leftovers"
ADDRESSES = "addresses"
# The appliance's clock, then "MTIME PATH" for each that exists (its last change, in
# seconds since the epoch, by that same clock).
_AGES = 'date +%s; for p do [ -e "$p" ] && stat -c "%Y %n" -- "$p"; done; :'
MAX_LEFTOVERS = 100
_DAY = 86400


def script(target: Target) -> str:
    wlb = target.wlb
    cert, key = str(wlb.paths.cert), str(wlb.paths.key)
    served = ["timeout", HANDSHAKE_TIMEOUT, "openssl", "s_client", "-showcerts",
              "-connect", join_host_port("127.0.0.1", wlb.port)]
    if not wlb.address_is_ip:
        served += ["-servername", wlb.address]
    lines = [
        # Only certificate blocks leave the appliance, even when server.pem also
        # holds the private key (a layout stunnel accepts).
        fact("cert", "awk", _CERT_BLOCKS, cert),
        fact("key.stat", "stat", "-c", "%a %U %G", "--", key),
        # -inform PEM: stunnel loads the key as PEM only (SSL_CTX_use_PrivateKey_file),
        # while openssl on its own would also read a DER key and hide the problem.
        fact("key.public", "openssl", "pkey", "-inform", "PEM", "-in", key, "-pubout",
             "-passin", "pass:"),
        # Only its exit status says anything: 0 when the key is DER-encoded.
        fact("key.der", "openssl", "pkey", "-inform", "DER", "-in", key, "-noout",
             "-passin", "pass:"),
        fact("backups", Raw("_glob"), Raw(_glob_prefix(cert)), Raw(_glob_prefix(key))),
        fact("served", *served),
        fact("hostname", "hostname"),
        fact("pending.key.public", "openssl", "pkey", "-in", pending_key(target), "-pubout",
             "-passin", "pass:"),
        fact("pending.csr", "cat", "--", pending_csr(target)),
    ]
    # Checked only (audit), never planned against: leftovers with their ages, addresses.
    lines += [
        fact(LEFTOVERS, "sh", "-c", _AGES, "sh", Raw(_glob_prefix(cert)),
             Raw(_glob_prefix(key)), *_exact_leftovers(target)),
        fact(ADDRESSES, "hostname", "-I"),
    ]
    if wlb.stunnel_conf is not None:
        # Not a fact a plan is made against (checked only), read in the same round trip.
        lines.append(fact(STUNNEL_CONF, "cat", "--", str(wlb.stunnel_conf)))
    return build(lines)


def _exact_leftovers(target: Target) -> tuple[str, ...]:
    """The pending key, and what a ``--replace`` set aside (``*.wlbplan-old``)."""
    key = pending_key(target)
    return (key, key + OLD, pending_csr(target) + OLD)


def _leftover_kind(path: str, target: Target) -> str | None:
    """What ``path`` is among the leftovers the script lists, None if it is none of them
    (a name with a newline in it would otherwise pass a forged line for a file)."""
    cert, key = str(target.wlb.paths.cert), str(target.wlb.paths.key)
    if path.startswith((cert + BACKUP_SUFFIX, key + BACKUP_SUFFIX)):
        return "backup"
    if path == pending_key(target):
        return "pending key"
    if path in _exact_leftovers(target):
        return "set aside"
    return None


def parse_leftovers(raw: RawFact | None, target: Target) -> tuple[Leftover, ...]:
    """Each leftover with its age in whole days by the appliance's clock (the first line);
    a file dated in the appliance's future is 0 days old. Nothing when unreadable."""
    if raw is None or not raw.ok:
        return ()
    lines = raw.output.splitlines()
    if not lines or not re.fullmatch(r"[0-9]{1,12}", lines[0].strip()):
        return ()
    now = int(lines[0].strip())
    found: dict[str, Leftover] = {}
    for line in lines[1:]:
        match = re.fullmatch(r"([0-9]{1,12}) (/.+)", line)
        kind = _leftover_kind(match.group(2), target) if match else None
        if match is None or kind is None:
            continue
        age = max(0, now - int(match.group(1))) // _DAY
        found[match.group(2)] = Leftover(path=match.group(2), kind=kind, age_days=age)
        if len(found) == MAX_LEFTOVERS:
            break
    return tuple(found[path] for path in sorted(found))


def parse_addresses(raw: RawFact | None) -> tuple[str, ...]:
    """``hostname -I``: the appliance's addresses, canonical; anything else ignored."""
    if raw is None or not raw.ok:
        return ()
    found: list[str] = []
    for word in raw.output.split()[:MAX_LEFTOVERS]:
        try:
            address = str(ipaddress.ip_address(word.split("%")[0]))
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    return tuple(found)


def parse_checks(raw: dict[str, RawFact], target: Target) -> ApplianceChecks:
    return ApplianceChecks(leftovers=parse_leftovers(raw.get(LEFTOVERS), target),
                           addresses=parse_addresses(raw.get(ADDRESSES)))


def _glob_prefix(path: str) -> str:
    """``'/etc/ssl/certs/server.pem_orig'*``: the quoted path, then an unquoted glob."""
    return shlex.quote(path + BACKUP_SUFFIX) + "*"


def parse(raw: dict[str, RawFact], target: Target) -> ApplianceFacts:
    wlb = target.wlb
    return ApplianceFacts(
        cert=parse_cert(raw.get("cert"), str(wlb.paths.cert)),
        key=parse_key(raw.get("key.stat"), raw.get("key.public"), str(wlb.paths.key),
                      der=raw.get("key.der")),
        served=parse_served(raw.get("served")),
        backups=parse_lines(raw.get("backups")),
        hostname=_first_line(raw.get("hostname")),
        pending_key=_public_key(raw.get("pending.key.public"))[0],
        pending_csr=parse_csr(raw.get("pending.csr")),
    )


_CSR = re.compile(r"-----BEGIN CERTIFICATE REQUEST-----.+?-----END CERTIFICATE REQUEST-----",
                  re.S)


def parse_csr(raw: RawFact | None) -> str | None:
    if raw is None or not raw.ok:
        return None
    match = _CSR.search(raw.output)
    return match.group(0) + "\n" if match else None


def _missing(raw: RawFact | None) -> bool:
    return raw is None or (not raw.ok and "No such file" in raw.output)


def parse_cert(raw: RawFact | None, path: str) -> CertFile:
    if raw is None:
        return CertFile(path=path, present=False, error="not inspected")
    if _missing(raw):
        return CertFile(path=path, present=False)
    if not raw.ok:
        return CertFile(path=path, present=True, error=raw.problem())
    if not raw.output.strip():
        # The script prints complete certificate blocks only: a file cut short, empty or
        # not PEM at all leaves nothing.
        return CertFile(path=path, present=True, error="the file holds no complete PEM "
                        "certificate (empty, cut short, or not PEM)")
    try:
        chain = tuple(_pem(c) for c in certs.parse_pem_bundle(raw.output.encode()))
    except VerifyError as err:
        return CertFile(path=path, present=True, error=str(err))
    if not chain:
        return CertFile(path=path, present=True, error="the file holds no certificate")
    return CertFile(path=path, present=True, chain=chain)


def parse_key(stat: RawFact | None, public: RawFact | None, path: str,
              der: RawFact | None = None) -> KeyFile:
    if stat is None or _missing(stat):
        return KeyFile(path=path, present=False)
    if not stat.ok:
        return KeyFile(path=path, present=True, error=stat.problem())
    fields: list[str | None] = [*stat.output.split(), None, None, None]
    mode, owner, group = fields[:3]
    public_key, error = _public_key(public)
    if public_key is None and der is not None and der.ok:
        error = ("DER-encoded, and the appliance's stunnel loads PEM keys only: it will not "
                 f"start again with it (convert it: openssl pkey -inform DER -in {path} "
                 "-out NEW.pem, then put NEW.pem in its place, mode 0600)")
    return KeyFile(path=path, present=True, mode=mode, owner=owner, group=group,
                   public_key=public_key, error=error)


_PUBLIC = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


def _public_key(raw: RawFact | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, "not inspected"
    match = _PUBLIC.search(raw.output)
    if not raw.ok or match is None:
        # Never echo what openssl printed here: it read a private key file.
        return None, f"openssl could not read the key (exit {raw.exit_code})"
    return match.group(0) + "\n", None


def parse_served(raw: RawFact | None) -> Served:
    if raw is None:
        return Served(error="not inspected")
    if "-----BEGIN CERTIFICATE-----" not in raw.output:
        return Served(error=_handshake_problem(raw))
    try:
        chain = tuple(_pem(c) for c in certs.parse_pem_bundle(raw.output.encode()))
    except VerifyError as err:
        return Served(error=str(err))
    return Served(chain=chain)


# What s_client's own lines mean, in words: its raw error lines ("40772D38…:error:8000006F:
# system library:BIO_connect:…") carry thread ids and source paths no operator needs.
_PLAIN = (
    (("connection refused", "errno=111"), "nothing listens on the port (connection refused)"),
    (("no route to host", "errno=113", "network is unreachable"),
     "the port cannot be reached (no route)"),
    (("connection reset", "errno=104"), "the connection was reset during the handshake"),
    (("wrong version number", "unexpected eof", "handshake failure", "alert"),
     "the TLS handshake failed"),
)


def _handshake_problem(raw: RawFact) -> str:
    if raw.exit_code == 124:  # `timeout` ended s_client
        return f"no certificate served: no answer within {HANDSHAKE_TIMEOUT} s"
    said = raw.output.lower()
    for needles, words in _PLAIN:
        if any(n in said for n in needles):
            return f"no certificate served: {words}"
    return f"no certificate served (openssl s_client exit {raw.exit_code})"


def parse_lines(raw: RawFact | None) -> tuple[str, ...]:
    if raw is None or not raw.ok:
        return ()
    return tuple(sorted(line.strip() for line in raw.output.splitlines() if line.strip()))


def _first_line(raw: RawFact | None) -> str | None:
    if raw is None or not raw.ok:
        return None
    lines = raw.output.strip().splitlines()
    return lines[0].strip() if lines else None


def _pem(cert: x509.Certificate) -> str:
    return certs.to_pem([cert]).decode()


def parse_stunnel_conf(raw: dict[str, RawFact], target: Target) -> StunnelServes | None:
    """What the appliance's stunnel.conf loads on WLB's port (None: the spec names none)."""
    if target.wlb.stunnel_conf is None:
        return None
    got = raw.get(STUNNEL_CONF)
    if got is None:
        return StunnelServes(problem="was not read (the inspection was cut short)")
    if not got.ok:
        return StunnelServes(problem=f"cannot be read ({visible(got.output.strip())})")
    return served_files(got.output, target.wlb.port)
