"""The CA-signed path end to end on the real lab, unattended, as an operator runs it.

``wlbplan apply SPEC --auto-approve`` twice: the request stage (key + CSR made on the
appliance, CSR fetched, the spec's signer signs), then the install stage. Checked over
both connectors (local and a real sshd), then a second rotation.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from calab import (
    FQDN,
    LabCA,
    bundles,
    ca_certificate,
    host_trust,
    layout,
    load_cert,
    no_key_material,
    running_lab,
    said,
    served_chain,
    spki,
    verify_flag,
    wlbplan,
    write_spec,
    xe,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from wlbplan.lab import control

pytestmark = pytest.mark.lab


@dataclass
class Transcript:
    """Everything wlbplan printed or wrote locally during a test: checked for key material."""

    texts: list[str] = field(default_factory=list)

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        result = wlbplan(*args)
        self.texts += [result.stdout, result.stderr]
        return result

    def add_file(self, path: Path) -> None:
        self.texts.append(path.read_text())


def live_public_key(lab: control.Lab, name: str = "server.key") -> bytes:
    """The public half of an appliance key, as the appliance's openssl prints it."""
    done = subprocess.run(["openssl", "pkey", "-in", str(layout(lab).certs_dir / name),
                           "-pubout"], capture_output=True, text=True, check=True)
    key = serialization.load_pem_public_key(done.stdout.encode())
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def local_files_without_keys(folder: Path, *skip: Path) -> None:
    """No file wlbplan wrote on this side holds a private key (the CA's own keys aside)."""
    for path in folder.rglob("*"):
        if not path.is_file() or any(s == path or s in path.parents for s in skip):
            continue
        data = path.read_bytes()
        assert b"PRIVATE" not in data, f"{path} holds private key material"


def request_stage(lab: control.Lab, spec: Path, folder: Path, log: Transcript) -> x509.Certificate:
    """Apply #1: key + CSR on the appliance, CSR fetched, signed. Returns the signed leaf."""
    where = layout(lab)
    request_plan = folder / "request.plan.json"
    planned = log.run("plan", spec, "--out", request_plan)
    assert planned.returncode == 0, said(planned)
    log.add_file(request_plan)
    applied = log.run("apply", spec, "--auto-approve")
    assert applied.returncode == 0, said(applied)
    output = applied.stdout + applied.stderr
    assert re.search(r"^Next: .*pool1\.pem.*apply", output, re.M), output
    # The pending key and CSR are on the appliance; the key is 0600 and stays there.
    pending = where.certs_dir / "server.key.pending"
    assert pending.stat().st_mode & 0o777 == 0o600
    csr_out = folder / "pool1.csr"
    csr = x509.load_pem_x509_csr(csr_out.read_bytes())
    assert csr.subject.rfc4514_string() == f"CN={FQDN},O=Lab"
    assert spki(csr.public_key()) == live_public_key(lab, "server.key.pending")
    leaf = load_cert(folder / "pool1.pem")
    assert spki(leaf) == spki(csr.public_key()), "the signer signed another key"
    assert leaf.issuer == load_cert(folder / "ca" / "int.pem").subject
    return leaf


def install_stage(lab: control.Lab, spec: Path, folder: Path, log: Transcript,
                  plan_name: str = "install.plan.json") -> None:
    install_plan = folder / plan_name
    planned = log.run("plan", spec, "--out", install_plan)
    assert planned.returncode == 0, said(planned)
    log.add_file(install_plan)
    applied = log.run("apply", spec, "--auto-approve")
    assert applied.returncode == 0, said(applied)


def assert_serves_ca_chain(lab: control.Lab, ca: LabCA, leaf: x509.Certificate) -> None:
    """The real handshake, the files on the appliance, the pool: the spec's end state."""
    where = layout(lab)
    served = served_chain(lab)
    assert served == [leaf, load_cert(ca.int), load_cert(ca.root)], \
        [c.subject.rfc4514_string() for c in served]
    assert x509.load_pem_x509_certificates(where.cert.read_bytes()) == served
    assert where.key.stat().st_mode & 0o777 == 0o600
    assert live_public_key(lab) == spki(leaf), "server.key does not match the leaf"
    # Every pool host trusts wlbplan's root and intermediate, in its files and its bundle.
    wanted = {"wlbplan-root-": load_cert(ca.root), "wlbplan-intermediate-": load_cert(ca.int)}
    for host, files in host_trust(lab).items():
        for prefix, cert in wanted.items():
            held = [x509.load_pem_x509_certificate(data) for name, data in files.items()
                    if name.startswith(prefix)]
            assert held == [cert], f"{host}: {prefix}* is {held}"
    for host, bundle in bundles(lab).items():
        for cert in wanted.values():
            assert cert in bundle, f"{host}'s bundle lacks {cert.subject.rfc4514_string()}"
    assert verify_flag(lab) == "true"
    xe(lab, "pool-retrieve-wlb-configuration")


