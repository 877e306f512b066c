"""The plan file: JSON round trip, the schema, format_version rules, clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from wlbplan.core.diff import Change, cert_summary
from wlbplan.core.plan import FORMAT_VERSION, Plan, TargetPlan
from wlbplan.core.planfile import (
    plan_from_json,
    plan_to_json,
    read_plan,
    schema,
    step_id,
    write_plan,
)
from wlbplan.core.steps import Step
from wlbplan.errors import PlanFileError, WlbplanError
from wlbplan.lab import pki


def _facts(target: str) -> dict[str, Any]:
    """The recorded facts' outer shape (what they say is checked against the spec elsewhere)."""
    return {"target": target, "appliance": {"backups": []}, "pool": {"hosts": ["h1"]}}


@pytest.fixture(scope="module")
def plan() -> Plan:
    """Every value shape a plan holds: summaries, chains, booleans, None, PEMs in params."""
    root = pki.build("Root", key=pki.make_key("ec", 256), ca=True).cert_pem.decode()
    own = pki.appliance_self_signed("wlb.example.com",
                                    key=pki.make_key("ec", 256)).cert_pem.decode()
    changes = (
        Change("pool.trust[wlbplan-root-1.pem]", "create", None,
               {"name": "wlbplan-root-1.pem", "role": "root", **cert_summary(root)}, "trust root"),
        Change("appliance.chain", "update", [cert_summary(own)], [cert_summary(root)], "chain"),
        Change("pool.wlb-verify-cert", "update", False, True, "verify"),
        Change("pool.trust[old.pem]", "delete", {"name": "old.pem"}, None, "unused"),
    )
    steps = (
        Step("pool.install_ca", "pool", "trust root", ("xe pool-install-ca-certificate f",),
             ("xe pool-uninstall-ca-certificate name=wlbplan-root-1.pem",),
             {"name": "wlbplan-root-1.pem", "pem": root, "fingerprint": "AB:CD"}),
        Step("appliance.install_chain", "appliance", "chain", ("upload",), ("cp -p a b",),
             {"chain": [own, root], "backups": ["a", "b"]}),
        Step("pool.set_verify", "pool", "verify on", ("xe pool-param-set",), ("xe x",),
             {"uuid": "u", "value": True, "old": False}),
        Step("pool.uninstall_ca", "pool", "drop", ("xe pool-uninstall-ca-certificate",), (),
             {"name": "old.pem", "pem": None, "fingerprint": None}),
        Step("appliance.fetch_csr", "local", "csr", ("download a to b",)),
    )
    return Plan(
        spec_path="spec.yaml", spec_digest="ab" * 32, created="2025-01-31T09:30:00Z",
        targets=(
            TargetPlan("pool1", "sha256:" + "cd" * 32, "install", changes, steps, ("n1", "n2"),
                       facts=_facts("pool1"), time="2025-01-31T09:30:00Z"),
            TargetPlan("pool-2", "sha256:" + "ef" * 32, "trust", (), (),
                       facts=_facts("pool-2"), replace=True, time="2025-01-31T09:30:00Z"),
        ),
    )


@pytest.fixture
def doc(plan: Plan) -> dict[str, Any]:
    return plan_to_json(plan)


