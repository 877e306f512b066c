"""The plan file: a ``Plan`` as JSON (``schemas/plan.schema.json``), written and read back.

``format_version`` follows terraform's rule: another major version is refused, a newer
minor version is read with the properties this version does not know ignored. Step ids
are derived (target, position, action), so they are the same wherever a plan is shown.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shlex
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no stubs in dev deps

from wlbplan.core.diff import Change
from wlbplan.core.plan import FORMAT_VERSION, Plan, TargetPlan
from wlbplan.core.steps import Step
from wlbplan.errors import PlanFileError

Doc = dict[str, Any]
_MAX_ERRORS = 5  # schema errors listed in one message; the rest are counted


def schema() -> Doc:
    """The packaged JSON Schema of the plan file."""
    return json.loads(_schema_text())  # type: ignore[no-any-return]


@cache
def _schema_text() -> str:
    return (resources.files("wlbplan") / "schemas" / "plan.schema.json").read_text("utf-8")


def step_id(target: str, index: int, step: Step) -> str:
    """``pool1.01.pool.install_ca``: stable for a given plan, 1-based position."""
    return f"{target}.{index:02d}.{step.action}"


# ---------------------------------------------------------------------------- to JSON

def plan_to_json(plan: Plan) -> Doc:
    return {
        "format_version": plan.format_version,
        "tool_version": plan.tool_version,
        "created": plan.created,
        "spec": {"path": plan.spec_path, "digest": plan.spec_digest},
        "summary": plan.counts(),
        "targets": [target_plan_to_json(t) for t in plan.targets],
    }


def target_plan_to_json(target: TargetPlan) -> Doc:
    return {
        "name": target.target,
        "status": target.status,
        "reason": target.reason,
        "stage": target.stage,
        "observed_digest": target.observed_digest,
        "observed": copy.deepcopy(target.observed),
        "changes": [_change_to_json(c) for c in target.changes],
        "steps": [_step_to_json(target.target, i, s) for i, s in enumerate(target.steps, 1)],
        "notes": list(target.notes),
        "blockers": list(target.blockers),
    }


def _change_to_json(change: Change) -> Doc:
    # Copies: a caller editing the document must not edit the (frozen) plan through it.
    return {"path": change.path, "action": change.action, "before": copy.deepcopy(change.before),
            "after": copy.deepcopy(change.after), "reason": change.reason}


def _step_to_json(target: str, index: int, step: Step) -> Doc:
    return {
        "id": step_id(target, index, step),
        "action": step.action,
        "on": step.on,
        "summary": step.summary,
        "commands": list(step.commands),
        "undo": list(step.undo),
        "params": copy.deepcopy(step.params),
    }


# ---------------------------------------------------------------------------- from JSON

def plan_from_json(data: Any, source: str = "plan") -> Plan:
    """Check ``data`` (version, then schema) and build the Plan; ``source`` names it in errors."""
    version = _check_version(data, source)
    _check_schema(data, source, newer_minor=version[1] > _ours()[1])
    data = copy.deepcopy(data)  # the Plan owns its values; the caller keeps theirs
    plan = Plan(
        spec_path=data["spec"]["path"],
        spec_digest=data["spec"]["digest"],
        created=data["created"],
        targets=tuple(target_plan_from_json(t) for t in data["targets"]),
        tool_version=data["tool_version"],
        # A plan read back is a plan of the format this wlbplan writes.
        format_version=FORMAT_VERSION,
    )
    _check_summary(plan, data["summary"], source)
    if plan.failed:
        # wlbplan never saves a plan with a failed target: this one was made by hand.
        names = ", ".join(f"{t.target} ({t.status})" for t in plan.failed)
        raise PlanFileError(f"{source} holds targets with no plan ({names}); a saved plan "
                            "covers every target it names: make the plan again")
    return plan


def target_plan_from_json(data: Doc) -> TargetPlan:
    return TargetPlan(
        target=data["name"],
        observed_digest=data["observed_digest"],
        stage=data["stage"],
        changes=tuple(Change(c["path"], c["action"], c["before"], c["after"], c["reason"])
                      for c in data["changes"]),
        steps=tuple(_step_from_json(s) for s in data["steps"]),
        notes=tuple(data["notes"]),
        observed=dict(data.get("observed", {})),
        failure=data["status"] if data.get("status") in ("refused", "unreachable") else None,
        reason=data.get("reason", ""),
        blockers=tuple(data.get("blockers", ())),
    )


def _step_from_json(data: Doc) -> Step:
    # ``id`` is derived from position and action, so it is not stored on the Step.
    return Step(action=data["action"], on=data["on"], summary=data["summary"],
                commands=tuple(data["commands"]), undo=tuple(data["undo"]),
                params=dict(data["params"]))


def _ours() -> tuple[int, int]:
    major, minor = FORMAT_VERSION.split(".")
    return int(major), int(minor)


def _check_version(data: Any, source: str) -> tuple[int, int]:
    if not isinstance(data, dict) or "format_version" not in data:
        raise PlanFileError(f"{source} is not a wlbplan plan file (no format_version); "
                            "make one with `wlbplan plan SPEC --out PLAN`")
    raw = data["format_version"]
    try:
        major, minor = (int(part) for part in str(raw).split("."))
    except ValueError:
        raise PlanFileError(f"{source}: format_version {raw!r} is not MAJOR.MINOR") from None
    ours = _ours()
    if major < ours[0]:
        raise PlanFileError(
            f"{source} has format_version {raw}, from an older wlbplan; this wlbplan reads "
            f"{ours[0]}.x plans: make the plan again with `wlbplan plan SPEC --out PLAN`")
    if major > ours[0]:
        raise PlanFileError(
            f"{source} has format_version {raw} (made by wlbplan {data.get('tool_version', '?')}); "
            f"this wlbplan reads {ours[0]}.x plans: upgrade wlbplan or make the plan again")
    return major, minor


def _check_schema(data: Doc, source: str, *, newer_minor: bool) -> None:
    rules = schema()
    if newer_minor:
        # A newer minor version may add properties anywhere; this version ignores them.
        rules = _open(rules)
    validator = jsonschema.Draft202012Validator(rules)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = [f"  {e.json_path}: {_short(e.message)}" for e in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        lines.append(f"  … and {len(errors) - _MAX_ERRORS} more")
    raise PlanFileError(f"{source} is not a valid plan file:\n" + "\n".join(lines))


def _short(message: str, limit: int = 160) -> str:
    # jsonschema quotes the whole offending value; a certificate summary fills a screen.
    return message if len(message) <= limit else message[:limit - 1] + "…"


def _open(node: Any) -> Any:
    """The schema without its ``additionalProperties: false``."""
    if isinstance(node, dict):
        return {k: _open(v) for k, v in node.items()
                if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_open(v) for v in node]
    return node


def _check_summary(plan: Plan, summary: Doc, source: str) -> None:
    counts = plan.counts()
    if {k: summary[k] for k in counts} != counts:
        raise PlanFileError(
            f"{source}: $.summary says {summary} but the targets' changes count {counts}; "
            "the file was edited or damaged: make the plan again")


# ---------------------------------------------------------------------------- files

def write_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write atomically (temp file + rename): a reader never sees half a plan."""
    target = Path(path)
    text = json.dumps(plan_to_json(plan), indent=2, ensure_ascii=False) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise PlanFileError(f"cannot write the plan to {target}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes 0600; a plan holds no secrets and reviewers' tools must read it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# A spec's top-level keys, at the start of a line: what a YAML spec given as a plan shows.
_SPEC_LINE = re.compile(rb"^(?:version|targets)\s*:", re.MULTILINE)


def read_plan(path: str | os.PathLike[str]) -> Plan:
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise PlanFileError(f"plan file {source} not found") from None
    except IsADirectoryError:
        raise PlanFileError(f"{source} is a directory, not a plan file") from None
    except OSError as err:
        raise PlanFileError(f"cannot read plan file {source}: {err.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PlanFileError(f"{source} is not a plan file (not UTF-8 text)") from None
    except json.JSONDecodeError as err:
        if _SPEC_LINE.search(raw):
            raise PlanFileError(
                f"{source} is a spec, not a saved plan: make a plan with `wlbplan plan "
                f"{shlex.quote(source)} --out PLAN`, then give PLAN") from None
        raise PlanFileError(f"{source} is not a plan file: invalid JSON at line {err.lineno}, "
                            f"column {err.colno}: {err.msg}") from None
    return plan_from_json(data, source)
