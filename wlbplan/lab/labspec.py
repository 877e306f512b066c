"""The ready-to-use wlbplan spec for a lab: ``DIR/lab.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wlbplan.lab import xe_state
from wlbplan.lab.layout import SPEC_FILE
from wlbplan.lab.record import Lab, LabTarget
from wlbplan.lab.sshd import login_user
from wlbplan.lab.xenapi.daemon import server_cert


def _target(lab: Lab, target: LabTarget) -> dict[str, Any]:
    layout = lab.layout(target.name)
    connection = "ssh" if lab.ssh_port is not None else "local"
    pool: dict[str, Any] = {
        "coordinator": "localhost",
        "xe": str(layout.xe),
        # The coordinator's resolver: the pool's name map, never /etc/hosts.
        "getent": str(layout.getent),
        "connection": connection,
        # The coordinator's fake dom0 /etc/stunnel: where its CA certificates are read.
        "trust_dir": str(xe_state.coordinator(layout).stunnel_dir),
        # Where the apply lock lives on the (fake) coordinator.
        "state_dir": str(xe_state.coordinator(layout).root / "var" / "lib" / "wlbplan"),
    }
    wlb: dict[str, Any] = {"address": target.fqdn, "port": target.port, "connection": connection}
    if connection == "ssh":
        pool["coordinator"] = "127.0.0.1"
        wlb["ssh_host"] = "127.0.0.1"
    if target.xenapi_port is not None:
        pool = xenapi_pool(lab, target)
    wlb["paths"] = {"cert": str(layout.cert), "key": str(layout.key)}
    wlb["restart"] = str(layout.restart)
    wlb["stunnel_conf"] = str(layout.stunnel_conf)
    return {
        "name": target.name,
        "pool": pool,
        "wlb": wlb,
        "certificate": _acme(lab, target) if lab.acme is not None else {"source": "self-signed"},
        "verify": True,
    }


def xenapi_pool(lab: Lab, target: LabTarget) -> dict[str, Any]:
    """The pool as reached through the lab's XenAPI (``lab up --xenapi``): the login's
    variables are those ``logins.env`` sets, the server's certificate is the CA file."""
    prefix = target.name.upper()
    return {
        "coordinator": "127.0.0.1",
        "connector": "xenapi",
        "url": f"https://127.0.0.1:{target.xenapi_port}",
        "credentials": {"username_env": f"{prefix}_XENAPI_USER",
                        "password_env": f"{prefix}_XENAPI_PASS"},
        "tls": {"ca_file": str(server_cert(lab.layout(target.name)))},
    }


def _acme(lab: Lab, target: LabTarget) -> dict[str, Any]:
    """``source: acme`` through the lab's Pebble, its challenges through the lab's hook."""
    from wlbplan.lab.pebble import EAB_HMAC_ENV, EAB_KID_ENV, AcmeLayout

    assert lab.acme is not None
    where = AcmeLayout(lab.acme_dir)
    hook = str(where.hook)
    acme: dict[str, Any] = {
        "directory": lab.acme.directory_url,
        "ca_file": str(where.https_ca),
        "root": str(where.ca_root),
        "account": {"email": f"ops@{target.fqdn}"},
        "challenge": {"type": "dns-01", "set": [hook, "set", "{name}", "{value}"],
                      "clear": [hook, "clear", "{name}"]},
        "renew_before_days": 30,
    }
    if lab.acme.eab:
        acme["eab"] = {"kid_env": EAB_KID_ENV, "hmac_env": EAB_HMAC_ENV}
    return {"source": "acme", "request": {"key": {"type": "rsa", "bits": 2048}}, "acme": acme}


def render(lab: Lab) -> str:
    data: dict[str, Any] = {"version": 1}
    if lab.ssh_port is not None:
        data["defaults"] = {
            "ssh": {
                "user": login_user(),
                "port": lab.ssh_port,
                "identity_file": str(lab.ssh.client_key),
                "known_hosts": str(lab.ssh.known_hosts),
                "host_key_policy": "strict",
            }
        }
    # Lab names resolve through this map (like curl --resolve), never through /etc/hosts.
    data["resolve"] = dict(lab.resolve)
    data["targets"] = [_target(lab, t) for t in lab.targets]
    header = (
        "# yaml-language-server: $schema=" + _schema_path() + "\n"
        f"# wlbplan spec for the lab in {lab.dir} (written by `wlbplan lab up`).\n"
        "# The xe here is the lab's emulator; stunnel, OpenSSL and sshd are real.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _schema_path() -> str:
    return str(Path(__file__).resolve().parent.parent / "schemas" / "wlbplan.schema.json")


def write(lab: Lab) -> None:
    (lab.dir / SPEC_FILE).write_text(render(lab))
