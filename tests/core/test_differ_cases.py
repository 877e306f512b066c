"""The differ/planner as data: every tests/core/diff_cases/*.yaml is spec + observed → plan.

A case file (tests/differ_fixtures.py documents the ``observed`` form)::

    description: one line
    xfail: why (optional; the case states the correct behaviour and the core fails it)
    xfail_raises: IndexError  # what the core fails with today (default AssertionError; a list)
    spec: {pool: ..., wlb: ..., certificate: ..., verify: ...}   # one target, as written
    resolve: {...}                                               # optional spec key
    observed: {appliance: ..., pool: ...}                        # differ_fixtures' form
    expect:
      stage: trust | request | install
      changes: [{path: "pool.trust[wlbplan-wlb-*]", action: create, cert: self_signed_wlb}]
      steps: [pool.install_ca, pool.certificate_sync, ...]
      details: [{action: pool.preflight, params: {...}, commands_contain: [...]}]
      notes: [substring]       warnings: [substring]
      error: substring         error_type: VerifyError
      trust_after: [{name: "wlbplan-wlb-*", cert: self_signed_wlb}]  # after a simulated apply
      converges: true          # default (not for the request stage)

Beyond what a case lists, every plan is checked for what DESIGN §3/§5 promise in
general: no PEM or key material in a shown command, only wlbplan's names installed or
removed, xe would accept every install/uninstall in that order, *_orig never
overwritten, the flag flipped only after a preflight, and — applied in a simulation —
the plan converges: planning again from the resulting state finds nothing to do.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from differ_fixtures import (
    MANAGED_NAME,
    Registry,
    name_matches,
    observed,
    trusted_name,
)

from wlbplan import certs
from wlbplan.core.desired import Anchor, desired_state, managed
from wlbplan.core.diff import Change, diff
from wlbplan.core.plan import TargetPlan, plan_one, plan_target
from wlbplan.errors import WlbplanError
from wlbplan.model.observed import Observed, TrustedCert
from wlbplan.model.spec import Spec
from wlbplan.spec import load_spec_text

CASES = Path(__file__).parent / "diff_cases"
STAMP = dt.datetime(2025, 1, 31, 9, 30, tzinfo=dt.UTC)
STAMP_TEXT = "20250131T093000Z"

CASE_KEYS = {"description", "xfail", "xfail_raises", "spec", "resolve", "observed", "expect"}
EXPECT_KEYS = {"stage", "changes", "steps", "details", "notes", "warnings", "error",
               "error_type", "trust_after", "converges"}
RAISES = {"AssertionError": AssertionError, "IndexError": IndexError}
DETAIL_KEYS = {"action", "name", "cert", "params", "chain", "commands_contain",
               "commands_exclude"}
TRUST_PATH = re.compile(r"^pool\.trust\[(.+)\]$")
FORBIDDEN = ("BEGIN", "PRIVATE")  # no PEM, and never key material, in what is shown


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.yaml"))


def load_case(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(data, dict), f"{path.name}: a case is a mapping"
    _known(data, CASE_KEYS, path.name)
    _known(data.get("expect", {}), EXPECT_KEYS, f"{path.name}: expect")
    for detail in data.get("expect", {}).get("details", []):
        _known(detail, DETAIL_KEYS, f"{path.name}: expect.details[]")
    return data


def _known(data: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = set(data) - keys
    assert not unknown, f"{where}: unknown keys {sorted(unknown)} (known: {sorted(keys)})"


def _params() -> list[Any]:
    out = []
    for path in case_files():
        case = load_case(path)
        reason = case.get("xfail")
        named = case.get("xfail_raises", "AssertionError")
        raises = tuple(RAISES[n] for n in ([named] if isinstance(named, str) else named))
        marks = [pytest.mark.xfail(strict=True, raises=raises, reason=reason)] if reason else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


# ------------------------------------------------------------------------ the runner


def load_target_spec(case: Mapping[str, Any], name: str, folder: Path) -> Spec:
    """Wrap the case's target in a spec document and load it as ``wlbplan plan`` would."""
    target = {"name": name, **case["spec"]}
    document: dict[str, Any] = {"version": 1}
    if "resolve" in case:
        document["resolve"] = case["resolve"]
    document["targets"] = [target]
    text = yaml.safe_dump(document, sort_keys=False)
    spec, diagnostics = load_spec_text(text, folder / f"{name}.yaml")
    shown = "\n".join(d.format() for d in diagnostics)
    assert spec is not None, f"the case's spec does not load:\n{shown}\n---\n{text}"
    wanted = case.get("expect", {}).get("warnings", [])
    warnings = [d.message for d in diagnostics if d.severity == "warning"]
    for piece in wanted:
        assert any(piece in w for w in warnings), f"no warning with {piece!r}: {warnings}"
    for warning in warnings:
        assert any(p in warning for p in wanted), f"unexpected spec warning: {warning}"
    return spec


