"""`wlbplan import` through the command, without a lab: --from-inspect end to end, and every
wrong input refused with advice (exit 1, never 3) before any file is written."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from wlbplan.cli import main
from wlbplan.lab import pki
from wlbplan.model.observed import (
    ApplianceFacts,
    CertFile,
    KeyFile,
    Observed,
    PoolFacts,
    Served,
    TrustedCert,
)
from wlbplan.spec import load_spec

FQDN = "wlb.example.com"


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(["import", *map(str, argv)])
    _, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, err


def _seen(cert: str, *, verify: bool) -> Observed:
    """Target 'east': the appliance serves ``cert`` alone and the pool trusts it."""
    return Observed(
        target="east",
        appliance=ApplianceFacts(cert=CertFile("/etc/ssl/certs/server.pem", True, (cert,)),
                                 key=KeyFile("/etc/ssl/certs/server.key", False),
                                 served=Served(chain=(cert,))),
        pool=PoolFacts(uuid="0b5e4b43-7d1c-4c2e-9a3e-2f1d6c9b8a71", coordinator="c",
                       hosts=("c",), xapi_version="25.6.0", wlb_url=f"{FQDN}:8012",
                       wlb_username="wlbuser", wlb_enabled=True, wlb_verify_cert=verify,
                       trusted=(TrustedCert("wlb.pem", cert),)))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `wlbplan inspect --format json` wrote for a self-signed pool that trusts its
    WLB and verifies it, and for a second target whose name a host could have chosen."""
    cert = pki.appliance_self_signed(FQDN).cert_pem.decode()
    seen = _seen(cert, verify=True)
    hostile = Observed(**{**seen.__dict__, "target": "west\nversion: 2"})
    path = tmp_path_factory.mktemp("report") / "report.json"
    path.write_text(json.dumps({"format_version": "1.0", "targets": [
        {**t.to_json(), "observed_digest": t.digest(), "derived": {}} for t in (seen, hostile)]}))
    return path


def test_from_inspect_writes_a_spec_that_plans_no_changes_against_those_facts(
        report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "--from-inspect", report, "--target", "east",
                    "--pool", "xs-east.example.com", "--wlb", "10.0.0.5", "--ssh-user", "admin",
                    "--out", tmp_path / "east.yaml")
    assert code == 0, err
    spec = load_spec(tmp_path / "east.yaml")
    target = spec.targets[0]
    assert (target.name, target.pool.coordinator, target.wlb.ssh_host, target.ssh.user) == (
        "east", "xs-east.example.com", "10.0.0.5", "admin")
    assert stat.S_IMODE((tmp_path / "east.yaml").stat().st_mode) == 0o644
    assert "against the state read: no changes." in err


@pytest.mark.parametrize(("argv", "words"), [
    (["--pool", "p"], "--wlb HOST is needed"),
    (["--pool", "p", "--wlb", "w", "--target", "x"], "--target goes with --from-inspect"),
    (["--pool", "p", "--wlb", "w", "--from-inspect", "REPORT", "--cert-path", "/c"],
     "--cert-path and --key-path do not apply"),
    (["--pool", "p", "--wlb", "w", "--from-inspect", "missing.json"],
     "cannot read missing.json"),
    (["--pool", "p", "--wlb", "w", "--from-inspect", "REPORT"],
     "holds 2 targets (east, west\\nversion: 2); choose one with --target"),
    (["--pool", "p", "--wlb", "w", "--from-inspect", "REPORT", "--target", "west\nversion: 2"],
     "the options given: not a valid spec: targets[0].name: must start with a letter"),
    (["--pool", "p", "--wlb", "w", "--ssh-user", "a b", "--out", "OUT"],
     "the options given: not a valid spec: defaults.ssh.user: must be a login name"),
    (["--pool", "p q", "--wlb", "w", "--out", "OUT"],
     "targets[0].pool.coordinator: must be a bare host name"),
    (["--pool", "p", "--wlb", "w", "--resolve", "wlb"], "give NAME=ADDRESS"),
    (["--pool", "p", "--wlb", "w", "--resolve", "wlb=nowhere", "--out", "OUT"],
     "'nowhere' is not an IP address"),
    (["--pool", "p", "--wlb", "w", "--identity-file", "no-key", "--out", "OUT"],
     "no-key (for root@p:22) does not exist"),
    (["--pool", "p", "--wlb", "w", "--out", "no/such/folder/x.yaml"],
     "the folder no/such/folder does not exist"),
])
def test_wrong_inputs_are_refused_before_anything_is_written_or_contacted(
        argv: list[str], words: str, report: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [str(report) if a == "REPORT" else str(tmp_path / "x.yaml") if a == "OUT" else a
            for a in argv]
    code, err = run(capsys, *argv)
    assert code == 1, err
    assert words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_yaml_holds_the_names_given_literally(report: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "--from-inspect", report, "--target", "east", "--pool", "p",
                    "--wlb", "w", "--restart", 'svc stunnel restart # "now": yes',
                    "--out", tmp_path / "east.yaml")
    assert code == 0, err
    data = yaml.safe_load((tmp_path / "east.yaml").read_text())
    assert data["targets"][0]["wlb"]["restart"] == 'svc stunnel restart # "now": yes'


def test_host_text_in_the_verdict_is_shown_escaped(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A subject with a terminal escape, in plan's warning about an expiring certificate:
    escaped on stderr, and in the spec's comments."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = pki.make_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "\x1b[2Jevil"),
                      x509.NameAttribute(NameOID.COMMON_NAME, FQDN)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(pki.now() - dt.timedelta(days=1))
            .not_valid_after(pki.now() + dt.timedelta(days=5))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(FQDN)]), False)
            .sign(key, hashes.SHA256())).public_bytes(serialization.Encoding.PEM).decode()
    seen = _seen(cert, verify=False)
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"format_version": "1.0", "targets": [seen.to_json()]}))
    code, err = run(capsys, "--from-inspect", report, "--pool", "p", "--wlb", "w",
                    "--out", tmp_path / "east.yaml")
    assert code == 0, err
    assert "WLB-CERT-EXPIRING" in err
    assert "\\x1b[2Jevil" in err
    assert "\x1b" not in err
    assert "\x1b" not in (tmp_path / "east.yaml").read_text()
