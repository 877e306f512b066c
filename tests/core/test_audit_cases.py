"""The audit rules as data: every tests/core/audit_cases/*.yaml is spec + observed → findings.

A case file (tests/differ_fixtures.py documents the ``observed`` form)::

    description: one line
    spec: {pool: ..., wlb: ..., certificate: ..., verify: ...}   # one target, as written
    resolve: {wlb.example.com: 127.0.0.1}   # optional: the spec's resolve map
    observed: {appliance: ..., pool: ...}
    lock: {id: L-1, owner: op@laptop, pid: 4242, created: "2025-01-31T09:30:00Z"}  # optional
          # (alive: true|false — its owner's process, as seen on this machine; unset: elsewhere)
    conf: {cert: …, key: …}       # optional: what stunnel.conf loads (or problem: …)
    last_order: {ended: "2026-05-01T03:17:00Z", outcome: rolled_back, reason: …}
                                  # optional: how the state folder's newest ACME order ended
    lookup: {name: …, found: true, addresses: [10.0.0.5]}   # optional: the coordinator's
                                  # getent hosts of WLB's name (unset: not asked)
    checks: {leftovers: [{path, kind, age_days}], addresses: [10.0.0.5]}  # optional: what
                                  # the appliance's command also read
    expect:                       # exactly these findings, as RULE-ID: level
      WLB-POOL-BY-IP: warning
    contains:                     # optional: substrings of a rule's message or hint
                                  # ({spec} stands for the case spec's path)
      WLB-POOL-BY-IP: [pool-initialize-wlb]

Beyond what a case lists, every finding is checked for what audit promises in general:
its rule is in the catalogue, it points at a line of the spec, it carries no PEM or key
material, and its fingerprint is stable across two runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from differ_fixtures import Registry, observed

from wlbplan.core import rules
from wlbplan.core.audit import audit_target
from wlbplan.core.findings import Finding
from wlbplan.core.stunnel_conf import Served as StunnelServes
from wlbplan.model.checks import ApplianceChecks, Leftover, NameLookup
from wlbplan.model.history import LastOrder
from wlbplan.model.lock import LockInfo
from wlbplan.model.spec import Spec
from wlbplan.spec import load_spec_text

CASES = Path(__file__).parent / "audit_cases"
CASE_KEYS = {"description", "spec", "resolve", "observed", "lock", "conf", "last_order",
             "lookup", "checks", "expect", "contains"}


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.yaml"))


def load_case(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text("utf-8"))
    unknown = set(data) - CASE_KEYS
    assert not unknown, f"{path.name}: unknown keys {sorted(unknown)}"
    return data  # type: ignore[no-any-return]


def load_target_spec(case: Mapping[str, Any], name: str, folder: Path) -> Spec:
    document = {"version": 1, "targets": [{"name": name, **case["spec"]}],
                **({"resolve": case["resolve"]} if "resolve" in case else {})}
    text = yaml.safe_dump(document, sort_keys=False)
    spec, diagnostics = load_spec_text(text, folder / f"{name}.yaml")
    assert spec is not None, "\n".join(d.format() for d in diagnostics)
    return spec


def run(path: Path, reg: Registry, folder: Path) -> tuple[Spec, list[Finding]]:
    case = load_case(path)
    spec = load_target_spec(case, path.stem, folder)
    target = spec.targets[0]
    held = dict(case.get("lock") or {})
    alive = held.pop("alive", None)  # the pipeline's look at the owner's process
    conf = case.get("conf")  # what the appliance's stunnel.conf loads, as read
    order = case.get("last_order")
    lookup, checks = case.get("lookup"), dict(case.get("checks") or {})
    audited = audit_target(spec, target, observed(case.get("observed", {}), target, reg),
                           lock=LockInfo(target=target.name, **held) if held else None,
                           lock_owner_alive=alive,
                           conf=None if conf is None else StunnelServes(**conf),
                           last_order=None if order is None else LastOrder(
                               dt.datetime.fromisoformat(order["ended"]), order["outcome"],
                               order.get("reason")),
                           lookup=None if lookup is None else NameLookup(
                               lookup["name"], lookup["found"], tuple(lookup.get("addresses", ()))),
                           checks=ApplianceChecks(
                               tuple(Leftover(**item) for item in checks.get("leftovers", ())),
                               tuple(checks.get("addresses", ()))))
    return spec, list(audited.findings)


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.stem)
def test_case(path: Path, reg: Registry, spec_dir: Path) -> None:
    case = load_case(path)
    spec, findings = run(path, reg, spec_dir)
    got = {f.rule_id: f.level for f in findings}
    assert got == (case.get("expect") or {}), "\n".join(
        f"{f.level} {f.rule_id}: {f.message} — {f.hint}" for f in findings)
    for rule_id, pieces in (case.get("contains") or {}).items():
        said = " ".join(f"{f.message} {f.hint}" for f in findings if f.rule_id == rule_id)
        for piece in pieces:
            piece = piece.replace("{spec}", str(spec.path))
            assert piece in said, f"{rule_id}: {piece!r} not in {said!r}"
    for finding in findings:  # hints are pasted as they are: the real spec, never "SPEC"
        assert "SPEC " not in finding.hint, finding


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.stem)
def test_every_finding_is_catalogued_located_and_clean(
        path: Path, reg: Registry, spec_dir: Path) -> None:
    _, findings = run(path, reg, spec_dir)
    again = run(path, reg, spec_dir)[1]
    for finding in findings:
        assert finding.rule_id in rules.CATALOGUE
        assert finding.level in rules.LEVELS
        assert finding.line is not None
        assert finding.line >= 1
        assert finding.spec_path.startswith("targets[0]")
        text = f"{finding.message} {finding.hint} {finding.about}"
        assert "BEGIN" not in text
        assert "PRIVATE" not in text
        assert finding.target == path.stem
    assert [f.fingerprint for f in findings] == [f.fingerprint for f in again]


def test_the_cases_cover_every_rule_that_data_can_reach() -> None:
    """Each catalogue rule is exercised by some case (except reaching the target, which
    needs a real connection: tests/commands/test_audit_lab.py, and the ignore list's own
    note: tests/core/test_ignores.py)."""
    seen = set()
    for path in case_files():
        seen |= set(load_case(path).get("expect") or {})
    # Modern-policy rules beyond these have their own tests in test_certs.py.
    untested = set(rules.CATALOGUE) - seen - {
        "WLB-TARGET-UNREACHABLE", "WLB-CHAIN-MODERN-REJECT", "WLB-CHAIN-ROOT-NOT-CA",
        "WLB-CHAIN-INTERMEDIATE-NOT-CA", "WLB-CERT-EKU-NO-SERVERAUTH",
        "WLB-CERT-NOT-YET-VALID", "WLB-CERT-SHA1-SIGNATURE", "WLB-CERT-RSA-WEAK",
        "WLB-CHAIN-CA-NO-KEY-USAGE", "WLB-IGNORE-UNUSED"}
    assert not untested, sorted(untested)