def run_case(case: Mapping[str, Any], name: str, reg: Registry, folder: Path) -> None:
    spec = load_target_spec(case, name, folder)
    target = spec.targets[0]
    seen = observed(case.get("observed", {}), target, reg)
    expect = case["expect"]
    try:
        plan = plan_one(spec, target, seen)  # the pipeline: desired, gate, diff, steps
    except WlbplanError as err:
        if "error" not in expect:
            raise AssertionError(f"planning refused: {type(err).__name__}: {err}") from err
        _check_refusal(expect, err)
        return
    shown = describe(plan, reg)
    assert "error" not in expect, f"planning did not refuse; it planned:\n{shown}"
    # The same plan on a fixed clock, so that timestamped backup names can be compared.
    desired = desired_state(target, seen)
    stamped = plan_target(spec, target, seen, desired, diff(desired, seen), STAMP)
    assert [s.action for s in stamped.steps] == [s.action for s in plan.steps], shown
    assert stamped.changes == plan.changes, shown
    assert plan.stage == expect["stage"], shown
    _check_changes(plan.changes, expect.get("changes", []), reg, shown)
    assert [s.action for s in plan.steps] == expect.get("steps", []), shown
    for detail in expect.get("details", []):
        _check_detail(stamped, detail, reg, shown)
    _check_notes(plan.notes, desired.notes, expect.get("notes", []))
    check_invariants(stamped, desired.trust, shown)
    if "trust_after" in expect:
        _check_trust_after(apply_in_simulation(seen, plan), expect["trust_after"], reg, shown)
    if expect.get("converges", plan.stage != "request"):
        _check_converges(spec, plan, seen, reg)


def _check_refusal(expect: Mapping[str, Any], caught: WlbplanError) -> None:
    kind = expect.get("error_type", "VerifyError")
    message = str(caught)
    assert type(caught).__name__ == kind, f"{type(caught).__name__}: {message}"
    assert expect["error"].lower() in message.lower(), message
    assert "BEGIN" not in message, message


def _check_changes(got: tuple[Change, ...], wanted: list[Mapping[str, Any]], reg: Registry,
                   shown: str) -> None:
    assert len(got) == len(wanted), f"{len(got)} changes, expected {len(wanted)}\n{shown}"
    for index, (change, want) in enumerate(zip(got, wanted, strict=True)):
        where = f"change {index}: {change.action} {change.path}\n{shown}"
        assert change.action == want["action"], where
        pattern, actual = TRUST_PATH.match(want["path"]), TRUST_PATH.match(change.path)
        if pattern is None:
            assert change.path == want["path"], where
            continue
        assert actual is not None, where
        assert name_matches(pattern.group(1), actual.group(1), want.get("cert"), reg), where


def _select(plan: TargetPlan, detail: Mapping[str, Any], reg: Registry) -> list[Any]:
    steps = [s for s in plan.steps if s.action == detail["action"]]
    if "name" in detail:
        steps = [s for s in steps
                 if name_matches(detail["name"], s.params.get("name", ""), detail.get("cert"), reg)]
    return steps


def _check_detail(plan: TargetPlan, detail: Mapping[str, Any], reg: Registry,
                  shown: str) -> None:
    steps = _select(plan, detail, reg)
    assert steps, f"no {detail['action']} step matches {dict(detail)}\n{shown}"
    for step in steps:
        where = f"{step.action} {step.params.get('name', '')}: {dict(detail)}\n{shown}"
        for key, value in detail.get("params", {}).items():
            assert key in step.params, f"no param {key!r}; {where}"
            assert step.params[key] == value, f"{key}={step.params[key]!r}; {where}"
        if "cert" in detail and "pem" in step.params:
            assert step.params["pem"] == reg.pem(detail["cert"]), where
        if "chain" in detail:
            assert step.params["chain"] == [reg.pem(n) for n in detail["chain"]], where
        text = "\n".join(step.commands)
        for piece in detail.get("commands_contain", []):
            assert piece in text, f"{piece!r} not in commands:\n{text}\n{where}"
        for piece in detail.get("commands_exclude", []):
            assert piece not in text, f"{piece!r} in commands:\n{text}\n{where}"


