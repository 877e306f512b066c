"""What ``lab up --xenapi`` makes and starts: per pool a server certificate and an account;
one server process for the whole lab, tracked by its pid file like every lab daemon."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.lab import procs, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.pki import build, make_key, write_private
from wlbplan.lab.procs import Daemon, port_open, running_pid, wait_for
from wlbplan.lab.pyscript import program
from wlbplan.lab.xenapi.rbac import LAB_ROLES
from wlbplan.lab.xenapi.server import PoolEndpoint

XENAPI_DIR = "xenapi"
LAB_USER = "wlbplan"


@dataclass(frozen=True)
class XenapiLayout:
    """The lab's XenAPI server: its program, configuration, pid file and log."""

    root: Path

    @property
    def program(self) -> Path:
        return self.root / "xenapi-server"

    @property
    def config(self) -> Path:
        return self.root / "server.json"

    @property
    def pid_file(self) -> Path:
        return self.root / "server.pid"

    @property
    def log(self) -> Path:
        return self.root / "server.log"


def server_key(layout: TargetLayout) -> Path:
    """The coordinator's server key (xapi keeps it with the certificate in
    /etc/xensource/xapi-ssl.pem; the lab keeps keys in files of their own)."""
    return layout.pool_dir / "xapi-ssl.key"


def server_cert(layout: TargetLayout) -> Path:
    """The coordinator's server certificate: what an operator gives wlbplan as
    ``pool.tls.ca_file``."""
    return layout.pool_dir / "xapi-server-cert.pem"


def account(layout: TargetLayout) -> Path:
    return layout.pool_dir / "xenapi-account.json"


def endpoint(layout: TargetLayout, port: int) -> PoolEndpoint:
    """Where one pool's XenAPI finds its state, account, faults, certificate and key."""
    return PoolEndpoint(layout.name, port, layout.pool_state, account(layout),
                        layout.faults_dir, server_cert(layout), server_key(layout))


def make_pool_identity(layout: TargetLayout, role: str) -> tuple[str, str]:
    """The server certificate (DNS and IP SANs, as xapi's own self-signed one:
    gencert/selfcert.ml) and the lab's account with ``role``; returns (user, password)."""
    if role not in LAB_ROLES:
        raise LabError(f"--xenapi-role must be one of {', '.join(LAB_ROLES)}, not {role!r}")
    coordinator = xe_state.load(layout.pool_state)["hosts"][0]["hostname"]
    issued = build(coordinator, key=make_key("ec", 256), sans=[coordinator, "127.0.0.1"],
                   server_auth=True, days=3650)
    write_private(server_key(layout), issued.key_pem)
    write_private(server_cert(layout), issued.cert_pem, mode=0o644)
    password = secrets.token_urlsafe(18)
    write_private(account(layout), json.dumps(
        {"username": LAB_USER, "password": password, "role": role}).encode())
    return LAB_USER, password


def daemon(layout: XenapiLayout) -> Daemon:
    """The lab's XenAPI server: this interpreter running ``xenapi-server``."""
    return Daemon(layout.pid_file, sys.executable, (str(layout.program),))


def start(layout: XenapiLayout, pools: list[tuple[TargetLayout, int]]) -> int:
    """Write the program and its configuration, start it, wait until every port serves."""
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.root.chmod(0o700)
    config = {
        "pid_file": str(layout.pid_file),
        "log": str(layout.log),
        "pools": [endpoint(target, port).to_json() for target, port in pools],
    }
    layout.config.write_text(json.dumps(config, indent=2))
    write_private(layout.program, program(
        "the lab's XenAPI server (XML-RPC over HTTPS on 127.0.0.1).",
        "wlbplan.lab.xenapi.server", "main", f"Path({str(layout.config)!r})",
        layout.root / ".pycache", needs=("wlbplan", "cryptography")), mode=0o700)
    result = subprocess.run([str(layout.program)], capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise LabError(f"the lab's XenAPI server did not start (exit {result.returncode}): "
                       f"{result.stderr.strip()[-600:]}")
    wait_for(lambda: running_pid(daemon(layout)) and all(port_open(p) for _, p in pools),
             15, "the XenAPI server")
    pid = running_pid(daemon(layout))
    if pid is None:
        raise LabError(f"the XenAPI server exited right after start; see {layout.log}")
    return pid


def pid(layout: XenapiLayout) -> int | None:
    return running_pid(daemon(layout))


def stop(layout: XenapiLayout) -> int | None:
    return procs.stop(daemon(layout))
