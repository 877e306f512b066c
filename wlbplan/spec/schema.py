"""JSON Schema validation, each error turned into a message an operator can act on."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no stubs in dev deps

from wlbplan.spec.report import PathT, Report


def schema_text() -> str:
    """The packaged JSON Schema of the spec, as shipped."""
    return (resources.files("wlbplan") / "schemas" / "wlbplan.schema.json").read_text("utf-8")


def _strict_integer(checker: Any, instance: object) -> bool:
    # jsonschema counts 8012.0 as an integer; a port or key size written so is a typo.
    return isinstance(instance, int) and not isinstance(instance, bool)


_LOCAL_REF = "#/$defs/"
# Keys that only annotate: a reference's own may replace its definition's.
_ANNOTATIONS = frozenset({"description", "default", "title", "examples", "$comment"})
# Keys whose error message also reads other keys of the same schema (_explain): a
# reference's and its definition's are not merged into one schema.
_READ_TOGETHER = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                            "properties", "patternProperties", "additionalProperties",
                            "pattern", "patternErrorMessage"})


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with each ``$ref`` to one of its ``$defs`` replaced by that definition.
    A reference with keywords beside it becomes one schema with the definition's and
    its own (``allOf`` of the two where they would mix), as draft 2020-12 reads them.
    jsonschema looks a reference up again on every visit, and descends once more for
    each schema: most of the time spent validating a fleet's spec. The errors are the
    same. No definition may refer to itself, directly or not (ValueError)."""
    defs = schema.get("$defs", {})

    def inline(node: Any, outer: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [inline(item, outer) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith(_LOCAL_REF)):
            return {key: inline(value, outer) for key, value in node.items() if key != "$defs"}
        name = ref.removeprefix(_LOCAL_REF)
        if name in outer or name not in defs or "allOf" in node:
            raise ValueError(f"cannot inline {ref!r} (recursive, unknown, or beside allOf)")
        target = inline(defs[name], outer | {name})
        beside = {key: inline(value, outer) for key, value in node.items() if key != "$ref"}
        if not beside:
            return target
        if _mergeable(target, beside):
            merged: dict[str, Any] = {}
            for key in node:  # the definition's keys where the reference was: same order
                merged.update({k: v for k, v in target.items() if k not in beside}
                              if key == "$ref" else {key: beside[key]})
            return merged
        return {("allOf" if key == "$ref" else key): ([target] if key == "$ref" else beside[key])
                for key in node}

    inlined: dict[str, Any] = inline(schema, frozenset())
    return inlined


def _mergeable(target: dict[str, Any], beside: dict[str, Any]) -> bool:
    checks = set(beside) - _ANNOTATIONS
    return not (checks & set(target)) and not (
        checks & _READ_TOGETHER and set(target) & _READ_TOGETHER)


@functools.cache
def _validator() -> Any:
    schema = inline_refs(json.loads(schema_text()))
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", _strict_integer)
    strict = jsonschema.validators.extend(base, type_checker=checker)
    return strict(schema)


def check_schema(data: Any, report: Report) -> set[PathT]:
    """Report every schema error; return the paths that had one (semantics skip those)."""
    dirty: set[PathT] = set()
    for err in _relevant(_validator().iter_errors(data)):
        for problem in _explain(err, report):
            dirty.add(problem.path)
            report.error(problem.path, problem.message, problem.detail, on_key=problem.on_key)
    return dirty


def _relevant(errors: Iterable[Any]) -> list[Any]:
    """Drop errors that only follow from a wrong type at the same place ("1" is not 1)."""
    errors = list(errors)
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    return [e for e in errors if e.validator == "type" or tuple(e.absolute_path) not in mistyped]


@dataclass(frozen=True)
class _Problem:
    path: PathT
    message: str
    detail: str = ""
    on_key: bool = False


def _explain(err: Any, report: Report) -> Iterator[_Problem]:
    """Turn one jsonschema error into messages an operator can act on."""
    path: PathT = tuple(err.absolute_path)
    keyword, instance, schema = err.validator, err.instance, err.schema
    if "propertyNames" in err.absolute_schema_path:
        # jsonschema reports a bad key at its mapping; point at the key itself.
        yield _Problem((*path, instance), _keyword_message(err, report, path), on_key=True)
    elif keyword == "additionalProperties" and schema.get("additionalProperties") is False:
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for key in instance:
            if key not in allowed and not any(re.search(p, key) for p in patterns):
                yield _Problem((*path, key), _unknown_key(key, allowed), on_key=True)
    elif keyword == "required":
        for key in err.validator_value:
            if key not in instance:
                yield _Problem(path, f"missing required key '{key}'", on_key=True)
    else:
        yield _Problem(path, _keyword_message(err, report, path))


def _unknown_key(key: str, allowed: list[str]) -> str:
    guess = _did_you_mean(key, allowed)
    if guess:
        return f"unknown key '{key}'; did you mean '{guess}'?"
    return f"unknown key '{key}' (allowed here: {', '.join(allowed)})"


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    by_lower = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def _keyword_message(err: Any, report: Report, path: PathT) -> str:
    keyword, value, instance, schema = err.validator, err.validator_value, err.instance, err.schema
    if keyword == "type":
        return _type_message(value, instance, report.plain.get(path))
    if keyword == "enum":
        return _enum_message(value, instance, schema.get("enumErrorMessage"))
    if keyword == "const":
        return f"must be {_show(value)}, got {_show(instance)}"
    if keyword == "pattern":
        return str(schema.get("patternErrorMessage") or f"must match {value}")
    if keyword in ("minimum", "maximum", "exclusiveMinimum"):
        return _range_message(schema, instance)
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if keyword == "maxLength":
        return f"must be at most {value} characters"
    if keyword == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items"
    if keyword == "uniqueItems":
        return "has duplicate entries"
    return str(err.message)


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: bool is an int in Python
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a mapping"),
)
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def _type_message(expected: Any, instance: object, plain: str | None) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    message = f"must be {wanted}, got {_kind(instance)}"
    if "string" in names and plain is not None:
        # YAML 1.1 reads NO, yes, on, 1e3 ... as non-strings; quoting keeps the text.
        message += f" (quote it: '{plain}')"
    return message


def _enum_message(choices: list[Any], instance: object, instead: str | None = None) -> str:
    """``instead``: the schema's words for a list too long to spell out (the rule ids)."""
    listed = instead or f"is not one of: {', '.join(str(c) for c in choices)}"
    message = f"{_show(instance)} {listed}"
    if isinstance(instance, str):
        guess = _did_you_mean(instance, [str(c) for c in choices])
        if guess:
            message += f"; did you mean '{guess}'?"
    return message


def _range_message(schema: dict[str, Any], instance: object) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"must be between {low} and {high}, got {_show(instance)}"
    if low is not None:
        return f"must be at least {low}, got {_show(instance)}"
    if high is not None:
        return f"must be at most {high}, got {_show(instance)}"
    return f"must be more than {schema.get('exclusiveMinimum')}, got {_show(instance)}"


def _show(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value, default=str)
