"""The request stage (no ``signed`` yet, no signer): idempotent, and re-planned only for
what changed in the request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from calab import (
    FQDN,
    LabCA,
    ca_certificate,
    change_paths,
    layout,
    plan_json,
    request_section,
    running_lab,
    said,
    snapshot,
    snapshot_diff,
    step_actions,
    wlbplan,
    write_spec,
)
from cryptography import x509
from cryptography.x509.oid import NameOID

from wlbplan.lab import control

pytestmark = pytest.mark.lab

KEY_AND_CSR = {"appliance.pending_key", "appliance.csr"}


def _request_spec(lab: control.Lab, folder: Path, ca: LabCA, name: str = "request.yaml",
                  **request: Any) -> Path:
    section = ca_certificate(ca, folder, signed=None,
                             request=request_section(folder, **request))
    return write_spec(lab, folder / name, section)


def _requested(lab: control.Lab, folder: Path, ca: LabCA) -> Path:
    """The request stage's apply: pending key and CSR on the appliance."""
    spec = _request_spec(lab, folder, ca)
    done = wlbplan("apply", spec, "--auto-approve")
    assert done.returncode == 0, said(done)
    output = done.stdout + done.stderr
    # It ends by telling which file goes to the CA.
    assert f"send {folder / 'pool1.csr'} to your CA" in output, output
    assert "PRIVATE" not in output
    assert (folder / "pool1.csr").read_bytes() == \
        (layout(lab).certs_dir / "server.csr.pending").read_bytes()
    return spec


@dataclass(frozen=True)
class Requested:
    lab: control.Lab
    folder: Path
    ca: LabCA
    spec: Path


@pytest.fixture(scope="module")
def requested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Requested]:
    """One lab after the request stage, shared by the read-only tests below (each checks
    that its plans changed nothing)."""
    folder = tmp_path_factory.mktemp("requested")
    ca = LabCA.make(folder / "ca")
    with running_lab(folder / "lab", hosts=2) as lab:
        yield Requested(lab, folder, ca, _requested(lab, folder, ca))


def test_unchanged_request_plans_nothing_but_waits_on_the_operator(requested: Requested) -> None:
    """No steps, yet not converged: a CI gate must see exit 2 and what to do next."""
    before = snapshot(requested.lab)
    target = plan_json(requested.spec, changes=True)
    assert target["stage"] == "request"
    assert target["status"] == "waiting"
    assert f"send {requested.folder / 'pool1.csr'} to your CA" in target["reason"]
    assert not KEY_AND_CSR & change_paths(target).keys()
    assert step_actions(target) == []
    text = wlbplan("plan", requested.spec, "--detailed-exitcode")
    assert text.returncode == 2, said(text)
    assert "No changes. The pool's trust" not in text.stdout
    assert "waiting for the signed certificate" in text.stdout
    assert text.stdout.rstrip().endswith("pool1: waiting on you.")
    assert snapshot_diff(before, snapshot(requested.lab)) == []


@pytest.mark.parametrize(("change", "paths", "steps"), [
    pytest.param({"subject": {"O": "Lab", "OU": "Ops"}}, {"appliance.csr"},
                 ["appliance.make_csr", "appliance.fetch_csr"], id="subject"),
    pytest.param({"alt_names": [f"DNS:{FQDN}", "DNS:wlb.lab.test"]}, {"appliance.csr"},
                 ["appliance.make_csr", "appliance.fetch_csr"], id="alt_names"),
    # A new key makes a new CSR, whatever the old one says.
    pytest.param({"key": {"type": "rsa", "bits": 3072}}, KEY_AND_CSR,
                 ["appliance.generate_key", "appliance.make_csr", "appliance.fetch_csr"],
                 id="key-bits"),
])
def test_a_changed_request_plans_what_changed(
        requested: Requested, change: dict[str, Any], paths: set[str],
        steps: list[str]) -> None:
    before = snapshot(requested.lab)
    name = f"changed-{'-'.join(change)}.yaml"
    spec = _request_spec(requested.lab, requested.folder, requested.ca, name, **change)
    target = plan_json(spec, changes=True)
    assert {p for p in change_paths(target) if p in KEY_AND_CSR} == paths
    assert all(a == "update" for p, a in change_paths(target).items() if p in paths)
    assert step_actions(target) == steps
    assert snapshot_diff(before, snapshot(requested.lab)) == []


def test_replace_plans_a_new_key_and_csr(requested: Requested) -> None:
    before = snapshot(requested.lab)
    target = plan_json(requested.spec, "--replace", changes=True)
    assert change_paths(target).keys() >= KEY_AND_CSR
    assert step_actions(target) == ["appliance.generate_key", "appliance.make_csr",
                                    "appliance.fetch_csr"]
    assert snapshot_diff(before, snapshot(requested.lab)) == []


def test_a_new_subject_reuses_the_pending_key(tmp_path: Path, ca: LabCA,
                                              lab: control.Lab) -> None:
    _requested(lab, tmp_path, ca)
    certs_dir = layout(lab).certs_dir
    key_before = (certs_dir / "server.key.pending").read_bytes()
    spec = _request_spec(lab, tmp_path, ca, "changed.yaml", subject={"O": "Lab", "OU": "Ops"})
    done = wlbplan("apply", spec, "--auto-approve")
    assert done.returncode == 0, said(done)
    assert (certs_dir / "server.key.pending").read_bytes() == key_before
    csr = x509.load_pem_x509_csr((tmp_path / "pool1.csr").read_bytes())
    assert csr.subject.rfc4514_string() == f"CN={FQDN},OU=Ops,O=Lab"
    assert plan_json(spec, changes=True)["status"] == "waiting"


def test_request_stage_after_self_signed_keeps_the_trust_in_use(
        tmp_path: Path, ca: LabCA, lab: control.Lab) -> None:
    """Migration: the pool verifies the self-signed certificate through wlbplan's trust;
    starting the CA-signed request must not announce removing it (the appliance keeps
    serving the certificate it trusts until the install stage)."""
    done = wlbplan("apply", lab.spec_path, "--auto-approve")
    assert done.returncode == 0, said(done)
    spec = _request_spec(lab, tmp_path, ca)
    target = plan_json(spec)
    assert target["stage"] == "request"
    assert step_actions(target) == ["appliance.generate_key", "appliance.make_csr",
                                    "appliance.fetch_csr"]
    deletes = [p for p, a in change_paths(target).items() if a == "delete"]
    assert deletes == [], f"the request stage announces removing trust still in use: {deletes}"


def test_a_subject_value_cannot_add_attributes(tmp_path: Path, ca: LabCA,
                                               lab: control.Lab) -> None:
    """``O: "Acme+CN=evil"`` made a CSR with a second CN when only ``\\`` and ``/`` were
    escaped for ``-subj`` (issue 16 #4). Applied on the lab, the CSR carries the value as
    one O, and the next plan sees nothing to change."""
    organization = "Acme+CN=evil.example.com/OU=x, Inc.\\"
    spec = _request_spec(lab, tmp_path, ca, "evil.yaml",
                         subject={"O": organization, "L": "Zürich"})
    done = wlbplan("apply", spec, "--auto-approve")
    assert done.returncode == 0, said(done)
    csr = x509.load_pem_x509_csr((layout(lab).certs_dir / "server.csr.pending").read_bytes())
    subject = csr.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [FQDN]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] \
        == [organization]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)] \
        == ["Zürich"]
    assert all(len(rdn) == 1 for rdn in subject.rdns)
    target = plan_json(spec, changes=True)  # waiting for the CA, with nothing to redo
    assert target["status"] == "waiting"
    assert step_actions(target) == []
