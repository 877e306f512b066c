"""The CA-signed path against a pool whose xapi is older than 24.40 (verifyPeer).

Such a pool only accepts WLB when the leaf itself is in its bundle, so the plan also
trusts ``wlbplan-leaf-*``; a rotation swaps that leaf's trust once the new one works,
and never touches a CA certificate someone installed by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from calab import (
    LabCA,
    bundles,
    ca_certificate,
    ca_names,
    change_paths,
    host_trust,
    layout,
    load_cert,
    plan_json,
    running_lab,
    said,
    served_chain,
    step_actions,
    verify_flag,
    wlbplan,
    write_spec,
    xe,
)
from cryptography import x509

from wlbplan.lab import control

pytestmark = pytest.mark.lab


def _apply(spec: Path) -> None:
    done = wlbplan("apply", spec, "--auto-approve")
    assert done.returncode == 0, said(done)
    assert "PRIVATE" not in done.stdout + done.stderr


def _leaf_names(lab: control.Lab) -> set[str]:
    return {n for n in ca_names(lab) if n.startswith("wlbplan-leaf-")}


def _assert_every_host_trusts(lab: control.Lab, certs: list[x509.Certificate],
                              corp: bytes) -> None:
    for host, files in host_trust(lab).items():
        held = [x509.load_pem_x509_certificate(data) for data in files.values()]
        for cert in certs:
            assert cert in held, f"{host} does not trust {cert.subject.rfc4514_string()}"
        assert files.get("corp.pem") == corp, f"{host}: corp.pem was touched"
    for host, bundle in bundles(lab).items():
        for cert in certs:
            assert cert in bundle, f"{host}'s bundle lacks {cert.subject.rfc4514_string()}"


@pytest.mark.parametrize("xapi", ["legacy", "ch82"])
def test_legacy_xapi_trusts_the_leaf_and_rotates_it(tmp_path: Path, ca: LabCA,
                                                    xapi: str) -> None:
    """``ch82``: Citrix Hypervisor 8.2 (xapi 1.249), which also has only the older CA
    certificate commands (pool-certificate-install / -uninstall)."""
    corp_ca = LabCA.make(tmp_path / "corp", name="Corp")
    corp_file = tmp_path / "corp.pem"
    corp_file.write_bytes(corp_ca.root.read_bytes())
    with running_lab(tmp_path / "lab", hosts=2, xapi=xapi) as lab:
        install = "pool-certificate-install" if xapi == "ch82" else "pool-install-ca-certificate"
        xe(lab, install, f"filename={corp_file}")
        corp = corp_file.read_bytes()
        spec = write_spec(lab, tmp_path / "ca-signed.yaml", ca_certificate(ca, tmp_path))
        _apply(spec)  # request stage: key, CSR, signed

        leaf = load_cert(tmp_path / "pool1.pem")
        install = plan_json(spec)
        trusted = {p for p, a in change_paths(install).items() if a == "create"}
        roles = sorted(p.split("[", 1)[1].rsplit("-", 1)[0] for p in trusted)
        assert roles == ["wlbplan-intermediate", "wlbplan-leaf", "wlbplan-root"], trusted
        assert not [p for p, a in change_paths(install).items() if a == "delete"]
        _apply(spec)

        assert served_chain(lab) == [leaf, load_cert(ca.int), load_cert(ca.root)]
        assert verify_flag(lab) == "true"
        xe(lab, "pool-retrieve-wlb-configuration")
        first_leaf_trust = _leaf_names(lab)
        assert len(first_leaf_trust) == 1
        _assert_every_host_trusts(lab, [leaf, load_cert(ca.int), load_cert(ca.root)], corp)

        # Rotation: a new key and certificate; the old leaf's trust goes once the new works.
        (tmp_path / "pool1.pem").unlink()
        request = plan_json(spec)
        assert request["stage"] == "request"
        # The leaf served until the install stage stays trusted meanwhile.
        assert [p for p, a in change_paths(request).items() if a == "delete"] == []
        _apply(spec)
        new_leaf = load_cert(tmp_path / "pool1.pem")
        rotation = plan_json(spec)
        changes = change_paths(rotation)
        (old_name,) = first_leaf_trust
        assert changes[f"pool.trust[{old_name}]"] == "delete"
        assert [p for p, a in changes.items() if a == "delete"] == [f"pool.trust[{old_name}]"]
        actions = step_actions(rotation)
        assert actions.index("pool.uninstall_ca") > actions.index("pool.confirm"), actions
        _apply(spec)

        assert served_chain(lab)[0] == new_leaf
        names = ca_names(lab)
        assert old_name not in names
        assert "corp.pem" in names
        assert len(_leaf_names(lab)) == 1
        assert _leaf_names(lab) != first_leaf_trust
        for host, files in host_trust(lab).items():
            assert old_name not in files, f"{host} still trusts the old leaf"
        _assert_every_host_trusts(lab, [new_leaf, load_cert(ca.int), load_cert(ca.root)], corp)
        assert verify_flag(lab) == "true"
        xe(lab, "pool-retrieve-wlb-configuration")
        again = wlbplan("plan", spec, "--detailed-exitcode")
        assert again.returncode == 0, said(again)
        assert (layout(lab).certs_dir / "server.pem_orig").exists()
