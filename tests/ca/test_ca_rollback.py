"""Rollback of the install stage, once the appliance has changed.

The acceptance bar: after the failed apply every file under the appliance's fake root and
every pool host is byte-identical, with the same mode, to what it was before; the flag and
the pool's trust are as before; and once the cause is fixed the original certificate is
served again (a real handshake) and a new apply succeeds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from calab import (
    LabCA,
    ca_certificate,
    ca_names,
    fingerprint,
    host_trust,
    layout,
    load_cert,
    said,
    served_chain,
    snapshot,
    snapshot_diff,
    verify_flag,
    wlbplan,
    write_spec,
    xe,
)

from wlbplan.lab import control

pytestmark = pytest.mark.lab


def _eve_of_install(lab: control.Lab, ca: LabCA, folder: Path) -> Path:
    spec = write_spec(lab, folder / "ca-signed.yaml", ca_certificate(ca, folder))
    done = wlbplan("apply", spec, "--auto-approve")  # the request stage; the signer signs
    assert done.returncode == 0, said(done)
    return spec


def _state(lab: control.Lab) -> dict[str, object]:
    return {"flag": verify_flag(lab), "names": ca_names(lab), "hosts": host_trust(lab)}


def test_restart_failure_rolls_back_the_install(tmp_path: Path, ca: LabCA,
                                                lab: control.Lab) -> None:
    spec = _eve_of_install(lab, ca, tmp_path)
    where = layout(lab)
    files, state = snapshot(lab), _state(lab)
    original = fingerprint(served_chain(lab)[0])

    fault = wlbplan("lab", "fault", "restart-fails", "--dir", lab.dir)
    assert fault.returncode == 0, said(fault)
    failed = wlbplan("apply", spec, "--auto-approve")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, said(failed)
    assert "restart" in output
    assert "PRIVATE" not in output

    # server.pem/server.key are back byte for byte; the backups stay until the rollback can
    # finish (its restart failed), so that `wlbplan rollback` can still restore from them.
    changed = snapshot_diff(files, snapshot(lab))
    assert sorted(changed) == ["new: appliance/etc/ssl/certs/server.key_orig",
                               "new: appliance/etc/ssl/certs/server.pem_orig"], changed
    assert _state(lab) == state
    assert verify_flag(lab) == "false"

    # The cause goes away; the operator restarts stunnel: the original certificate is back.
    (where.faults_dir / "restart-fails").unlink()
    subprocess.run([str(where.restart)], check=True, capture_output=True, timeout=60)
    assert fingerprint(served_chain(lab)[0]) == original

    # The undo of the restart itself failed while the fault was there (stunnel stayed
    # down), so the rollback reported itself incomplete and kept its journal: by design
    # (DESIGN §5) the next apply refuses until `wlbplan rollback` settles it.
    assert "INCOMPLETE" in output
    refused = wlbplan("apply", spec, "--auto-approve")
    assert refused.returncode == 1, said(refused)
    assert "wlbplan rollback" in refused.stdout + refused.stderr
    assert sorted(snapshot_diff(files, snapshot(lab))) == sorted(changed)
    settled = wlbplan("rollback", spec, "--target", "pool1")
    assert settled.returncode == 0, said(settled)
    assert snapshot_diff(files, snapshot(lab)) == []
    assert fingerprint(served_chain(lab)[0]) == original

    retry = wlbplan("apply", spec, "--auto-approve")
    assert retry.returncode == 0, said(retry)
    served = served_chain(lab)
    assert served == [load_cert(tmp_path / "pool1.pem"), load_cert(ca.int), load_cert(ca.root)]
    assert verify_flag(lab) == "true"
    xe(lab, "pool-retrieve-wlb-configuration")
    again = wlbplan("plan", spec, "--detailed-exitcode")
    assert again.returncode == 0, said(again)


def test_failure_after_the_restart_serves_the_original_again(
        tmp_path: Path, ca: LabCA, lab: control.Lab) -> None:
    """The last step fails (WLB's password was changed, so pool.confirm fails) after
    stunnel already serves the new chain: the rollback must bring the old one back."""
    spec = _eve_of_install(lab, ca, tmp_path)
    accounts = layout(lab).wlb_accounts
    wlb = json.loads(accounts.read_text())
    accounts.write_text(json.dumps({**wlb, "password": "changed-on-the-appliance"}))
    files, state = snapshot(lab), _state(lab)
    original = fingerprint(served_chain(lab)[0])

    failed = wlbplan("apply", spec, "--auto-approve")
    assert failed.returncode == 1, said(failed)
    assert "pool.confirm" in failed.stderr
    assert snapshot_diff(files, snapshot(lab)) == []
    assert _state(lab) == state
    assert fingerprint(served_chain(lab)[0]) == original, \
        "after the rollback stunnel still serves the new CA-signed leaf"


def test_a_chain_stunnel_cannot_load_never_leaves_wlb_down(
        tmp_path: Path, ca: LabCA, lab: control.Lab) -> None:
    request = write_spec(lab, tmp_path / "request.yaml",
                         ca_certificate(ca, tmp_path, signed=None))
    done = wlbplan("apply", request, "--auto-approve")
    assert done.returncode == 0, said(done)
    signed = ca.sign_csr(tmp_path / "pool1.csr", tmp_path / "sha1.pem", "-sha1")
    spec = write_spec(lab, tmp_path / "sha1.yaml",
                      ca_certificate(ca, tmp_path, signer=False, signed=signed),
                      policy={"forbid_sha1": False})
    files, state = snapshot(lab), _state(lab)
    original = fingerprint(served_chain(lab)[0])

    result = wlbplan("apply", spec, "--auto-approve")  # refused, or failed and rolled back
    assert result.returncode == 1, said(result)
    assert snapshot_diff(files, snapshot(lab)) == []
    assert _state(lab) == state
    assert fingerprint(served_chain(lab, tries=20)[0]) == original, "WLB is left down"
