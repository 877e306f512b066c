"""validate → inspect → plan → show on a real lab, as a new user runs them (subprocess)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from pool_connectors import OVER_BOTH, logins, up

from wlbplan.lab import control

pytestmark = pytest.mark.lab

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json"


def wlbplan(*args: str, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wlbplan", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd,
                          env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", **(env or {})})


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    made = control.up(tmp_path_factory.mktemp("plan") / "lab", targets=2, hosts=2)
    yield made
    control.down(made.dir)


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory):
    made = control.up(tmp_path_factory.mktemp("plan-ssh") / "lab", hosts=1, ssh=True)
    yield made
    control.down(made.dir)


def test_validate_accepts_the_lab_spec(lab: control.Lab) -> None:
    result = wlbplan("validate", str(lab.spec_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_fresh_lab_plan_has_trust_and_verify_steps(lab: control.Lab) -> None:
    result = wlbplan("plan", str(lab.spec_path), "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    text = result.stdout
    assert "+ pool.trust[wlbplan-wlb-" in text
    assert "~ pool.wlb-verify-cert" in text
    for action in ("pool.install_ca", "pool.certificate_sync", "pool.preflight",
                   "pool.set_verify", "pool.confirm"):
        assert action in text
    assert text.rstrip().endswith("Plan: 2 to add, 2 to change, 0 to remove.")
    assert "\x1b[" not in text  # NO_COLOR and a pipe: no colour codes


def test_plan_without_detailed_exitcode_exits_0(lab: control.Lab) -> None:
    assert wlbplan("plan", str(lab.spec_path)).returncode == 0


def test_json_plan_validates_against_the_schema(lab: control.Lab) -> None:
    result = wlbplan("plan", str(lab.spec_path), "--format", "json", "--target", "pool2")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert document["format_version"] == "1.2"
    assert [t["name"] for t in document["targets"]] == ["pool2"]
    assert "PRIVATE" not in result.stdout


def test_saved_plan_shows_in_every_format(lab: control.Lab, tmp_path: Path) -> None:
    out = tmp_path / "pool1.plan.json"
    made = wlbplan("plan", str(lab.spec_path), "--target", "pool1", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert out.exists()
    text = wlbplan("show", str(out))
    assert text.returncode == 0, text.stderr
    assert text.stdout == made.stdout
    as_json = wlbplan("show", str(out), "--format", "json")
    saved = json.loads(out.read_text())
    shown = json.loads(as_json.stdout)
    # The saved file keeps the public PEMs apply needs; shown JSON has fingerprints.
    assert shown["spec"] == saved["spec"]
    assert shown["targets"][0]["changes"] == saved["targets"][0]["changes"]
    assert "BEGIN CERTIFICATE" in out.read_text()
    assert "BEGIN CERTIFICATE" not in as_json.stdout
    markdown = wlbplan("show", str(out), "--format", "markdown")
    assert markdown.returncode == 0
    assert markdown.stdout.startswith("**Plan:** 1 to add, 1 to change, 0 to remove")
    assert "<details>" in markdown.stdout


def test_saved_plan_works_from_any_folder_and_says_how_to_apply(lab: control.Lab) -> None:
    made = wlbplan("plan", "lab.yaml", "--target", "pool1", "--out", "tfplan", cwd=lab.dir)
    assert made.returncode == 0, made.stderr
    assert made.stderr.endswith("To perform exactly these actions, run:\n"
                                "  wlbplan apply tfplan\n"), made.stderr
    saved = lab.dir / "tfplan"
    assert json.loads(saved.read_text())["spec"]["path"] == str(lab.spec_path)
    elsewhere = wlbplan("show", str(saved), cwd=Path("/"))
    assert elsewhere.returncode == 0, elsewhere.stderr
    narrowed = wlbplan("apply", str(saved), "--target", "pool1", cwd=Path("/"))
    assert narrowed.returncode == 1
    assert "applied whole" in narrowed.stderr
    saved.unlink()


def test_inspect_in_both_formats(lab: control.Lab) -> None:
    text = wlbplan("inspect", str(lab.spec_path), "--target", "pool1")
    assert text.returncode == 0, text.stderr
    assert "wlb-verify-cert  false" in text.stdout
    assert "matches the certificate" in text.stdout
    as_json = wlbplan("inspect", str(lab.spec_path), "--format", "json")
    document = json.loads(as_json.stdout)
    assert [t["target"] for t in document["targets"]] == ["pool1", "pool2"]
    assert document["targets"][0]["derived"]["key_matches_certificate"] is True
    assert "PRIVATE" not in as_json.stdout


def test_inspect_goes_on_past_a_target_it_cannot_inspect(lab: control.Lab,
                                                          tmp_path: Path) -> None:
    """One target's failure is that target's: the others are inspected and shown, each
    target's status is in the output, progress goes to stderr, exit 1."""
    data = yaml.safe_load(lab.spec_path.read_text())
    data["targets"][0]["pool"]["xe"] = str(tmp_path / "no-xe-here")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    as_json = wlbplan("inspect", str(spec), "--format", "json")
    assert as_json.returncode == 1, as_json.stderr
    document = json.loads(as_json.stdout)  # stdout: the JSON document alone
    assert [t["target"] for t in document["targets"]] == ["pool2"]
    assert [u["target"] for u in document["unreachable"]] == ["pool1"]
    assert "no-xe-here" in document["unreachable"][0]["error"]
    err = as_json.stderr
    assert re.search(r"^pool1: FAILED \([\d.]+s\) \[\d/2, \d failed\]$", err, re.MULTILINE), err
    assert re.search(r"^pool2: ok \([\d.]+s\)", err, re.MULTILINE), err
    assert re.search(r"^inspect: 2 targets, 1 ok, 1 failed \(pool1\) in ", err, re.MULTILINE)
    assert re.search(r"^  - pool1 \(unreachable\): .*no-xe-here", err, re.MULTILINE), err
    assert "Traceback" not in err
    text = wlbplan("inspect", str(spec))
    assert text.returncode == 1, text.stderr
    assert re.search(r"^pool1\n  could not be inspected: .*no-xe-here", text.stdout,
                     re.MULTILINE), text.stdout
    assert re.search(r"^pool2\n  appliance", text.stdout, re.MULTILINE), text.stdout
    assert "wlb-verify-cert  false" in text.stdout


