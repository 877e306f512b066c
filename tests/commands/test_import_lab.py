"""`wlbplan import` on real labs: pools set up by hand the way operators do (xe, a chain
copied to server.pem, stunnel restarted), imported, then planned: no changes, or for a pool
that reaches WLB by IP with verification on, the refusal the imported spec announces.

One lab (current xapi, three pools) for the local connector and --from-inspect, one
(legacy xapi) over SSH. Every wlbplan run is in-process (`cli.main`)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from wlbplan.cli import main
from wlbplan.lab import control, faults, stunnel
from wlbplan.lab.pki import Issued, build
from wlbplan.spec import load_spec

pytestmark = pytest.mark.lab
Run = tuple[int, str, str]


def wlbplan(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Run:
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out, err


def xe(lab: control.Lab, target: str, *args: str) -> str:
    result = subprocess.run([str(lab.layout(target).xe), *args], capture_output=True,
                            text=True, check=True, timeout=60)
    return result.stdout.strip()


def set_verify(lab: control.Lab, target: str, on: bool) -> None:
    uuid = xe(lab, target, "pool-list", "--minimal")
    xe(lab, target, "pool-param-set", f"uuid={uuid}", f"wlb-verify-cert={str(on).lower()}")


def trust(lab: control.Lab, target: str, folder: Path, **pems: bytes) -> None:
    """`xe pool-install-ca-certificate` each PEM under its own name, then sync."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in pems.items():
        (folder / f"{name}.pem").write_bytes(data)
        xe(lab, target, "pool-install-ca-certificate", f"filename={folder / name}.pem")
    xe(lab, target, "pool-certificate-sync")


def ca_sign_by_hand(lab: control.Lab, target: str, folder: Path, *, leaf_too: bool) -> Issued:
    """A corporate CA signs the appliance's key; server.pem gets leaf + issuing + root,
    stunnel restarts; the pool trusts the root and the issuing CA (and the leaf, which xapi
    before 24.40 needs) under names an operator picks; verification on."""
    where = lab.layout(target)
    key = serialization.load_pem_private_key(where.key.read_bytes(), password=None)
    root = build("Corp Root CA", ca=True, days=3650)
    issuing = build("Corp Issuing CA", issuer=root, ca=True)
    leaf = build(lab.target(target).fqdn, key=key, issuer=issuing,  # type: ignore[arg-type]
                 sans=[lab.target(target).fqdn], server_auth=True)
    where.cert.write_bytes(leaf.cert_pem + issuing.cert_pem + root.cert_pem)
    assert stunnel.restart(where).returncode == 0
    extra = {"wlb-leaf": leaf.cert_pem} if leaf_too else {}
    trust(lab, target, folder / target, **{"corp-root": root.cert_pem,
                                           "corp-issuing": issuing.cert_pem}, **extra)
    set_verify(lab, target, True)
    return root


def options(lab: control.Lab, target: str, *, paths: bool = True) -> list[str]:
    """The import options that say how to reach ``target``: the lab spec's own values."""
    data = yaml.safe_load(lab.spec_path.read_text())
    pool, wlb = next((t["pool"], t["wlb"]) for t in data["targets"] if t["name"] == target)
    args = ["--name", target, "--pool", pool["coordinator"], "--connection", pool["connection"],
            "--xe", pool["xe"], "--trust-dir", pool["trust_dir"],
            "--state-dir", pool["state_dir"], "--restart", wlb["restart"],
            "--stunnel-conf", wlb["stunnel_conf"],
            "--resolve", f"{wlb['address']}={data['resolve'][wlb['address']]}"]
    if "ssh_host" in wlb:
        args += ["--wlb", wlb["ssh_host"]]
    if paths:
        args += ["--cert-path", wlb["paths"]["cert"], "--key-path", wlb["paths"]["key"]]
    ssh = data.get("defaults", {}).get("ssh")
    if ssh:
        args += ["--ssh-user", ssh["user"], "--ssh-port", str(ssh["port"]),
                 "--identity-file", ssh["identity_file"], "--known-hosts", ssh["known_hosts"]]
    return args


def flat(text: str) -> str:
    """The spec's comments unwrapped, to search in."""
    return re.sub(r"\n *# {3,}", " ", text)


