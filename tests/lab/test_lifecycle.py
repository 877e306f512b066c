"""Lab lifecycle: up → status → restart → down, with real stunnel and sshd processes."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from wlbplan.errors import LabError
from wlbplan.lab import control, stunnel
from wlbplan.lab.procs import alive, port_open

pytestmark = pytest.mark.lab

WLBPLAN = [sys.executable, "-m", "wlbplan"]


def served_cert(port: int) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    return x509.load_pem_x509_certificate(pem.encode())


def xe(lab: control.Lab, *args: str, target: str = "pool1") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(lab.layout(target).xe), *args], capture_output=True, text=True)


@pytest.fixture
def lab_dir(tmp_path: Path):
    path = tmp_path / "lab"
    yield path
    control.down(path)


def test_up_serves_the_appliance_certificate_and_down_stops_everything(lab_dir: Path) -> None:
    lab = control.up(lab_dir, targets=2, hosts=2)
    running = control.pids(lab)
    assert set(running) == {"pool1/stunnel", "pool2/stunnel"}
    for target in lab.targets:
        layout = lab.layout(target.name)
        cert = served_cert(target.port)
        assert cert.public_bytes(ssl_encoding()) == layout.cert.read_bytes()
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.value.get_values_for_type(x509.DNSName) == [target.fqdn]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert stat.S_IMODE(layout.key.stat().st_mode) == 0o600
    uuid = xe(lab, "pool-list", "--minimal").stdout.strip()
    url = xe(lab, "pool-param-get", f"uuid={uuid}", "param-name=wlb-url")
    assert url.stdout.strip() == f"wlb1.lab.test:{lab.targets[0].port}"
    verify = xe(lab, "pool-param-get", f"uuid={uuid}", "param-name=wlb-verify-cert")
    assert verify.stdout == "false\n"

    stopped = control.down(lab_dir)
    assert stopped == running
    assert not any(alive(pid) for pid in running.values())
    assert not any(port_open(t.port) for t in lab.targets)


def ssl_encoding():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


def test_lab_spec_describes_every_target(lab_dir: Path) -> None:
    lab = control.up(lab_dir, targets=2, hosts=1)
    spec = yaml.safe_load(lab.spec_path.read_text())
    assert spec["resolve"] == {"wlb1.lab.test": "127.0.0.1", "wlb2.lab.test": "127.0.0.1"}
    assert [t["name"] for t in spec["targets"]] == ["pool1", "pool2"]
    first = spec["targets"][0]
    assert first["pool"]["connection"] == "local"
    assert first["wlb"]["port"] == lab.targets[0].port
    assert first["verify"] is True
    assert first["certificate"] == {"source": "self-signed"}


def test_up_twice_on_a_running_lab_is_refused_without_leaking(lab_dir: Path) -> None:
    lab = control.up(lab_dir)
    before = control.pids(lab)
    with pytest.raises(LabError, match="already running"):
        control.up(lab_dir)
    assert control.pids(control.load(lab_dir)) == before


def test_up_on_a_stopped_lab_rebuilds_it(lab_dir: Path) -> None:
    first = control.up(lab_dir)
    old_cert = first.layout("pool1").cert.read_bytes()
    control.down(lab_dir)
    second = control.up(lab_dir)
    assert second.layout("pool1").cert.read_bytes() != old_cert
    assert set(control.pids(second)) == {"pool1/stunnel"}


def test_restart_replaces_exactly_this_stunnel(lab_dir: Path) -> None:
    lab = control.up(lab_dir, targets=2, hosts=1)
    before = control.pids(lab)
    result = stunnel.restart(lab.layout("pool1"))
    assert result.returncode == 0, result.stderr
    after = control.pids(lab)
    assert after["pool1/stunnel"] != before["pool1/stunnel"]
    assert after["pool2/stunnel"] == before["pool2/stunnel"]
    assert not alive(before["pool1/stunnel"])
    assert port_open(lab.targets[0].port)


def test_cli_up_prints_the_spec_path_last_and_down_purges(tmp_path: Path) -> None:
    lab_dir = tmp_path / "cli-lab"
    try:
        up = subprocess.run([*WLBPLAN, "lab", "up", "--dir", str(lab_dir)],
                            capture_output=True, text=True)
        assert up.returncode == 0, up.stderr
        assert up.stdout.splitlines()[-1] == str(lab_dir / "lab.yaml")
        status = subprocess.run([*WLBPLAN, "lab", "status", "--dir", str(lab_dir)],
                                capture_output=True, text=True)
        assert status.returncode == 0, status.stderr
        assert "pool1: stunnel 127.0.0.1:" in status.stdout
        assert "pid " in status.stdout
    finally:
        down = subprocess.run([*WLBPLAN, "lab", "down", "--dir", str(lab_dir), "--purge"],
                              capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert "stopped pool1/stunnel" in down.stdout
    assert not lab_dir.exists()


def test_cli_status_without_a_lab_is_an_expected_error(tmp_path: Path) -> None:
    result = subprocess.run([*WLBPLAN, "lab", "status", "--dir", str(tmp_path / "none")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "no lab in" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.ssh
def test_ssh_lab_accepts_a_strict_session_and_refuses_a_wrong_host_key(lab_dir: Path) -> None:
    lab = control.up(lab_dir, ssh=True, hosts=1)
    assert lab.ssh_port is not None
    spec = yaml.safe_load(lab.spec_path.read_text())
    ssh = spec["defaults"]["ssh"]
    assert ssh["host_key_policy"] == "strict"
    assert spec["targets"][0]["pool"]["connection"] == "ssh"
    base = ["ssh", "-F", "/dev/null", "-i", ssh["identity_file"], "-p", str(ssh["port"]),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes"]
    known = ["-o", f"UserKnownHostsFile={ssh['known_hosts']}"]
    ok = subprocess.run([*base, *known, f"{ssh['user']}@127.0.0.1",
                         str(lab.layout("pool1").xe), "pool-list", "--minimal"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.strip()) == 36

    wrong = lab_dir / "wrong_known_hosts"
    other = lab.ssh.client_key.with_name("id_ed25519.pub").read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{lab.ssh_port} {' '.join(other)}\n")
    refused = subprocess.run([*base, "-o", f"UserKnownHostsFile={wrong}",
                              f"{ssh['user']}@127.0.0.1", "true"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr

    stopped = control.down(lab_dir)
    assert "sshd" in stopped
    assert not alive(stopped["sshd"])


@pytest.mark.ssh
def test_ssh_lab_accepts_100_concurrent_sessions(lab_dir: Path) -> None:
    lab = control.up(lab_dir, ssh=True, hosts=1)
    spec = yaml.safe_load(lab.spec_path.read_text())["defaults"]["ssh"]
    cmd = ["ssh", "-F", "/dev/null", "-i", spec["identity_file"], "-p", str(spec["port"]),
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
           "-o", f"UserKnownHostsFile={spec['known_hosts']}", f"{spec['user']}@127.0.0.1",
           "sleep 1; echo ok"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(100)]
    outputs = [p.communicate(timeout=120) for p in procs]
    failures = [err for (out, err) in outputs if out.strip() != "ok"]
    assert failures == []
