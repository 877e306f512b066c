"""Frozen value types shared by every stage of wlbplan.

Sections: diagnostics (what validation reports), then the spec (what the user asked for).
Later stages (Observed, Change, Plan ...) add their own sections below; nothing here does
I/O, so every stage can build, compare and print these freely.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import shlex
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from wlbplan.model.ignore import Ignore
from wlbplan.model.names import join_host_port
from wlbplan.model.text import visible

# ---------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Position:
    """A place in a file: 1-based line and column (as editors count), 0-based byte offset."""

    line: int
    column: int
    byte: int


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a spec file, pointing at the YAML node it concerns.

    ``message`` is one self-sufficient line (hints such as "did you mean" included);
    ``detail`` says why the rule exists. ``path`` is the spec address, e.g.
    ``targets[0].wlb.port`` ("" for the whole document). ``start`` is None when there is
    no position to give (e.g. the file cannot be read).
    """

    severity: Severity
    filename: str
    path: str
    message: str
    detail: str = ""
    start: Position | None = None
    end: Position | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        """``FILE:LINE:COL: error: PATH: message`` — the compiler shape editors link."""
        where = self.filename
        if self.start is not None:
            where = f"{where}:{self.start.line}:{self.start.column}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        return visible(f"{where}: {self.severity}: {what}")


# ---------------------------------------------------------------------------------------
# Spec: what the user asked for (built by wlbplan.spec from a validated YAML file)
# ---------------------------------------------------------------------------------------

HostKeyPolicy = Literal["strict", "accept-new"]
Connection = Literal["ssh", "local"]
Connector = Literal["ssh", "xenapi"]
CertificateSource = Literal["self-signed", "ca-signed", "acme"]
KeyType = Literal["rsa", "ec"]

# Defaults live here once; tests check the JSON Schema's "default" keywords agree.
DEFAULT_WLB_PORT = 8012
DEFAULT_CERT_PATH = PurePosixPath("/etc/ssl/certs/server.pem")
DEFAULT_KEY_PATH = PurePosixPath("/etc/ssl/certs/server.key")
DEFAULT_RESTART = "killall stunnel; stunnel"
DEFAULT_TRUST_DIR = PurePosixPath("/etc/stunnel")
DEFAULT_STATE_DIR = PurePosixPath("/var/lib/wlbplan")
DEFAULT_LEFTOVER_DAYS = 30
DEFAULT_KEY_BITS: dict[str, int] = {"rsa": 2048, "ec": 256}
SUBJECT_FIELDS = ("C", "ST", "L", "O", "OU", "emailAddress")
# Upper bounds of subject values, in characters: RFC 5280's ub-* as OpenSSL enforces them
# (a longer value makes `openssl req` fail half-way through an apply). emailAddress:
# RFC 5280 allows 255, OpenSSL 128. The JSON Schema's maxLength keywords must agree.
SUBJECT_MAX_LENGTH: dict[str, int] = {
    "CN": 64, "C": 2, "ST": 128, "L": 128, "O": 64, "OU": 64, "emailAddress": 128,
}


def url_host(url: str) -> str:
    """The host part of a ``host:port`` wlb-url (IPv6 without its brackets); "" if none."""
    host, _, _ = url.rpartition(":")
    return host.strip("[]")


def is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SshSettings:
    """How to log in to a host. ``None`` paths mean "OpenSSH's own default"."""

    user: str = "root"
    port: int = 22
    identity_file: Path | None = None
    known_hosts: Path | None = None
    host_key_policy: HostKeyPolicy = "strict"
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Policy:
    """Thresholds for plan and audit warnings about the served certificate."""

    min_days_left: int = 30
    min_rsa_bits: int = 2048
    forbid_sha1: bool = True


@dataclass(frozen=True)
class PoolCredentials:
    """Names of environment variables holding the pool's XenAPI login; the values are
    read when a session opens and never stored."""

    username_env: str
    password_env: str


@dataclass(frozen=True)
class PoolTls:
    """How wlbplan trusts the pool's HTTPS certificate (XenAPI): against ``ca_file``, by
    its pinned SHA-256 ``fingerprint_sha256`` (upper-case hex pairs and colons), or, with
    neither, against this machine's trust store, the name checked in every case.
    ``insecure``: no check at all, only when the spec says so."""

    ca_file: Path | None = None
    fingerprint_sha256: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class PoolSpec:
    """The pool side. ``connector``: ``ssh`` runs xe on the coordinator (``xe``,
    ``connection``, ``ssh_host``); ``xenapi`` calls the pool's API at ``url`` with
    ``credentials`` and ``tls``.

    ``trust_dir`` is xapi's stunnel folder on the coordinator: installed CA certificates in
    ``certs/``, the bundle ``xapi-stunnel-ca-bundle.pem``. ``state_dir`` holds wlbplan's
    apply lock on the coordinator (over XenAPI the lock is a key of the pool's
    other_config). ``getent`` is what the coordinator resolves WLB's name with (audit)."""

    coordinator: str
    xe: str = "xe"
    connection: Connection = "ssh"
    ssh_host: str | None = None
    trust_dir: PurePosixPath = DEFAULT_TRUST_DIR
    state_dir: PurePosixPath = DEFAULT_STATE_DIR
    connector: Connector = "ssh"
    url: str | None = None
    credentials: PoolCredentials | None = None
    tls: PoolTls = field(default_factory=PoolTls)
    getent: str = "getent"

    @property
    def ssh_destination(self) -> str:
        """Where to open SSH: ``ssh_host`` when given, else the coordinator's name."""
        return self.ssh_host or self.coordinator

    @property
    def api_url(self) -> str:
        """The pool's XenAPI: ``url``, by default ``https://<coordinator>``."""
        if self.url:
            return self.url
        host = f"[{self.coordinator}]" if ":" in self.coordinator else self.coordinator
        return f"https://{host}"


