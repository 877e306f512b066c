"""Helpers for the ACME suite: a lab with its own Pebble, spec variants, and what the pool
really does with the issued chain (a TLS handshake with the pool's own bundle)."""

from __future__ import annotations

import hashlib
import socket
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from applylab import TARGET, host_layouts, running_lab

from wlbplan.lab import control, pebble

needs_pebble = pytest.mark.skipif(not pebble.installed(),
                                  reason="pebble is not installed (apt-get install pebble)")


@contextmanager
def acme_lab(folder: Path, **kw: Any) -> Iterator[control.Lab]:
    with running_lab(folder, **{"hosts": 2, "acme": True, **kw}) as lab:
        yield lab


def acme_spec(lab: control.Lab, path: Path, **changes: Any) -> Path:
    """The lab's spec with ``acme`` keys (or, with ``request=``, the request) changed."""
    data = yaml.safe_load(lab.spec_path.read_text())
    certificate = data["targets"][0]["certificate"]
    if "request" in changes:
        certificate["request"] = changes.pop("request")
    certificate["acme"].update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def logging_hooks(lab: control.Lab, folder: Path) -> tuple[dict[str, Any], Path]:
    """A challenge whose hooks log each call (argv, one line) before running the lab's:
    proves which hooks ran, and that clear ran whatever happened."""
    log = folder / "hooks.log"
    wrapper = folder / "logged-hook"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"sys.exit(subprocess.call([{str(pebble.AcmeLayout(lab.acme_dir).hook)!r}, "
        "*sys.argv[1:]]))\n")
    wrapper.chmod(0o755)
    hook = str(wrapper)
    return {"type": "dns-01", "set": [hook, "set", "{name}", "{value}"],
            "clear": [hook, "clear", "{name}"]}, log


def pool_handshake(lab: control.Lab, target: str = TARGET) -> str:
    """A handshake to WLB by its name with each pool host's own bundle (what xapi's stunnel
    does with wlb-verify-cert on); returns the verified leaf's sha256. Fails unless every
    host verifies."""
    found = set()
    for host in host_layouts(lab, target):
        context = ssl.create_default_context(cafile=str(host.bundle))
        with socket.create_connection(("127.0.0.1", lab.target(target).port), timeout=10) \
                as raw, context.wrap_socket(raw, server_hostname=lab.target(target).fqdn) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        found.add(hashlib.sha256(der).hexdigest())
    assert len(found) == 1
    return found.pop()


def account_keys(state: Path) -> list[Path]:
    folder = state / "acme"
    return sorted(folder.glob("*.key")) if folder.exists() else []


def secret_scan(secrets: list[str], *texts: str) -> None:
    """None of ``secrets`` (key PEM bodies, the EAB HMAC) in any of ``texts``."""
    for secret in secrets:
        for text in texts:
            assert secret not in text


def key_body(path: Path) -> str:
    """The base64 body of a PEM key, the part that would leak."""
    lines = [line for line in path.read_text().splitlines() if "-----" not in line]
    return "".join(lines)[:64]


def journal_texts(*folders: Path) -> list[str]:
    return [p.read_text() for f in folders if f.exists() for p in f.rglob("*.jsonl")]


def lab_logins(lab: control.Lab) -> dict[str, str]:
    """The variables of the lab's logins.env (the EAB key id and HMAC key among them)."""
    pairs = [line.split("=", 1) for line in (lab.dir / "logins.env").read_text().splitlines()
             if line and not line.startswith("#")]
    return {name: value for name, value in pairs}
