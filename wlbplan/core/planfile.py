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
from wlbplan.core.plan import FORMAT_VERSION, Plan, TargetPlan, parse_time, render_again
from wlbplan.core.steps import Step
from wlbplan.errors import PlanFileError
from wlbplan.limits import PLAN, read_file
from wlbplan.model.observed import observed_from_json
from wlbplan.model.spec import Spec, cli_command

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
        "facts": copy.deepcopy(target.facts),
        "options": {"replace": target.replace, "time": target.time,
                    **({"issued": list(target.issued)} if target.issued else {})},
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
        facts=dict(data["facts"]),
        replace=data["options"]["replace"],
        time=data["options"]["time"],
        issued=tuple(data["options"].get("issued", ())),
    )


def read_target_plan(data: Any, source: str) -> TargetPlan:
    """One target's plan as a journal records it: checked against the schema first."""
    rules = schema()
    _report(jsonschema.Draft202012Validator({"$ref": "#/$defs/target", "$defs": rules["$defs"]})
            .iter_errors(data), source)
    return target_plan_from_json(copy.deepcopy(data))


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
    spec = data.get("spec")
    again = cli_command("plan", str(spec.get("path") or "") if isinstance(spec, dict) else "",
                        "--out", "PLAN")
    raw = data["format_version"]
    try:
        major, minor = (int(part) for part in str(raw).split("."))
    except ValueError:
        raise PlanFileError(f"{source}: format_version {raw!r} is not MAJOR.MINOR") from None
    ours = _ours()
    if major < ours[0]:
        raise PlanFileError(
            f"{source} has format_version {raw}, from an older wlbplan; this wlbplan reads "
            f"{ours[0]}.x plans: make the plan again with `{again}`")
    if major > ours[0]:
        raise PlanFileError(
            f"{source} has format_version {raw} (made by wlbplan {data.get('tool_version', '?')}); "
            f"this wlbplan reads {ours[0]}.x plans: upgrade wlbplan or make the plan again")
    if minor < ours[1]:
        # 1.0 did not record the facts its steps were made from, so they cannot be
        # checked; an unchecked step is never run.
        raise PlanFileError(
            f"{source} has format_version {raw}, from an older wlbplan that did not record "
            f"what its steps were made from; make the plan again with `{again}`")
    return major, minor


def _check_schema(data: Doc, source: str, *, newer_minor: bool) -> None:
    rules = schema()
    if newer_minor:
        # A newer minor version may add properties anywhere; this version ignores them.
        rules = _open(rules)
    _report(jsonschema.Draft202012Validator(rules).iter_errors(data), source)


def _report(found: Any, source: str) -> None:
    errors = sorted(found, key=lambda e: list(map(str, e.absolute_path)))
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
        raw = read_file(path, PLAN)
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
    except RecursionError:
        raise PlanFileError(f"{source} is not a plan file: its JSON is nested too deeply") \
            from None
    except json.JSONDecodeError as err:
        if _SPEC_LINE.search(raw):
            raise PlanFileError(
                f"{source} is a spec, not a saved plan: make a plan with `wlbplan plan "
                f"{shlex.quote(source)} --out PLAN`, then give PLAN") from None
        raise PlanFileError(f"{source} is not a plan file: invalid JSON at line {err.lineno}, "
                            f"column {err.colno}: {err.msg}") from None
    return plan_from_json(data, source)


# ---------------------------------------------------------------------------- checking

def check_saved(plan: Plan, spec: Spec, source: str) -> None:
    """Refuse a saved plan unless every target's changes and steps are exactly what this
    wlbplan renders from that target's own record (its facts, options and the spec the
    plan names, whose digest the caller has checked)."""
    for saved in plan.targets:
        check_target(spec, saved, f"{source}: target {saved.target}")


def check_target(spec: Spec, saved: TargetPlan, where: str) -> None:
    """``check_saved`` for one target's plan (also the plan a journal records)."""
    again = (f"make the plan again with `{cli_command('plan', str(spec.path), '--out', 'PLAN')}` "
             "and review it")
    target = next((t for t in spec.targets if t.name == saved.target), None)
    if target is None:
        raise PlanFileError(f"{where}: the spec {spec.path} has no such target; {again}")
    try:
        observed = observed_from_json(saved.facts)
        parse_time(saved.time)
    except ValueError as err:
        raise PlanFileError(f"{where}: its record is damaged ({err}); {again}") from None
    if observed.target != saved.target or observed.digest() != saved.observed_digest:
        raise PlanFileError(f"{where}: its recorded facts do not match its observed_digest: "
                            f"the file was edited or damaged; {again}")
    rendered = render_again(spec, target, saved, observed)
    difference = first_difference(target_plan_to_json(saved), target_plan_to_json(rendered))
    if difference is not None:
        raise PlanFileError(
            f"{where}: {difference}. A saved plan runs only as wlbplan renders it from its "
            f"own recorded changes and facts; this one was edited or damaged: {again}")


def first_difference(saved: Doc, rendered: Doc) -> str | None:
    """Where a saved target plan first differs from the rendered one, in words."""
    if saved["stage"] != rendered["stage"]:
        return f"its stage is {_shown(saved['stage'])} where wlbplan renders " \
               f"{_shown(rendered['stage'])}"
    for key, noun in (("changes", "change"), ("steps", "step")):
        mine, theirs = saved[key], rendered[key]
        for index in range(max(len(mine), len(theirs))):
            label = f"{noun} {index + 1}"
            if index >= len(mine):
                return f"it has no {label}, where wlbplan renders {_label(theirs[index])}"
            if index >= len(theirs):
                return f"its {label} ({_label(mine[index])}) is not one wlbplan renders"
            if key == "steps" and mine[index]["action"] != theirs[index]["action"]:
                return (f"its {label} is {mine[index]['action']} where wlbplan renders "
                        f"{_label(theirs[index])} (a step was deleted, added or moved)")
            found = _differs(mine[index], theirs[index], "")
            if found is not None:
                return f"{label} ({_label(theirs[index])}): {found}"
    found = _differs(saved["observed"], rendered["observed"], "observed")
    return f"its {found}" if found is not None else None


def _label(item: Doc) -> str:
    return str(item["id"]) if "id" in item else f"{item['action']} {item['path']}"


def _differs(mine: Any, theirs: Any, path: str) -> str | None:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in [*theirs, *(k for k in mine if k not in theirs)]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in mine:
                return f"{sub} is missing where wlbplan renders {_shown(theirs[key])}"
            if key not in theirs:
                return f"{sub} ({_shown(mine[key])}) is not one wlbplan renders"
            found = _differs(mine[key], theirs[key], sub)
            if found is not None:
                return found
        return None
    if isinstance(mine, list) and isinstance(theirs, list):
        for index in range(max(len(mine), len(theirs))):
            sub = f"{path}[{index}]"
            if index >= len(mine):
                return f"{sub} is missing where wlbplan renders {_shown(theirs[index])}"
            if index >= len(theirs):
                return f"{sub} ({_shown(mine[index])}) is not one wlbplan renders"
            found = _differs(mine[index], theirs[index], sub)
            if found is not None:
                return found
        return None
    if type(mine) is type(theirs) and mine == theirs:
        return None
    return f"{path or 'the value'} is {_shown(mine)} where wlbplan renders {_shown(theirs)}"


def _shown(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= limit else text[:limit - 1] + "…"
