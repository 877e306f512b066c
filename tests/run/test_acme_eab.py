"""An ACME CA that requires external account binding (the lab's Pebble with --acme-eab):
refused in the CA's words when the spec gives none, refused before any change when its
variables are unset, issued when they are set; the HMAC key never shows.

The pool is Citrix Hypervisor 8.2's (lab mode "ch82", xapi 1.249, older than 1.290.0:
only the older CA certificate commands, pool-certificate-install / -uninstall, and no
verifyPeer, so WLB is accepted only when the leaf itself is in the bundle): the same lab
shows the ACME path trusting the leaf there through those commands, and `apply --replace`
ordering a new certificate although none is due and swapping the leaf's trust. Tests run
in file order, each from the state the one before left."""

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
    ca_names,
    plan_now,
    run_apply,
    served_fingerprint,
    snapshot,
    snapshot_diff,
    state_dir,
    verify_flag,
)

from wlbplan.lab import control, pebble

pytestmark = [pytest.mark.lab, needs_pebble]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    with acme_lab(tmp_path_factory.mktemp("acme-eab") / "lab", hosts=1, acme_eab=True,
                  xapi="ch82") as made:
        yield made


def _apply(spec: Path, env: dict[str, str], *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "wlbplan", "apply", str(spec), "--auto-approve",
                           *more],
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


def _eab(lab: control.Lab) -> dict[str, str]:
    logins = lab_logins(lab)
    return {name: logins[name] for name in (pebble.EAB_KID_ENV, pebble.EAB_HMAC_ENV)}


def _leaves(lab: control.Lab) -> set[str]:
    return {n for n in ca_names(lab) if n.startswith("wlbplan-leaf-")}


def test_from_the_environment_the_ca_issues(lab: control.Lab) -> None:
    """On the 1.249 pool the leaf is trusted too (its bundle is what verifies WLB)."""
    eab = _eab(lab)
    result = _apply(lab.spec_path, eab)
    assert result.returncode == 0, result.stdout + result.stderr
    assert pool_handshake(lab) == served_fingerprint(lab)
    assert len(_leaves(lab)) == 1, ca_names(lab)
    assert verify_flag(lab) == "true"
    hmac = eab[pebble.EAB_HMAC_ENV]
    for text in (result.stdout, result.stderr, *journal_texts(state_dir(lab))):
        assert hmac not in text


def test_replace_orders_now_and_swaps_the_leafs_trust(lab: control.Lab) -> None:
    """Not due (90 days left), so a plain plan has nothing to do; `--replace` orders a new
    certificate now: the pool trusts the new leaf, no longer the old one, and verifies."""
    assert plan_now(lab.spec_path).plan.steps == ()
    old, old_leaves = served_fingerprint(lab), _leaves(lab)
    result = _apply(lab.spec_path, _eab(lab), "--replace")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "acme.order" in result.stderr
    assert "the CA issued the certificate" in result.stderr
    new = pool_handshake(lab)
    assert new != old
    assert new == served_fingerprint(lab)
    leaves = _leaves(lab)
    assert len(leaves) == 1
    assert leaves != old_leaves, "the old leaf is still trusted, or the new one is not"
    assert plan_now(lab.spec_path).plan.steps == ()