def no_changes(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    code, out, err = wlbplan(capsys, "plan", spec, "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out
    assert "against the state read: no changes." in spec.read_text()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    """pool1 self-signed and trusted by hand, pool2 CA-signed by hand (both verified),
    pool3 as a lab starts (nothing trusted, verification off)."""
    folder = tmp_path_factory.mktemp("import")
    made = control.up(folder / "lab", targets=3, hosts=1)
    try:
        trust(made, "pool1", folder / "pool1", wlb=made.layout("pool1").cert.read_bytes())
        set_verify(made, "pool1", True)
        ca_sign_by_hand(made, "pool2", folder, leaf_too=False)
        yield made
    finally:
        control.down(made.dir)


def test_self_signed_imports_and_plans_no_changes(lab: control.Lab, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "pool1.yaml"
    old = os.umask(0o077)  # the modes are set, not left to the umask
    try:
        code, out, err = wlbplan(capsys, "import", *options(lab, "pool1"), "--out", spec)
    finally:
        os.umask(old)
    assert code == 0, err
    assert out == ""
    assert f"Wrote {spec}." in err
    assert "no changes." in err
    assert stat.S_IMODE(spec.stat().st_mode) == 0o644
    target = load_spec(spec).targets[0]
    assert (target.certificate.source, target.verify) == ("self-signed", True)
    assert target.wlb.address == lab.target("pool1").fqdn
    no_changes(capsys, spec)

    code, _, err = wlbplan(capsys, "import", *options(lab, "pool1"), "--out", spec)
    assert code == 1
    assert f"Error: {spec} exists; wlbplan import does not overwrite files" in err


def test_ca_signed_imports_with_its_certificates_and_plans_no_changes(
        lab: control.Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "pool2.yaml"
    code, _, err = wlbplan(capsys, "import", *options(lab, "pool2"), "--out", spec)
    assert code == 0, err
    served = lab.layout("pool2").cert.read_text()
    files = [tmp_path / f"pool2.{n}.pem" for n in ("signed", "intermediate", "root")]
    assert "".join(p.read_text() for p in files) == served
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in files)
    cert = load_spec(spec).targets[0].certificate
    assert (cert.source, cert.signed, cert.root) == ("ca-signed", files[0], files[2])
    text = flat(spec.read_text())
    assert "- corp-root.pem: CN=Corp Root CA: the root CA of WLB's chain" in text
    assert "PRIVATE" not in text + "".join(p.read_text() for p in files)
    no_changes(capsys, spec)


def test_from_inspect_imports_the_same_spec(lab: control.Lab, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, report, err = wlbplan(capsys, "inspect", lab.spec_path, "--format", "json")
    assert code == 0, err
    (tmp_path / "report.json").write_text(report)
    base = ["import", "--from-inspect", tmp_path / "report.json",
            *options(lab, "pool2", paths=False)]
    code, _, err = wlbplan(capsys, *base, "--out", tmp_path / "pool2.yaml")
    assert code == 1
    assert "holds 3 targets (pool1, pool2, pool3); choose one with --target" in err
    code, _, err = wlbplan(capsys, *base, "--target", "pool2", "--out", tmp_path / "pool2.yaml")
    assert code == 0, err
    assert "report.json (wlbplan inspect)." in flat((tmp_path / "pool2.yaml").read_text())
    no_changes(capsys, tmp_path / "pool2.yaml")
    # Again over it: refused, then --force rewrites spec and certificates.
    code, _, err = wlbplan(capsys, *base, "--target", "pool2", "--out", tmp_path / "pool2.yaml")
    assert (code, "exists" in err) == (1, True)
    (tmp_path / "pool2.root.pem").write_text("stale")
    code, _, err = wlbplan(capsys, *base, "--target", "pool2", "--out", tmp_path / "pool2.yaml",
                           "--force")
    assert code == 0, err
    assert (tmp_path / "pool2.root.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_a_fresh_pool_then_by_ip_as_found(lab: control.Lab, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Fresh (nothing trusted): the spec says plan installs the trust, and plan agrees.
    Trusted, verified, and reaching WLB by IP: the imported spec says so (address: the IP)
    and announces the refusal `plan` then gives. (By IP with verification off plans no
    changes: tests/core/test_imported.py.)"""
    spec = tmp_path / "pool3.yaml"
    code, _, err = wlbplan(capsys, "import", *options(lab, "pool3"), "--out", spec)
    assert code == 0, err
    assert "+ pool.trust[wlbplan-wlb-" in spec.read_text()
    code, out, _ = wlbplan(capsys, "plan", spec, "--detailed-exitcode")
    assert code == 2
    assert "+ pool.trust[wlbplan-wlb-" in out
    assert "Plan: 1 to add, 0 to change" in out

    trust(lab, "pool3", tmp_path / "ca", wlb=lab.layout("pool3").cert.read_bytes())
    set_verify(lab, "pool3", True)
    faults.inject(lab.dir, "by-ip", "pool3")
    code, _, err = wlbplan(capsys, "import", *options(lab, "pool3"), "--out", spec, "--force")
    assert code == 0, err
    assert load_spec(spec).targets[0].wlb.address == "127.0.0.1"
    text = flat(spec.read_text())
    assert "The pool reaches WLB by IP address" in text
    assert "against the state read: refused, as the pool is now:" in text
    code, out, err = wlbplan(capsys, "plan", spec)
    assert code == 1
    assert "pool3: no plan: refused" in out.replace("Target ", "")
    assert "reconnect the pool to WLB by its FQDN" in err


@pytest.fixture(scope="module")
def legacy_ssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    folder = tmp_path_factory.mktemp("import-legacy")
    made = control.up(folder / "lab", hosts=1, ssh=True, xapi="legacy")
    try:
        ca_sign_by_hand(made, "pool1", folder, leaf_too=True)
        yield made
    finally:
        control.down(made.dir)


@pytest.mark.ssh
def test_legacy_xapi_over_ssh_imports_and_plans_no_changes(
        legacy_ssh: control.Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "legacy.yaml"
    code, _, err = wlbplan(capsys, "import", *options(legacy_ssh, "pool1"), "--out", spec)
    assert code == 0, err
    loaded = load_spec(spec)
    target = loaded.targets[0]
    assert (target.pool.connection, target.wlb.ssh_host) == ("ssh", "127.0.0.1")
    assert target.ssh.identity_file is not None
    assert target.ssh.identity_file.is_absolute()
    assert "- wlb-leaf.pem: CN=wlb1.lab.test: WLB's certificate (xapi before 24.40" in flat(
        spec.read_text())
    no_changes(capsys, spec)
