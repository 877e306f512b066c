"""Start-up stays light: `wlbplan --version` and `wlbplan validate` load neither the SSH
stack (fabric, paramiko, invoke) nor deepdiff; those are imported where they are used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wlbplan.lab.procs import free_port

HEAVY = ("fabric", "paramiko", "invoke", "deepdiff")
ACME_CLIENT = ("acme", "josepy", "requests")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fleet.yaml"
# Names no certificate file: nothing in it needs cryptography's x509 to be checked.
NO_CERT_FILES = EXAMPLE.with_name("self-signed.yaml")

# Run the CLI as the entry point does, then list what it imported.
_PROBE = """
import json, sys
from wlbplan.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    status = done.code
sys.stderr.write("\\n@@" + json.dumps({"status": status,
                 "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _imported(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          text=True, timeout=60, check=False)
    report = json.loads(done.stderr.rpartition("\n@@")[2])
    return report["status"], set(report["modules"])


@pytest.mark.parametrize("args", [("--version",), ("validate", str(EXAMPLE)),
                                  ("validate", "--format", "json", str(EXAMPLE))])
def test_a_light_command_loads_no_ssh_stack_nor_deepdiff(args: tuple[str, ...]) -> None:
    status, modules = _imported(*args)
    assert status == 0
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_validate_loads_cryptography_only_for_certificate_files() -> None:
    """cryptography's x509 is ~10% of a 500-target validate: a spec that names no
    certificate file is validated without it (the probe sees it for one that does)."""
    status, modules = _imported("validate", str(NO_CERT_FILES))
    assert status == 0
    assert "cryptography" not in modules
    assert "cryptography" in _imported("validate", str(EXAMPLE))[1]


def test_the_probe_sees_what_a_heavy_command_loads(tmp_path: Path) -> None:
    """The check above can fail: a command that contacts hosts does load them."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\n"
        f"defaults: {{ssh: {{port: {free_port()}, known_hosts: {tmp_path / 'known_hosts'}}}}}\n"
        "targets:\n"
        "  - name: t1\n"
        "    pool: {coordinator: 127.0.0.1}\n"
        "    wlb: {address: wlb.example.com, ssh_host: 127.0.0.1}\n"
        "    certificate: {source: self-signed}\n")
    status, modules = _imported("inspect", str(spec), "--timeout", "2")
    assert status == 1  # nothing listens there
    assert {"fabric", "paramiko"} <= modules
    # Nor does it load the ACME client's libraries: only an ACME order needs them.
    assert modules.isdisjoint(ACME_CLIENT), sorted(modules & set(ACME_CLIENT))