def converged(spec: Path, log: Transcript) -> None:
    again = log.run("plan", spec, "--detailed-exitcode")
    assert again.returncode == 0, said(again)
    assert "No changes." in again.stdout


def full_flow(lab: control.Lab, ca: LabCA, folder: Path, log: Transcript) -> Path:
    """Issue acceptance 1: two unattended applies, then nothing left to do."""
    where = layout(lab)
    original_pem, original_key = where.cert.read_bytes(), where.key.read_bytes()
    spec = write_spec(lab, folder / "ca-signed.yaml", ca_certificate(ca, folder))
    leaf = request_stage(lab, spec, folder, log)
    install_stage(lab, spec, folder, log)
    assert_serves_ca_chain(lab, ca, leaf)
    assert (where.certs_dir / "server.pem_orig").read_bytes() == original_pem
    assert (where.certs_dir / "server.key_orig").read_bytes() == original_key
    converged(spec, log)
    return spec


def assert_no_key_left_the_appliance(folder: Path, spec: Path, log: Transcript) -> None:
    journals = sorted((spec.parent / ".wlbplan").rglob("*.jsonl"))
    assert journals, "no journal was kept"
    for journal in journals:
        log.add_file(journal)
    no_key_material(*log.texts)
    local_files_without_keys(folder, folder / "ca", folder / "lab")


@pytest.mark.parametrize("ssh", [pytest.param(False, id="local"),
                                 pytest.param(True, id="ssh", marks=pytest.mark.ssh)])
def test_unattended_request_then_install(tmp_path: Path, ca: LabCA, ssh: bool) -> None:
    log = Transcript()
    with running_lab(tmp_path / "lab", hosts=2, ssh=ssh) as lab:
        spec = full_flow(lab, ca, tmp_path, log)
        assert_no_key_left_the_appliance(tmp_path, spec, log)


def test_second_rotation(tmp_path: Path, ca: LabCA, lab: control.Lab) -> None:
    """Issue acceptance 2: drop the signed file, apply twice, a new leaf is served."""
    log = Transcript()
    where = layout(lab)
    spec = full_flow(lab, ca, tmp_path, log)
    original_pem = (where.certs_dir / "server.pem_orig").read_bytes()
    original_key = (where.certs_dir / "server.key_orig").read_bytes()
    first_chain, first_key = where.cert.read_bytes(), where.key.read_bytes()
    first_leaf = load_cert(tmp_path / "pool1.pem")

    (tmp_path / "pool1.pem").unlink()
    leaf = request_stage(lab, spec, tmp_path, log)
    assert leaf != first_leaf
    assert spki(leaf) != spki(first_leaf), "the rotation reused the old key"
    assert served_chain(lab)[0] == first_leaf, "the request stage changed what is served"

    install_stage(lab, spec, tmp_path, log, "rotation.plan.json")
    assert_serves_ca_chain(lab, ca, leaf)
    # The first backups are kept as they were; this rotation added timestamped copies.
    assert (where.certs_dir / "server.pem_orig").read_bytes() == original_pem
    assert (where.certs_dir / "server.key_orig").read_bytes() == original_key
    stamped = sorted(p.name for p in where.certs_dir.iterdir()
                     if re.fullmatch(r"server\.(pem|key)_orig\.\d{8}T\d{6}Z", p.name))
    assert len(stamped) == 2, sorted(p.name for p in where.certs_dir.iterdir())
    pem_copy, key_copy = (where.certs_dir / n for n in sorted(stamped, reverse=True))
    assert pem_copy.name.startswith("server.pem_orig.")
    assert pem_copy.read_bytes() == first_chain
    assert key_copy.read_bytes() == first_key
    assert key_copy.stat().st_mode & 0o777 == 0o600
    converged(spec, log)
    assert_no_key_left_the_appliance(tmp_path, spec, log)