@dataclass(frozen=True)
class WlbPaths:
    """Appliance-side files stunnel serves (remote paths, hence PurePosixPath)."""

    cert: PurePosixPath = DEFAULT_CERT_PATH
    key: PurePosixPath = DEFAULT_KEY_PATH


@dataclass(frozen=True)
class WlbCredentials:
    """Names of environment variables holding the WLB login; the values are never stored."""

    username_env: str
    password_env: str
    xenserver_username_env: str
    xenserver_password_env: str


@dataclass(frozen=True)
class WlbSpec:
    address: str
    port: int = DEFAULT_WLB_PORT
    connection: Connection = "ssh"
    ssh_host: str | None = None
    paths: WlbPaths = field(default_factory=WlbPaths)
    restart: str = DEFAULT_RESTART
    stunnel_conf: PurePosixPath | None = None
    credentials: WlbCredentials | None = None

    @property
    def address_is_ip(self) -> bool:
        return is_ip_literal(self.address)

    @property
    def ssh_destination(self) -> str:
        return self.ssh_host or self.address

    @property
    def url(self) -> str:
        """The pool's ``wlb-url`` value (``host:port``; IPv6 in brackets)."""
        return join_host_port(self.address, self.port)


@dataclass(frozen=True)
class Subject:
    """The CSR subject besides the CN, by OpenSSL short name."""

    C: str | None = None
    ST: str | None = None
    L: str | None = None
    O: str | None = None  # noqa: E741 - OpenSSL's own short name
    OU: str | None = None
    emailAddress: str | None = None

    def items(self) -> tuple[tuple[str, str], ...]:
        """Set fields in OpenSSL's conventional order (C, ST, L, O, OU, emailAddress)."""
        pairs = ((name, getattr(self, name)) for name in SUBJECT_FIELDS)
        return tuple((name, value) for name, value in pairs if value is not None)


@dataclass(frozen=True)
class KeySpec:
    type: KeyType = "rsa"
    bits: int = DEFAULT_KEY_BITS["rsa"]


@dataclass(frozen=True)
class CertificateRequest:
    """The CSR made on the appliance (seed, path B). alt_names keep their ``DNS:``/``IP:``."""

    common_name: str
    alt_names: tuple[str, ...] = ()
    subject: Subject = field(default_factory=Subject)
    key: KeySpec = field(default_factory=KeySpec)
    csr_out: Path | None = None


@dataclass(frozen=True)
class Signer:
    """A local command that signs ``{csr}`` into ``{cert}`` (argv, no shell)."""

    command: tuple[str, ...]

    def argv(self, csr: Path, cert: Path) -> tuple[str, ...]:
        # str.replace, not str.format: other braces in an argument stay untouched.
        return tuple(
            arg.replace("{csr}", str(csr)).replace("{cert}", str(cert)) for arg in self.command
        )


HOOK_PLACEHOLDERS = ("domain", "name", "value")


@dataclass(frozen=True)
class ChallengeHooks:
    """How a dns-01 challenge's TXT record is set and cleared: two argv lists (run without
    a shell) with ``{domain}``, ``{name}`` (the ``_acme-challenge`` record) and ``{value}``."""

    set: tuple[str, ...]
    clear: tuple[str, ...]
    type: Literal["dns-01"] = "dns-01"

    @staticmethod
    def argv(command: tuple[str, ...], domain: str, name: str, value: str) -> tuple[str, ...]:
        """Each argument with its placeholders replaced; never joined into a shell line.
        str.replace, not str.format: other braces in an argument stay as they are."""
        said = {"domain": domain, "name": name, "value": value}
        out = []
        for arg in command:
            for key in HOOK_PLACEHOLDERS:
                arg = arg.replace("{" + key + "}", said[key])
            out.append(arg)
        return tuple(out)


@dataclass(frozen=True)
class AcmeAccount:
    email: str | None = None
    key_file: Path | None = None
    """None: ``acme/`` in the state folder, one key per directory, made 0600 on first use."""


@dataclass(frozen=True)
class ExternalAccountBinding:
    """Names of the environment variables that hold the EAB key id and HMAC key."""

    kid_env: str
    hmac_env: str


