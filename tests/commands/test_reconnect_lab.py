"""A pool that reaches WLB by IP is reconnected by name (pool-initialize-wlb) when the spec
names the environment variables holding the logins; the passwords never show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pool_connectors import OVER_BOTH, forwarded, up, use_logins

from wlbplan.lab import control, faults

pytestmark = pytest.mark.lab

CREDS = {"username_env": "T_WLB_USER", "password_env": "T_WLB_PASS",
         "xenserver_username_env": "T_XS_USER", "xenserver_password_env": "T_XS_PASS"}
XS_PASSWORD = "xs-secret-4711"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1", **forwarded()}
    return subprocess.run([sys.executable, "-m", "wlbplan", *args], capture_output=True,
                          text=True, timeout=120, env={**base, **(env or {})})


@pytest.fixture
def by_ip(tmp_path: Path, pool_connector: str):
    """A pool that reaches WLB by IP, reached by ``pool_connector`` (over XenAPI the
    reconnect is pool.initialize_wlb)."""
    lab = up(tmp_path / "lab", pool_connector, hosts=2)
    faults.inject(lab.dir, "by-ip")
    with pytest.MonkeyPatch.context() as env:
        use_logins(lab, env)
        yield lab
    control.down(lab.dir)


def with_credentials(lab: control.Lab, folder: Path) -> Path:
    data = yaml.safe_load(lab.spec_path.read_text())
    data["targets"][0]["wlb"]["credentials"] = CREDS
    spec = folder / "creds.yaml"
    spec.write_text(yaml.safe_dump(data))
    return spec


def logins(lab: control.Lab) -> dict[str, str]:
    account = json.loads(lab.layout("pool1").wlb_accounts.read_text())
    return {"T_WLB_USER": account["username"], "T_WLB_PASS": account["password"],
            "T_XS_USER": "root", "T_XS_PASS": XS_PASSWORD}


def wlb_url(lab: control.Lab) -> str:
    xe = str(lab.layout("pool1").xe)
    uuid = subprocess.run([xe, "pool-list", "--minimal"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return subprocess.run([xe, "pool-param-get", f"uuid={uuid}", "param-name=wlb-url"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_without_credentials_the_plan_refuses_and_says_to_reconnect(by_ip: control.Lab) -> None:
    result = run("plan", str(by_ip.spec_path))
    assert result.returncode == 1
    assert "reconnect the pool to WLB by its FQDN" in result.stderr


@OVER_BOTH
def test_reconnects_by_name_then_verifies(by_ip: control.Lab, tmp_path: Path) -> None:
    spec = with_credentials(by_ip, tmp_path)
    plan = run("plan", str(spec), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    assert "~ pool.wlb-url" in plan.stdout
    assert "pool.reconnect" in plan.stdout

    missing = run("apply", str(spec), "--auto-approve")
    assert missing.returncode == 1
    assert "T_WLB_PASS" in missing.stderr
    assert wlb_url(by_ip).startswith("127.0.0.1:")

    env = logins(by_ip)
    applied = run("apply", str(spec), "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stderr
    assert wlb_url(by_ip) == f"wlb1.lab.test:{by_ip.targets[0].port}"
    again = run("plan", str(spec), "--detailed-exitcode", env=env)
    assert again.returncode == 0, again.stdout + again.stderr

    shown = plan.stdout + missing.stderr + applied.stdout + applied.stderr
    journals = "".join(p.read_text() for p in (tmp_path / ".wlbplan").rglob("*.jsonl"))
    lab_journals = "".join(p.read_text() for p in (by_ip.dir / ".wlbplan").rglob("*.jsonl"))
    for secret in (env["T_WLB_PASS"], XS_PASSWORD):
        assert secret not in shown
        assert secret not in journals + lab_journals


@OVER_BOTH
def test_a_failed_reconnect_is_undone(by_ip: control.Lab, tmp_path: Path,
                                      pool_connector: str) -> None:
    """WLB refuses the new login: the pool changed nothing, so the rollback completes
    (before: the undo called pool-initialize-wlb again with the same refused logins, and
    the rollback ended INCOMPLETE)."""
    spec = with_credentials(by_ip, tmp_path)
    before = wlb_url(by_ip)
    env = {**logins(by_ip), "T_WLB_PASS": "wrong-password"}
    result = run("apply", str(spec), "--auto-approve", env=env)
    assert result.returncode == 1
    refused = {"xe": "WLB rejected our configured authentication details",
               "xenapi": "WLB refused the login the pool holds for it"}[pool_connector]
    assert refused in result.stderr
    assert "pool1: FAILED and rolled back" in result.stderr, result.stderr[-600:]
    assert "INCOMPLETE" not in result.stderr
    assert "wrong-password" not in result.stderr + result.stdout
    assert wlb_url(by_ip) == before


# A wrong WLB password with every character quoting changes (and a one-letter
# xenserver password): the failure quotes the command, its rollback journals that message.
HARD = {"T_WLB_PASS": "pa'ss word$1\"\\ä-wrong", "T_XS_PASS": "x"}


@pytest.fixture(params=["local", "ssh"])
def by_ip_on(request: pytest.FixtureRequest, tmp_path: Path):
    lab = control.up(tmp_path / "lab", hosts=1, ssh=request.param == "ssh")
    faults.inject(lab.dir, "by-ip")
    yield lab
    control.down(lab.dir)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_with_quotes_are_masked_in_output_and_journal(by_ip_on: control.Lab,
                                                              tmp_path: Path, fmt: str) -> None:
    """Issue 16 #1 and #24: masked per argument, never by substring."""
    spec = with_credentials(by_ip_on, tmp_path)
    result = run("apply", str(spec), "--auto-approve", "--format", fmt,
                 env={**logins(by_ip_on), **HARD})
    assert result.returncode == 1, result.stdout + result.stderr
    shown = result.stdout + result.stderr
    journals = "".join(p.read_text() for p in (tmp_path / ".wlbplan").rglob("*.jsonl"))
    assert "WLB rejected our configured authentication details" in shown
    # The refused reconnect changed nothing, so its undo does not run (and journals no
    # failure): the journal holds the variables' names only.
    assert "T_WLB_PASS" in journals
    # The run's end record keeps its error, the refused command as shown: masked there too.
    assert "wlb_password=********" in journals
    for text in (shown, journals):
        for piece in ("ss word", "\\u00e4-wrong", "ä-wrong"):
            assert piece not in text
    assert "wlb_password=********" in shown
    assert "xenserver_password=********" in shown
    assert "xenserver_username=root" in shown  # a one-letter secret masks its argument only
    assert "/bin/xe pool-initialize-wlb" in shown


