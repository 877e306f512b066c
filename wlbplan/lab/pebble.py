"""The lab's ACME CA: Pebble (Let's Encrypt's test server) and pebble-challtestsrv (its
DNS), both Debian packages, on 127.0.0.1 only, tracked by pid file like stunnel and sshd.

The lab makes the certificate of Pebble's own HTTPS listener (Debian ships none), points
Pebble's DNS at challtestsrv, and fetches the root Pebble makes at every start from its
management endpoint (``/roots/0``). ``dns-hook`` is the challenge hook the lab's spec
names: it sets and clears TXT records through challtestsrv's management API.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.lab import pki
from wlbplan.lab.procs import Daemon, free_port, port_open, running_pid, stop, wait_for
from wlbplan.lab.pyscript import program
from wlbplan.lab.record import AcmePorts

PEBBLE = "pebble"
CHALLTESTSRV = "pebble-challtestsrv"
ACME_DIR = "acme"
EAB_KID_ENV = "LAB_ACME_KID"
EAB_HMAC_ENV = "LAB_ACME_HMAC"
VALIDITY_DAYS = 90
# Deterministic runs: no random VA sleeps, no rejected nonces, never an authorization
# reused from an earlier order (a wrong TXT value must fail every time).
_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0",
        "PEBBLE_ALTERNATE_ROOTS": "1"}


@dataclass(frozen=True)
class AcmeLayout:
    """The lab's ``acme/`` folder."""

    root: Path

    config = property(lambda self: self.root / "pebble-config.json")
    https_ca = property(lambda self: self.root / "https-ca.pem")
    """What the spec's acme.ca_file names: the CA of Pebble's HTTPS certificate."""
    https_cert = property(lambda self: self.root / "https-cert.pem")
    https_key = property(lambda self: self.root / "https-key.pem")
    ca_root = property(lambda self: self.root / "root.pem")
    """Pebble's root (``/roots/0``), what the spec's acme.root names."""
    ca_root_alt = property(lambda self: self.root / "root-alt.pem")
    """The root of Pebble's alternate chain (``/roots/1``)."""
    hook = property(lambda self: self.root / "dns-hook")
    pebble_pid = property(lambda self: self.root / "pebble.pid")
    pebble_log = property(lambda self: self.root / "pebble.log")
    dns_pid = property(lambda self: self.root / "challtestsrv.pid")
    dns_log = property(lambda self: self.root / "challtestsrv.log")


def installed() -> bool:
    return all(shutil.which(b) for b in (PEBBLE, CHALLTESTSRV))


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise LabError(f"{name} is not installed; the lab's ACME CA needs the Debian package "
                       "`pebble` (sudo apt-get install pebble)")
    return found


def pebble_daemon(layout: AcmeLayout) -> Daemon:
    return Daemon(layout.pebble_pid, shutil.which(PEBBLE), ("-config", str(layout.config)))


def dns_daemon(layout: AcmeLayout, ports: AcmePorts) -> Daemon:
    return Daemon(layout.dns_pid, shutil.which(CHALLTESTSRV),
                  ("-management", f"127.0.0.1:{ports.dns_management}"))