def _check_trust_after(after: Observed, wanted: list[Mapping[str, Any]], reg: Registry,
                       shown: str) -> None:
    got = sorted((t.name, t.pem) for t in after.pool.trusted)
    expected = sorted((trusted_name(w["name"], w["cert"], reg), reg.pem(w["cert"]))
                      for w in wanted)
    names = [name for name, _ in got]
    assert got == expected, f"the pool would trust {names} after the apply\n{shown}"


def _check_notes(notes: tuple[str, ...], own: tuple[str, ...], wanted: list[str]) -> None:
    """Every expected note is there; every note of desired_state's own is expected (the
    gate's policy warnings come on top and are not the differ's business)."""
    for piece in wanted:
        assert any(piece in n for n in notes), f"no note with {piece!r}: {notes}"
    for note in own:
        assert any(piece in note for piece in wanted), f"unexpected note: {note}"


# ------------------------------------------------------------------ general promises


def check_invariants(plan: TargetPlan, trust: tuple[Anchor, ...], shown: str) -> None:
    """What holds for every plan, whatever the case (DESIGN §3 house rules, §5 order)."""
    actions = [s.action for s in plan.steps]
    for step in plan.steps:
        visible = "\n".join([step.summary, *step.commands, *step.undo])
        for word in FORBIDDEN:
            assert word not in visible, f"{step.action} shows {word!r}:\n{visible}"
        params = json.dumps(step.params)  # plan files carry params: JSON, public only
        assert "PRIVATE" not in params, step.action
        if step.action == "pool.install_ca":
            name = step.params["name"]
            assert name.startswith("wlbplan-"), name
            assert MANAGED_NAME.match(name), name
            cert = certs.parse_pem_bundle(step.params["pem"].encode())[0]
            assert step.params["fingerprint"] == certs.fingerprint(cert), name
            assert any(a.install_name == name and a.pem == step.params["pem"] for a in trust)
            assert any(f"filename=\"$WLBPLAN_TMP\"/{name}" in c for c in step.commands), name
            assert any(f"name={name}" in u for u in step.undo), name
        if step.action == "pool.uninstall_ca":
            assert managed(step.params["name"]), f"removes someone else's {step.params['name']}"
    for change in plan.changes:
        json.dumps([change.before, change.after])
        assert "PRIVATE" not in json.dumps([change.before, change.after]), change.path
        if change.path.startswith("pool.trust[") and change.action == "delete":
            assert managed(change.before["name"]), f"would remove someone else's {change.path}"
    _check_order(actions, plan, shown)


def _check_order(actions: list[str], plan: TargetPlan, shown: str) -> None:
    def first(action: str) -> int:
        return actions.index(action) if action in actions else len(actions)

    def last(action: str) -> int:
        return max((i for i, a in enumerate(actions) if a == action), default=-1)

    flips = [i for i, s in enumerate(plan.steps) if s.action == "pool.set_verify"]
    for index in flips:
        if plan.steps[index].params["value"]:
            assert "pool.preflight" in actions[:index], f"verify on without preflight\n{shown}"
            assert "pool.confirm" in actions[index:], f"verify on without confirm\n{shown}"
        else:
            assert index == 0, f"verify off must come first\n{shown}"
    if "pool.install_ca" in actions:
        synced = actions[last("pool.install_ca"):first("appliance.backup")]
        assert "pool.certificate_sync" in synced, f"trust must be synced before the chain\n{shown}"
    if "appliance.install_chain" in actions:
        assert first("appliance.backup") < first("appliance.install_chain") \
            < first("appliance.restart") < first("pool.preflight"), shown
    installed = {s.params["name"] for s in plan.steps if s.action == "pool.install_ca"}
    removals = [i for i, s in enumerate(plan.steps)
                if s.action == "pool.uninstall_ca" and s.params["name"] not in installed]
    if removals:  # step 7: trust nothing needs goes last, then a sync
        assert actions[-1] == "pool.certificate_sync", f"no sync after removals\n{shown}"
        for later in ("pool.install_ca", "appliance.restart", "pool.preflight", "pool.confirm"):
            assert last(later) < removals[0], f"trust removed before {later}\n{shown}"