def test_the_labs_logins_file_drives_the_reconnect_as_the_readme_says(
        by_ip: control.Lab, tmp_path: Path) -> None:
    env_file = by_ip.dir / "logins.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    account = json.loads(by_ip.layout("pool1").wlb_accounts.read_text())
    assert f"POOL1_WLB_PASS={account['password']}\n" in env_file.read_text()
    data = yaml.safe_load(by_ip.spec_path.read_text())
    data["targets"][0]["wlb"]["credentials"] = {
        "username_env": "POOL1_WLB_USER", "password_env": "POOL1_WLB_PASS",
        "xenserver_username_env": "POOL1_XS_USER", "xenserver_password_env": "POOL1_XS_PASS"}
    spec = tmp_path / "reconnect.yaml"
    spec.write_text(yaml.safe_dump(data))
    # As the README says: `set -a; . DIR/logins.env; set +a`, then apply.
    done = subprocess.run(
        ["bash", "-c", f'set -a; . "{env_file}"; set +a; exec "$0" -m wlbplan apply "$1" '
                       "--auto-approve", sys.executable, str(spec)],
        capture_output=True, text=True, timeout=180,
        env={"PATH": os.environ["PATH"], "NO_COLOR": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert wlb_url(by_ip) == f"wlb1.lab.test:{by_ip.targets[0].port}"
    assert account["password"] not in done.stdout + done.stderr