def prepare(layout: AcmeLayout, ports: AcmePorts, cache: Path) -> dict[str, str]:
    """Pebble's HTTPS certificate and configuration, the hook; returns the EAB logins
    (empty unless ``ports.eab``) as environment variables."""
    layout.root.mkdir(parents=True, exist_ok=True)
    ca = pki.build("wlbplan lab ACME server CA", ca=True, path_length=0, days=3650)
    https = pki.build("127.0.0.1", issuer=ca, sans=["127.0.0.1", "localhost"],
                      server_auth=True, days=3650)
    layout.https_ca.write_bytes(ca.cert_pem)
    layout.https_cert.write_bytes(https.cert_pem)
    pki.write_private(layout.https_key, https.key_pem)
    logins = _eab_logins() if ports.eab else {}
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{ports.directory}",
        "managementListenAddress": f"127.0.0.1:{ports.management}",
        "certificate": str(layout.https_cert), "privateKey": str(layout.https_key),
        # Ports Pebble's VA would call for http-01 / tls-alpn-01: unused with dns-01.
        "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "",
        "externalAccountBindingRequired": ports.eab,
        "externalAccountMACKeys": {logins[EAB_KID_ENV]: logins[EAB_HMAC_ENV]} if logins else {},
        "domainBlocklist": ["blocked.lab.test"],
        "certificateValidityPeriod": VALIDITY_DAYS * 86400,
    }}
    pki.write_private(layout.config, json.dumps(config, indent=2).encode())
    layout.hook.write_bytes(program(
        "the lab's dns-01 hook: set/clear TXT records in pebble-challtestsrv.",
        "wlbplan.lab.dnshook", "main", f"{ports.dns_management}, sys.argv[1:]", cache))
    layout.hook.chmod(0o755)
    return logins


def _eab_logins() -> dict[str, str]:
    hmac = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return {EAB_KID_ENV: f"lab-{secrets.token_hex(4)}", EAB_HMAC_ENV: hmac}


def start(layout: AcmeLayout, ports: AcmePorts) -> None:
    """challtestsrv, then Pebble pointed at it; waits until both listen, then fetches the
    roots Pebble made."""
    dns = ["-management", f"127.0.0.1:{ports.dns_management}",
           "-dns01", f"127.0.0.1:{ports.dns}", "-http01", "", "-https01", "", "-tlsalpn01", ""]
    _spawn([_binary(CHALLTESTSRV), *dns], layout.dns_pid, layout.dns_log, {})
    wait_for(lambda: port_open(ports.dns_management), 10, "pebble-challtestsrv")
    argv = [_binary(PEBBLE), "-config", str(layout.config),
            "-dnsserver", f"127.0.0.1:{ports.dns}"]
    _spawn(argv, layout.pebble_pid, layout.pebble_log, _ENV)
    wait_for(lambda: port_open(ports.directory) and port_open(ports.management), 15, "pebble")
    if running_pid(pebble_daemon(layout)) is None:
        raise LabError(f"pebble exited right after start; see {layout.pebble_log}")
    _fetch_root(layout, ports, 0, layout.ca_root)
    _fetch_root(layout, ports, 1, layout.ca_root_alt)


def _spawn(argv: list[str], pid_file: Path, log: Path, env: dict[str, str]) -> None:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env={**os.environ, **env}, start_new_session=True,
                                cwd=pid_file.parent)
    # Written after the start: the pid file is never older than its process.
    pid_file.write_text(f"{proc.pid}\n")


def _fetch_root(layout: AcmeLayout, ports: AcmePorts, index: int, dest: Path) -> None:
    context = ssl.create_default_context(cafile=str(layout.https_ca))
    url = f"https://127.0.0.1:{ports.management}/roots/{index}"
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            dest.write_bytes(answer.read())
    except OSError as err:
        raise LabError(f"cannot fetch Pebble's root from {url}: {err}") from None


def pids(layout: AcmeLayout, ports: AcmePorts) -> dict[str, int]:
    found = {}
    for role, daemon in (("pebble", pebble_daemon(layout)),
                         ("challtestsrv", dns_daemon(layout, ports))):
        pid = running_pid(daemon)
        if pid is not None:
            found[role] = pid
    return found


def stop_all(layout: AcmeLayout, ports: AcmePorts) -> dict[str, int]:
    stopped = {}
    for role, daemon in (("pebble", pebble_daemon(layout)),
                         ("challtestsrv", dns_daemon(layout, ports))):
        pid = stop(daemon)
        if pid is not None:
            stopped[role] = pid
    return stopped


def stop_pebble(layout: AcmeLayout) -> int | None:
    """Pebble alone (a test of an ACME server that is down)."""
    return stop(pebble_daemon(layout))
