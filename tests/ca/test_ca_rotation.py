"""Rotation is an explicit plan: ``--replace`` on a converged CA-signed pool makes a new key
and CSR (and, with a signer, the new certificate); the install that follows removes the
request's files. Without a signer, the pool waits on the operator in between."""

from __future__ import annotations

from pathlib import Path

import pytest
from calab import (
    LabCA,
    ca_certificate,
    layout,
    load_cert,
    plan_json,
    said,
    served_chain,
    spki,
    step_actions,
    wlbplan,
    write_spec,
)

from wlbplan.lab import control

pytestmark = pytest.mark.lab


def _converge(spec: Path) -> None:
    for _ in range(2):  # request stage, then install
        done = wlbplan("apply", spec, "--auto-approve")
        assert done.returncode == 0, said(done)
    assert plan_json(spec, changes=False)["status"] == "no_changes"


def _request_files(lab: control.Lab) -> list[str]:
    return sorted(p.name for p in layout(lab).certs_dir.iterdir() if ".pending" in p.name)


def test_replace_rotates_with_the_signer(tmp_path: Path, ca: LabCA, lab: control.Lab) -> None:
    spec = write_spec(lab, tmp_path / "ca.yaml", ca_certificate(ca, tmp_path))
    _converge(spec)
    assert _request_files(lab) == []  # the first install cleared its request too
    first = served_chain(lab)[0]

    rotation = plan_json(spec, "--replace", changes=True)
    assert rotation["stage"] == "request"
    assert step_actions(rotation) == ["appliance.generate_key", "appliance.make_csr",
                                      "appliance.fetch_csr", "local.sign"]
    done = wlbplan("apply", spec, "--replace", "--auto-approve")
    assert done.returncode == 0, said(done)
    assert served_chain(lab)[0] == first, "the request stage changed what is served"

    actions = step_actions(plan_json(spec, changes=True))
    assert actions.index("appliance.clear_request") == actions.index("appliance.restart") + 1
    done = wlbplan("apply", spec, "--auto-approve")
    assert done.returncode == 0, said(done)
    leaf = served_chain(lab)[0]
    assert spki(leaf) != spki(first), "the rotation reused the old key"
    assert leaf == load_cert(tmp_path / "pool1.pem")
    assert _request_files(lab) == []
    assert plan_json(spec, changes=False)["status"] == "no_changes"


def test_replace_without_a_signer_waits_on_the_operator(tmp_path: Path, ca: LabCA,
                                                       lab: control.Lab) -> None:
    signed = tmp_path / "pool1.pem"
    # First round by hand: request (no `signed` yet), sign, then name it and install.
    spec = write_spec(lab, tmp_path / "ca.yaml", ca_certificate(ca, tmp_path, signer=False,
                                                                 signed=None))
    assert wlbplan("apply", spec, "--auto-approve").returncode == 0
    ca.sign_csr(tmp_path / "pool1.csr", signed)
    spec = write_spec(lab, tmp_path / "ca.yaml",
                      ca_certificate(ca, tmp_path, signer=False, signed=signed))
    assert wlbplan("apply", spec, "--auto-approve").returncode == 0
    assert plan_json(spec, changes=False)["status"] == "no_changes"

    assert wlbplan("apply", spec, "--replace", "--auto-approve").returncode == 0
    waiting = plan_json(spec, changes=True)
    assert waiting["status"] == "waiting"
    assert "rotation is under way" in waiting["reason"]
    assert str(tmp_path / "pool1.csr") in waiting["reason"]

    ca.sign_csr(tmp_path / "pool1.csr", signed)
    assert "appliance.clear_request" in step_actions(plan_json(spec, changes=True))
    assert wlbplan("apply", spec, "--auto-approve").returncode == 0
    assert _request_files(lab) == []
    assert plan_json(spec, changes=False)["status"] == "no_changes"