def apply_in_simulation(seen: Observed, plan: TargetPlan) -> Observed:
    """The state after the plan's steps, as the lab's xe and appliance would leave it."""
    trust = {t.name: t.pem for t in seen.pool.trusted}
    chain, verify = seen.appliance.cert.chain, seen.pool.wlb_verify_cert
    url = seen.pool.wlb_url
    backups = list(seen.appliance.backups)
    key, pending = seen.appliance.key, seen.appliance.pending_key
    for step in plan.steps:
        params = step.params
        if step.action == "pool.install_ca":
            assert params["name"] not in trust, \
                f"CERTIFICATE_ALREADY_EXISTS: {params['name']} is already installed"
            trust[params["name"]] = params["pem"]
        elif step.action == "pool.uninstall_ca":
            assert params["name"] in trust, f"CERTIFICATE_DOES_NOT_EXIST: {params['name']}"
            del trust[params["name"]]
        elif step.action == "pool.set_verify":
            verify = params["value"]
        elif step.action == "pool.reconnect":
            url = params["url"]
        elif step.action == "appliance.backup":
            for made in params["backups"]:
                assert made not in backups, f"the backup overwrites {made}"
                backups.append(made)
        elif step.action == "appliance.install_chain":
            chain = tuple(params["chain"])
            if params["key_source"] == "pending":  # the pending key becomes server.key
                assert pending is not None, "installs a pending key there is none of"
                key = dataclasses.replace(key, present=True, public_key=pending)
                pending = None
    appliance = dataclasses.replace(
        seen.appliance, backups=tuple(backups), key=key, pending_key=pending,
        cert=dataclasses.replace(seen.appliance.cert, chain=chain, present=bool(chain)),
        served=dataclasses.replace(seen.appliance.served, chain=chain),
    )
    pool = dataclasses.replace(
        seen.pool, wlb_verify_cert=verify, wlb_url=url,
        trusted=tuple(TrustedCert(name, pem) for name, pem in trust.items()),
    )
    return dataclasses.replace(seen, appliance=appliance, pool=pool)


def _check_converges(spec: Spec, plan: TargetPlan, seen: Observed, reg: Registry) -> None:
    """DESIGN §5: after a successful apply, ``plan`` reports no changes."""
    after = apply_in_simulation(seen, plan)
    again = plan_one(spec, spec.targets[0], after)
    left = f"planning again after the apply still finds work:\n{describe(again, reg)}"
    assert not again.changes, left
    assert not again.steps, left


# ----------------------------------------------------------------------- readability


def describe(plan: TargetPlan, reg: Registry) -> str:
    """The plan in case-file words (certificates by registry name), for failure messages."""
    def named(text: str) -> str:
        for name in reg.issued:
            for role in ("wlb", "leaf", "intermediate", "root"):
                text = text.replace(reg.install_name(role, name),
                                    f"wlbplan-{role}-*<{name}>")
        return text

    lines = [f"stage: {plan.stage}", "changes:"]
    lines += [f"  - {c.action} {named(c.path)}" for c in plan.changes]
    lines.append("steps:")
    lines += [f"  - {s.action} {named(str(s.params.get('name', '')))}".rstrip()
              for s in plan.steps]
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("path", _params())
def test_case(path: Path, reg: Registry, spec_dir: Path) -> None:
    run_case(load_case(path), path.stem, reg, spec_dir)


def test_enough_cases() -> None:
    stems = [p.stem for p in case_files()]
    assert len(stems) >= 15
    assert all(re.fullmatch(r"[a-z0-9-]+", s) for s in stems), stems


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda e: e["steps"].pop(), id="a step missing"),
        pytest.param(lambda e: e["steps"].reverse(), id="steps out of order"),
        pytest.param(lambda e: e["changes"][0].update(action="update"), id="wrong action"),
        pytest.param(lambda e: e["changes"][0].update(cert="old_self_signed_wlb"),
                     id="wrong certificate"),
        pytest.param(lambda e: e.update(notes=["reordered"]), id="a note that is not there"),
        pytest.param(lambda e: e.update(stage="install"), id="wrong stage"),
        pytest.param(lambda e: e["details"].append(
            {"action": "pool.preflight", "commands_contain": ["-verify_ip"]}),
            id="a command detail that does not hold"),
    ],
)
def test_runner_can_fail(mutate: Any, reg: Registry, spec_dir: Path) -> None:
    """The runner is not vacuous: a wrong expectation in a case file is caught."""
    case = copy.deepcopy(load_case(CASES / "self-signed-fresh.yaml"))
    case["expect"].setdefault("details", [])
    mutate(case["expect"])
    with pytest.raises(AssertionError):
        run_case(case, "mutated", reg, spec_dir)


def test_simulation_catches_a_plan_that_does_not_converge(reg: Registry, spec_dir: Path) -> None:
    """The convergence check bites: drop the sync-and-install half of a plan."""
    case = load_case(CASES / "self-signed-fresh.yaml")
    spec = load_target_spec(case, "partial", spec_dir)
    seen = observed(case["observed"], spec.targets[0], reg)
    plan = plan_one(spec, spec.targets[0], seen)
    partial = dataclasses.replace(plan, steps=plan.steps[2:])
    with pytest.raises(AssertionError, match="still finds work"):
        _check_converges(spec, partial, seen, reg)
