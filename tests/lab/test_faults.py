"""Each lab fault does what it says, on real files and the real stunnel."""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import click
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from wlbplan import certs
from wlbplan.errors import LabError
from wlbplan.lab import control, faults, stunnel, xe_state
from wlbplan.lab.pki import now

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(tmp_path: Path):
    made = control.up(tmp_path / "lab", hosts=2)
    yield made
    control.down(made.dir)


def served(port: int) -> x509.Certificate:
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    return x509.load_pem_x509_certificate(pem.encode())


def xe(lab: control.Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(lab.layout("pool1").xe), *args], capture_output=True, text=True)


def pool_uuid(lab: control.Lab) -> str:
    return xe(lab, "pool-list", "--minimal").stdout.strip()


def test_restart_fails_leaves_stunnel_down(lab: control.Lab) -> None:
    faults.inject(lab.dir, "restart-fails")
    result = stunnel.restart(lab.layout("pool1"))
    assert result.returncode != 0
    assert "restart-fails" in result.stderr
    assert control.pids(lab) == {}


def test_restart_fails_lasts_until_cleared_and_status_lists_it(lab: control.Lab) -> None:
    from click.testing import CliRunner

    from wlbplan.lab.cli import lab as lab_cli

    runner = CliRunner()
    assert runner.invoke(lab_cli, ["fault", "restart-fails", "--dir", str(lab.dir)]).exit_code == 0
    shown = runner.invoke(lab_cli, ["status", "--dir", str(lab.dir)]).output
    assert "faults: restart-fails" in shown
    assert stunnel.restart(lab.layout("pool1")).returncode != 0
    assert stunnel.restart(lab.layout("pool1")).returncode != 0  # lasting: a rollback too
    cleared = runner.invoke(lab_cli, ["fault", "clear", "restart-fails", "--dir", str(lab.dir)])
    assert cleared.exit_code == 0
    assert "cleared pool1: restart-fails" in cleared.output
    assert "faults:" not in runner.invoke(lab_cli, ["status", "--dir", str(lab.dir)]).output
    assert stunnel.restart(lab.layout("pool1")).returncode == 0
    again = runner.invoke(lab_cli, ["fault", "clear", "--dir", str(lab.dir)])
    assert "no lasting fault to clear" in again.output
    wrong = runner.invoke(lab_cli, ["fault", "expire", "restart-fails", "--dir", str(lab.dir)])
    assert wrong.exit_code != 0


def test_expire_serves_an_expired_certificate(lab: control.Lab) -> None:
    faults.inject(lab.dir, "expire")
    cert = served(lab.targets[0].port)
    assert cert.not_valid_after_utc < now()
    assert cert.public_bytes(serialization.Encoding.PEM) == lab.layout("pool1").cert.read_bytes()


def test_cn_mismatch_serves_another_name(lab: control.Lab) -> None:
    faults.inject(lab.dir, "cn-mismatch")
    names = certs.dns_names(served(lab.targets[0].port))
    assert names == ("other-wlb1.lab.test",)


def test_key_mismatch_breaks_the_key_file_not_the_running_service(lab: control.Lab) -> None:
    layout = lab.layout("pool1")
    before = served(lab.targets[0].port)
    faults.inject(lab.dir, "key-mismatch")
    key = serialization.load_pem_private_key(layout.key.read_bytes(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    leaf = x509.load_pem_x509_certificate(layout.cert.read_bytes())
    assert not certs.key_matches(leaf, public)
    assert served(lab.targets[0].port) == before


def test_by_ip_points_wlb_url_at_the_address(lab: control.Lab) -> None:
    faults.inject(lab.dir, "by-ip")
    url = xe(lab, "pool-param-get", f"uuid={pool_uuid(lab)}", "param-name=wlb-url")
    assert url.stdout.strip() == f"127.0.0.1:{lab.targets[0].port}"


def test_desync_host_drops_a_ca_from_one_member_until_sync(lab: control.Lab,
                                                            tmp_path: Path) -> None:
    pem = tmp_path / "lab-root.pem"
    pem.write_bytes(lab.layout("pool1").cert.read_bytes())
    assert xe(lab, "pool-install-ca-certificate", f"filename={pem}").returncode == 0
    layout = lab.layout("pool1")
    state = xe_state.load(layout.pool_state)
    member = layout.host(state["hosts"][-1]["dir"])
    assert (member.certs_dir / "lab-root.pem").exists()

    message = faults.inject(lab.dir, "desync-host")
    assert "lab-root.pem" in message
    assert not (member.certs_dir / "lab-root.pem").exists()
    assert not member.bundle.exists()  # its only certificate is gone: bundle deleted
    assert xe(lab, "pool-certificate-list").stdout.split() == ["lab-root.pem"]

    assert xe(lab, "pool-certificate-sync").returncode == 0
    assert (member.certs_dir / "lab-root.pem").read_bytes() == pem.read_bytes()


def test_desync_host_without_any_ca_says_what_to_do(lab: control.Lab) -> None:
    with pytest.raises(LabError, match="install one first"):
        faults.inject(lab.dir, "desync-host")


def test_unknown_target_is_named(lab: control.Lab) -> None:
    with pytest.raises(LabError, match="no target 'pool9'"):
        faults.inject(lab.dir, "expire", "pool9")


def test_name_faults_reach_getent_and_xe_alike_and_stale_backups_are_dated(
        lab: control.Lab) -> None:
    """The coordinator's getent and its xe read one name map: what one no longer knows
    (or knows elsewhere) the other cannot reach WLB by."""
    layout, fqdn = lab.layout("pool1"), lab.targets[0].fqdn

    def getent() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(layout.getent), "hosts", "--", fqdn], capture_output=True,
                              text=True)

    def retrieve() -> subprocess.CompletedProcess[str]:
        return xe(lab, "pool-retrieve-wlb-configuration")

    assert getent().stdout.split() == ["127.0.0.1", fqdn]
    faults.inject(lab.dir, "wlb-unresolvable")
    assert (getent().returncode, getent().stdout) == (2, "")
    assert "failed to resolve" in retrieve().stderr  # WLB_UNKNOWN_HOST
    faults.inject(lab.dir, "wlb-resolves-elsewhere")
    assert getent().stdout.split() == [faults.ELSEWHERE, fqdn]
    assert "WLB refused a connection" in retrieve().stderr  # WLB_CONNECTION_REFUSED

    faults.inject(lab.dir, "stale-backups")
    for path in (layout.cert.with_name("server.pem_orig"),
                 layout.key.with_name("server.key_orig"),
                 layout.key.with_name("server.key.pending")):
        age = (time.time() - path.stat().st_mtime) / 86400
        assert faults.STALE_DAYS <= age < faults.STALE_DAYS + 1, path
    assert layout.key.with_name("server.key.pending").stat().st_mode & 0o077 == 0


def test_the_cli_takes_every_fault_the_lab_has() -> None:
    """One list: `wlbplan lab fault` offers exactly the faults the lab can inject (the
    CLI's own copy of the names once lacked the three that audit's rules need)."""
    from wlbplan.lab.cli import fault

    (name,) = [p for p in fault.params if p.name == "name"]
    assert isinstance(name.type, click.Choice)
    assert set(name.type.choices) == {*faults.FAULTS, "clear"}