def write_json(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------- shape

def test_document_shape(doc: dict[str, Any]) -> None:
    assert list(doc) == ["format_version", "tool_version", "created", "spec", "summary",
                         "targets"]
    assert doc["format_version"] == "1.2"
    assert doc["spec"] == {"path": "spec.yaml", "digest": "ab" * 32}
    assert doc["summary"] == {"add": 1, "change": 2, "remove": 1}
    target = doc["targets"][0]
    assert list(target) == ["name", "status", "reason", "stage", "observed_digest", "observed",
                            "changes", "steps", "notes", "blockers", "facts", "options"]
    assert (target["status"], target["reason"]) == ("planned", "")
    assert target["options"] == {"replace": False, "time": "2025-01-31T09:30:00Z"}
    assert doc["targets"][1]["options"]["replace"] is True
    assert target["changes"][2] == {"path": "pool.wlb-verify-cert", "action": "update",
                                    "before": False, "after": True, "reason": "verify"}
    assert list(target["steps"][0]) == ["id", "action", "on", "summary", "commands", "undo",
                                        "params"]


def test_step_ids_are_stable(doc: dict[str, Any], plan: Plan) -> None:
    ids = [s["id"] for s in doc["targets"][0]["steps"]]
    assert ids == ["pool1.01.pool.install_ca", "pool1.02.appliance.install_chain",
                   "pool1.03.pool.set_verify", "pool1.04.pool.uninstall_ca",
                   "pool1.05.appliance.fetch_csr"]
    assert plan_to_json(plan)["targets"][0]["steps"][0]["id"] == ids[0]
    assert step_id("t", 12, plan.targets[0].steps[0]) == "t.12.pool.install_ca"


def test_output_validates_against_the_schema(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.Draft202012Validator(schema()).validate(doc)


def _properties(node: Any, path: str = "$") -> list[tuple[str, Any]]:
    found = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((f"{path}.{name}", sub))
        for key, sub in node.items():
            if key not in ("if", "then", "else", "not"):  # constraints, not properties
                found += _properties(sub, f"{path}.{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            found += _properties(sub, f"{path}[{i}]")
    return found


def test_every_schema_property_is_described() -> None:
    props = _properties(schema())
    assert len(props) > 40
    assert [p for p, sub in props if not sub.get("description")] == []


def test_schema_rejects_create_with_a_before(doc: dict[str, Any]) -> None:
    doc["targets"][0]["changes"][0]["before"] = {"name": "x"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate(doc)


# ---------------------------------------------------------------------------- round trip

def test_round_trip_in_memory(plan: Plan, doc: dict[str, Any]) -> None:
    assert plan_from_json(doc) == plan
    assert plan_from_json(json.loads(json.dumps(doc))) == plan


def test_round_trip_through_a_file(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "out.plan"
    write_plan(plan, path)
    assert read_plan(path) == plan
    assert read_plan(str(path)) == plan


def test_round_trip_is_not_vacuous(plan: Plan, doc: dict[str, Any]) -> None:
    doc["targets"][0]["steps"][1]["params"]["chain"].pop()
    assert plan_from_json(doc) != plan


def test_write_is_0644_atomic_and_leaves_no_temp_file(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "out.plan"
    path.write_text("old")
    write_plan(plan, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["out.plan"]
    text = path.read_text()
    assert text.startswith('{\n  "format_version": "1.2",')
    assert text.endswith("}\n")


def test_write_failure_keeps_the_old_file(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "out.plan"
    path.write_text("old")
    broken = Plan(plan.spec_path, plan.spec_digest, plan.created,
                  (TargetPlan("t", "d", "trust", (), (Step("pool.x", "pool", "s", (),
                                                           params={"bad": object()}),)),))
    with pytest.raises(TypeError):
        write_plan(broken, path)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.plan"]


# ---------------------------------------------------------------------------- versions

@pytest.mark.parametrize(("version", "words"), [
    ("2.0", "format_version 2.0 (made by wlbplan"),
    ("0.9", "from an older wlbplan"),
])
def test_other_major_versions_are_refused(doc: dict[str, Any], tmp_path: Path,
                                          version: str, words: str) -> None:
    doc["format_version"] = version
    with pytest.raises(PlanFileError, match=r"reads 1\.x plans") as err:
        read_plan(write_json(tmp_path, doc))
    assert words in str(err.value)


def test_a_1_0_plan_cannot_be_checked_and_is_refused(doc: dict[str, Any]) -> None:
    doc["format_version"] = "1.0"
    with pytest.raises(PlanFileError, match="did not record what its steps were made from"):
        plan_from_json(doc)


@pytest.mark.parametrize("version", ["one", "1", "1.0.0", ""])
def test_malformed_versions_are_refused(doc: dict[str, Any], version: str) -> None:
    doc["format_version"] = version
    with pytest.raises(PlanFileError, match=r"is not MAJOR\.MINOR"):
        plan_from_json(doc)


def test_newer_minor_version_is_read_ignoring_unknown_fields(plan: Plan,
                                                             doc: dict[str, Any]) -> None:
    doc["format_version"] = "1.7"
    doc["drift"] = []
    doc["targets"][0]["risk"] = "low"
    doc["targets"][0]["steps"][0]["timeout"] = 30
    doc["targets"][0]["changes"][0]["after"]["signature"] = "sha256"
    read = plan_from_json(doc)
    assert read.format_version == FORMAT_VERSION
    assert read.targets[0].steps == plan.targets[0].steps
    assert read.spec_digest == plan.spec_digest


def test_newer_minor_version_still_checks_known_fields(doc: dict[str, Any]) -> None:
    doc["format_version"] = "1.7"
    doc["targets"][0]["steps"][0]["on"] = "moon"
    with pytest.raises(PlanFileError, match=r"\$\.targets\[0\]\.steps\[0\]\.on"):
        plan_from_json(doc)


def test_unknown_fields_in_this_version_are_refused(doc: dict[str, Any]) -> None:
    doc["targets"][0]["risk"] = "low"
    with pytest.raises(PlanFileError, match=r"\$\.targets\[0\]: Additional properties"):
        plan_from_json(doc)


# ---------------------------------------------------------------------------- errors

def test_error_is_a_wlbplan_error() -> None:
    assert issubclass(PlanFileError, WlbplanError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match=r"plan file .*nope\.plan not found"):
        read_plan(tmp_path / "nope.plan")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="is a directory"):
        read_plan(tmp_path)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    path.write_text('{\n  "format_version": "1.0",\n  oops\n}')
    with pytest.raises(PlanFileError, match="invalid JSON at line 3, column 3"):
        read_plan(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(PlanFileError, match="not UTF-8"):
        read_plan(path)


@pytest.mark.parametrize("data", [[], "plan", {"targets": []}])
def test_not_a_plan(tmp_path: Path, data: Any) -> None:
    with pytest.raises(PlanFileError, match="not a wlbplan plan file"):
        read_plan(write_json(tmp_path, data))


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d["targets"][0]["steps"][0].update(on="moon"), r"\$\.targets\[0\]\.steps\[0\]\.on"),
    (lambda d: d["targets"][0]["changes"][1].pop("reason"), r"\$\.targets\[0\]\.changes\[1\]: "
                                                            r"'reason' is a required property"),
    (lambda d: d["targets"][1].update(stage="later"), r"\$\.targets\[1\]\.stage"),
    (lambda d: d["spec"].update(digest=7), r"\$\.spec\.digest: 7 is not of type 'string'"),
    (lambda d: d.update(format_version=1.2), r"\$\.format_version: 1\.2 is not of type"),
])
def test_schema_violation_names_the_json_path(doc: dict[str, Any], edit: Any, where: str) -> None:
    edit(doc)
    with pytest.raises(PlanFileError, match="is not a valid plan file") as err:
        plan_from_json(doc, "p.plan")
    assert err.match(where)
    assert str(err.value).startswith("p.plan is not a valid plan file:\n  $")


def test_many_schema_errors_are_counted(doc: dict[str, Any]) -> None:
    for step in doc["targets"][0]["steps"]:
        step["on"] = "moon"
    doc["targets"][1]["stage"] = "x"
    with pytest.raises(PlanFileError, match=r"… and 2 more$"):
        plan_from_json(doc)


def test_summary_must_match_the_changes(doc: dict[str, Any]) -> None:
    doc["summary"]["remove"] = 0
    with pytest.raises(PlanFileError, match=r"\$\.summary says .* edited or damaged"):
        plan_from_json(doc)


def test_document_and_plan_do_not_share_values(plan: Plan) -> None:
    doc = plan_to_json(plan)
    doc["targets"][0]["steps"][0]["params"]["name"] = "edited"
    doc["targets"][0]["changes"][0]["after"]["name"] = "edited"
    assert plan.targets[0].steps[0].params["name"] == "wlbplan-root-1.pem"
    assert plan.targets[0].changes[0].after["name"] == "wlbplan-root-1.pem"
    data = plan_to_json(plan)
    read = plan_from_json(data)
    data["targets"][0]["steps"][0]["params"]["name"] = "edited"
    assert read == plan


def test_long_schema_messages_are_shortened(doc: dict[str, Any]) -> None:
    doc["targets"][0]["changes"][0]["after"]["extra"] = "x" * 500
    with pytest.raises(PlanFileError) as err:
        plan_from_json(doc)
    assert err.match(r"\$\.targets\[0\]\.changes\[0\]\.after: ")
    assert max(len(line) for line in str(err.value).splitlines()) < 200
