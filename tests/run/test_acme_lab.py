"""source: acme on the lab's real ACME CA (Pebble), over the local connector: a refused
order changes nothing; first issuance from the self-signed appliance to a pool that
verifies the issued chain; a second plan shows no changes; a renewal forced by
renew_before_days; an ACME server that is down changes nothing. One Pebble for the module:
its tests run in file order, each from the state the one before left."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from acmelab import (
    account_keys,
    acme_lab,
    acme_spec,
    journal_texts,
    key_body,
    logging_hooks,
    needs_pebble,
    pool_handshake,
    secret_scan,
)
from applylab import (
    TARGET,
    assert_restored,
    before,
    ca_names,
    layout,
    no_key_material,
    plan_now,
    run_apply,
    served_fingerprint,
    state_dir,
    verify_flag,
    wlbplan,
)

from wlbplan.lab import control, pebble
from wlbplan.run import pipeline
from wlbplan.spec import load_spec

pytestmark = [pytest.mark.lab, needs_pebble]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    with acme_lab(tmp_path_factory.mktemp("acme") / "lab") as made:
        yield made


def test_a_wrong_txt_value_makes_the_order_invalid_and_changes_nothing(
        lab: control.Lab, tmp_path: Path) -> None:
    """The hook publishes a wrong value: Pebble's VA really looks it up and refuses. The
    key and CSR made on the appliance are rolled back, the record is cleared."""
    challenge, log = logging_hooks(lab, tmp_path)
    challenge["set"] = [*challenge["set"][:-1], "wrong-{value}"]
    spec = acme_spec(lab, tmp_path / "wrong.yaml", challenge=challenge)
    was = before(lab)
    outcome = run_apply(plan_now(spec), tmp_path / "state")
    assert outcome.status == "rolled_back", outcome
    assert "refused the challenge" in (outcome.error or "")
    assert "urn:ietf:params:acme:error:unauthorized" in (outcome.error or "")
    assert_restored(lab, was, tmp_path / "state")
    calls = log.read_text().splitlines()
    assert calls[0].startswith("set _acme-challenge.wlb1.lab.test wrong-"), calls
    assert calls[1:]
    assert all(c == "clear _acme-challenge.wlb1.lab.test" for c in calls[1:])
    # audit reads the state folder's history: the failed order is a finding, in its words.
    loaded = load_spec(spec)
    audited = pipeline.audit_all(loaded, loaded.targets, state_dir=tmp_path / "state")
    (failing,) = [f for f in audited.targets[0].findings
                  if f.rule_id == "WLB-ACME-RENEWAL-FAILING"]
    assert "failed and was rolled back: the CA at" in failing.message
    assert "urn:ietf:params:acme:error:unauthorized" in failing.message


def test_a_rejected_name_is_said_in_the_cas_words_and_changes_nothing(
        lab: control.Lab, tmp_path: Path) -> None:
    fqdn = lab.target(TARGET).fqdn
    spec = acme_spec(lab, tmp_path / "blocked.yaml", request={
        "alt_names": [f"DNS:{fqdn}", "DNS:blocked.lab.test"],
        "key": {"type": "rsa", "bits": 2048}})
    was = before(lab)
    result = wlbplan("apply", str(spec), "--auto-approve", "--state-dir",
                     str(tmp_path / "state"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "urn:ietf:params:acme:error:rejectedIdentifier" in result.stderr
    assert "use names it accepts in certificate.request" in result.stderr
    assert "Traceback" not in result.stderr
    assert_restored(lab, was, tmp_path / "state")


def test_first_issuance_from_the_self_signed_appliance(lab: control.Lab, tmp_path: Path) -> None:
    """One spec, one `wlbplan apply`: the pool verifies the ACME-issued chain (a real
    handshake by name with each host's bundle); the next plan has nothing to do."""
    with pytest.raises(OSError):  # SSLError: the pool trusts nothing yet (not even a bundle)
        pool_handshake(lab)
    spec = str(lab.spec_path)
    saved = tmp_path / "first.plan.json"
    made = wlbplan("plan", spec, "--out", str(saved))
    assert made.returncode == 0, made.stderr
    assert "acme.order" in made.stdout
    assert "issue: the appliance serves a self-signed certificate" in made.stdout
    result = wlbplan("apply", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the CA issued the certificate" in result.stderr
    # The order's own progress reaches the operator while it runs (it can take minutes).
    assert "pool1: ACME: TXT record _acme-challenge." in result.stderr
    leaf = pool_handshake(lab)
    assert leaf == served_fingerprint(lab)
    assert verify_flag(lab) == "true"
    names = ca_names(lab)
    assert any(n.startswith("wlbplan-root-") for n in names), names
    assert any(n.startswith("wlbplan-intermediate-") for n in names), names
    where = layout(lab)
    assert where.key.stat().st_mode & 0o777 == 0o600
    assert not Path(f"{where.key}.pending").exists()
    again = wlbplan("plan", spec, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout

    # Secrets: the account key (made 0600 in the state folder) and the appliance's key
    # appear in no output, plan or journal.
    (key,) = account_keys(state_dir(lab))
    assert key.stat().st_mode & 0o777 == 0o600
    texts = [made.stdout, made.stderr, saved.read_text(), result.stdout, result.stderr,
             again.stdout, again.stderr, *journal_texts(state_dir(lab))]
    no_key_material(*texts)
    secret_scan([key_body(key), key_body(where.key)], *texts)
    record = [json.loads(line) for line in journal_texts(state_dir(lab))[-1].splitlines()]
    assert [r["event"] for r in record].count("extend") == 1


def test_renewal_forced_by_renew_before_days(lab: control.Lab, tmp_path: Path) -> None:
    """Pebble issues for 90 days: with renew_before_days 100 the served certificate is due,
    and the same plan renews it; with the default 30 nothing is due."""
    spec = acme_spec(lab, tmp_path / "renew.yaml", renew_before_days=100)
    old = served_fingerprint(lab)
    planned = plan_now(spec)
    assert planned.plan.stage == "order"
    (reason,) = [c.reason for c in planned.plan.changes if c.path == "appliance.chain"]
    assert re.fullmatch(r"renew: expires \d{4}-\d\d-\d\d, in 8\d days \(renew_before_days: "
                        r"100\)", reason), reason
    outcome = run_apply(planned, tmp_path / "state")
    assert outcome.status == "applied", outcome
    new = pool_handshake(lab)
    assert new != old
    assert plan_now(lab.spec_path).plan.steps == ()


def test_an_acme_server_that_is_down_changes_nothing(lab: control.Lab, tmp_path: Path) -> None:
    """Last: Pebble makes a new root at every start, so it is not started again."""
    spec = acme_spec(lab, tmp_path / "renew.yaml", renew_before_days=100)
    assert pebble.stop_pebble(pebble.AcmeLayout(lab.acme_dir)) is not None
    was = before(lab)
    result = wlbplan("apply", str(spec), "--auto-approve", "--state-dir",
                     str(tmp_path / "state"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert lab.acme is not None
    assert f"cannot reach the ACME server at {lab.acme.directory_url}" in result.stderr
    assert "Traceback" not in result.stderr
    assert_restored(lab, was, tmp_path / "state")