DEFAULT_RENEW_BEFORE_DAYS = 30
DEFAULT_ORDER_TIMEOUT = 180


@dataclass(frozen=True)
class AcmeSpec:
    """An ACME CA (RFC 8555) that issues the appliance's certificate from its CSR."""

    directory: str
    root: Path
    challenge: ChallengeHooks
    ca_file: Path | None = None
    """Trusted to check the ACME server's own HTTPS; None: the system store."""
    account: AcmeAccount = field(default_factory=AcmeAccount)
    eab: ExternalAccountBinding | None = None
    renew_before_days: int = DEFAULT_RENEW_BEFORE_DAYS
    order_timeout: int = DEFAULT_ORDER_TIMEOUT
    """Seconds an order may take, from the first request to the downloaded chain."""


@dataclass(frozen=True)
class CertificateSpec:
    source: CertificateSource
    request: CertificateRequest | None = None
    signed: Path | None = None
    intermediates: tuple[Path, ...] = ()
    root: Path | None = None
    signer: Signer | None = None
    acme: AcmeSpec | None = None


@functools.cache
def schema_default(*where: str) -> Any:
    """The default the spec's JSON Schema states for ``properties`` path ``where``: the one
    definition of that default, read by the code rather than copied into it."""
    node = json.loads((resources.files("wlbplan") / "schemas" / "wlbplan.schema.json")
                      .read_text("utf-8"))
    for key in where:
        node = node["properties"][key]
    return node["default"]


def _default_command_timeout() -> float:
    return float(schema_default("defaults", "command_timeout"))


@dataclass(frozen=True)
class Defaults:
    ssh: SshSettings = field(default_factory=SshSettings)
    command_timeout: float = field(default_factory=_default_command_timeout)
    """Seconds one command on a host may run (see the schema)."""
    timeout: float | None = None
    """``defaults.timeout`` (or ``--timeout``) as given: already folded into
    ``command_timeout`` and every ``connect_timeout`` it applies to."""


@dataclass(frozen=True)
class Target:
    """One pool + appliance pair. ``ssh`` is already merged: defaults.ssh + target.ssh."""

    name: str
    pool: PoolSpec
    wlb: WlbSpec
    certificate: CertificateSpec
    verify: bool = True
    ssh: SshSettings = field(default_factory=SshSettings)
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    """Where parts of this target sit in the spec file (``""`` = the target itself,
    ``"verify"``, ``"wlb.address"`` …), for findings that point at a line. The ``ssh``
    settings' lines are those of the values that apply: the target's own, else the
    spec's ``defaults``."""

    spec_path: str = field(default="", compare=False)
    """The spec file this target was read from, as it was given: hints name it."""

    def line(self, where: str = "") -> int | None:
        """The line of ``where`` in the spec, else of the target itself."""
        known = dict(self.lines)
        return known.get(where, known.get(""))

    def place(self, where: str = "") -> str:
        """``FILE:LINE`` of ``where`` in the spec; "" when it is not written there."""
        line = dict(self.lines).get(where)
        return f"{self.spec_path}:{line}" if self.spec_path and line else ""

    def command(self, verb: str, *more: str) -> str:
        """A wlbplan command line for this target that an operator can paste as it is."""
        return cli_command(verb, self.spec_path, *more, "--target", self.name)


def cli_command(verb: str, spec_path: str, *more: str) -> str:
    """``wlbplan VERB SPEC …``, quoted; the word SPEC only where no spec file is known."""
    return shlex.join(["wlbplan", verb, spec_path or "SPEC", *more])


@dataclass(frozen=True)
class Spec:
    """A whole validated spec file. Local paths inside are absolute (``~`` expanded)."""

    version: int
    path: Path
    digest: str
    targets: tuple[Target, ...]
    defaults: Defaults = field(default_factory=Defaults)
    policy: Policy = field(default_factory=Policy)
    resolve: tuple[tuple[str, str], ...] = ()
    ignores: tuple[Ignore, ...] = ()
    """``audit.ignore``: the findings the operator accepts, in the spec's order."""
    leftover_days: int = DEFAULT_LEFTOVER_DAYS
    """``audit.leftover_days``: a backup or pending key older than this is reported."""

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def with_timeout(self, seconds: float) -> Spec:
        """The command line's ``--timeout``: every connect and every command of every
        target bounded by ``seconds``, whatever the spec's timeout keys say."""
        ssh = dataclasses.replace(self.defaults.ssh, connect_timeout=seconds)
        defaults = dataclasses.replace(self.defaults, ssh=ssh, command_timeout=seconds,
                                       timeout=seconds)
        targets = tuple(dataclasses.replace(
            t, ssh=dataclasses.replace(t.ssh, connect_timeout=seconds)) for t in self.targets)
        return dataclasses.replace(self, defaults=defaults, targets=targets)

    def address_of(self, host: str) -> str:
        """The address to connect to for ``host``: the ``resolve`` entry, else the name."""
        return dict(self.resolve).get(host.lower().rstrip("."), host)
