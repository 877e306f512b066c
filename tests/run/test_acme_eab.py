"""An ACME CA that requires external account binding (the lab's Pebble with --acme-eab):
refused in the CA's words when the spec gives none, refused before any change when its
variables are unset, issued when they are set; the HMAC key never shows."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from acmelab import acme_lab, journal_texts, lab_logins, needs_pebble, pool_handshake
from applylab import (
    PYTHON,
    _env,
    assert_restored,
    before,
    plan_now,
    run_apply,
    snapshot,
    snapshot_diff,
    state_dir,
)

from wlbplan.lab import control, pebble

pytestmark = [pytest.mark.lab, needs_pebble]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    with acme_lab(tmp_path_factory.mktemp("acme-eab") / "lab", hosts=1, acme_eab=True) as made:
        yield made


def _apply(spec: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "wlbplan", "apply", str(spec), "--auto-approve"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**_env(), **env}, stdin=subprocess.DEVNULL)


def test_required_and_not_in_the_spec(lab: control.Lab, tmp_path: Path) -> None:
    data = yaml.safe_load(lab.spec_path.read_text())
    del data["targets"][0]["certificate"]["acme"]["eab"]
    spec = tmp_path / "no-eab.yaml"
    spec.write_text(yaml.safe_dump(data))
    was = before(lab)
    outcome = run_apply(plan_now(spec), tmp_path / "state")
    assert outcome.status == "rolled_back", outcome
    assert "urn:ietf:params:acme:error:externalAccountRequired" in (outcome.error or "")
    assert "set acme.eab (kid_env, hmac_env)" in (outcome.error or "")
    assert_restored(lab, was, tmp_path / "state")


def test_its_variables_unset_refuse_before_any_change(lab: control.Lab) -> None:
    was = snapshot(lab)
    result = _apply(lab.spec_path, {})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs these environment variables set before anything is changed: " \
           f"{pebble.EAB_KID_ENV}, {pebble.EAB_HMAC_ENV}" in result.stderr
    assert not snapshot_diff(was, snapshot(lab))


def test_from_the_environment_the_ca_issues(lab: control.Lab) -> None:
    logins = lab_logins(lab)
    eab = {name: logins[name] for name in (pebble.EAB_KID_ENV, pebble.EAB_HMAC_ENV)}
    result = _apply(lab.spec_path, eab)
    assert result.returncode == 0, result.stdout + result.stderr
    pool_handshake(lab)
    hmac = eab[pebble.EAB_HMAC_ENV]
    for text in (result.stdout, result.stderr, *journal_texts(state_dir(lab))):
        assert hmac not in text