@OVER_BOTH
def test_converged_pool_plans_no_changes(tmp_path: Path, pool_connector: str) -> None:
    """Trust installed by hand under a name wlbplan did not choose: matched by content over
    xe, by fingerprint over XenAPI (which shows no PEM)."""
    made = up(tmp_path / "lab", pool_connector, hosts=2)
    try:
        xe = str(made.layout("pool1").xe)
        pem = tmp_path / "server.pem"
        pem.write_bytes(made.layout("pool1").cert.read_bytes())
        subprocess.run([xe, "pool-install-ca-certificate", f"filename={pem}"], check=True)
        uuid = subprocess.run([xe, "pool-list", "--minimal"], capture_output=True, text=True,
                              check=True).stdout.strip()
        subprocess.run([xe, "pool-param-set", f"uuid={uuid}", "wlb-verify-cert=true"],
                       check=True)
        result = wlbplan("plan", str(made.spec_path), "--detailed-exitcode",
                         env=logins(made))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[-1].startswith("No changes.")
    finally:
        control.down(made.dir)


def test_unknown_target_is_an_error_with_a_suggestion(lab: control.Lab) -> None:
    result = wlbplan("plan", str(lab.spec_path), "--target", "pool3x")
    assert result.returncode == 1
    assert "no target named 'pool3x'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.ssh
def test_plan_over_ssh_matches_local(ssh_lab: control.Lab) -> None:
    result = wlbplan("plan", str(ssh_lab.spec_path), "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    assert "pool.install_ca" in result.stdout


@pytest.mark.ssh
def test_ssh_host_key_mismatch_is_refused(ssh_lab: control.Lab, tmp_path: Path) -> None:
    spec = yaml.safe_load(ssh_lab.spec_path.read_text())
    wrong = tmp_path / "known_hosts"
    other = ssh_lab.ssh.client_key.with_name("id_ed25519.pub").read_text().split()[:2]
    wrong.write_text(f"[127.0.0.1]:{ssh_lab.ssh_port} {' '.join(other)}\n")
    spec["defaults"]["ssh"]["known_hosts"] = str(wrong)
    broken = tmp_path / "spec.yaml"
    broken.write_text(yaml.safe_dump(spec))
    result = wlbplan("plan", str(broken))
    assert result.returncode == 1
    assert "SHA256:" in result.stderr
    assert "127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
