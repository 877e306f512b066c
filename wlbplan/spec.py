"""Load a spec file: YAML (safe) + JSON Schema + semantic rules → frozen ``model.Spec``.

Pipeline: read bytes → compose the YAML node tree (it keeps line/column for every node
and shows the duplicate keys PyYAML's constructor silently drops) → plain data plus a
path → position map → JSON Schema, every error → rules a schema cannot express (CN vs
address, IP SAN, signed needs root ...) → Spec. Bad input never raises here except as
``SpecError`` from ``load_spec``: everything else comes back as a ``Diagnostic``.
Pure apart from reading the one file it is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]  # no stubs in dev deps
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from wlbplan.errors import SpecError
from wlbplan.model.spec import (
    DEFAULT_KEY_BITS,
    CertificateRequest,
    CertificateSpec,
    Defaults,
    Diagnostic,
    KeySpec,
    Policy,
    PoolSpec,
    Position,
    Severity,
    Signer,
    Spec,
    SshSettings,
    Subject,
    Target,
    WlbCredentials,
    WlbPaths,
    WlbSpec,
    is_ip_literal,
)

__all__ = [
    "load_spec",
    "load_spec_text",
    "load_spec_with_diagnostics",
    "schema_text",
    "spec_digest",
]

PathT = tuple[str | int, ...]
Data = dict[str, Any]

# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def load_spec(path: Path) -> Spec:
    """The validated spec at ``path``; SpecError (carrying every diagnostic) otherwise."""
    spec, diagnostics = load_spec_with_diagnostics(path)
    if spec is None:
        raise SpecError(_error_message(path, diagnostics), diagnostics)
    return spec


def load_spec_with_diagnostics(path: Path) -> tuple[Spec | None, list[Diagnostic]]:
    """The spec (None when any error) and every error and warning, sorted by position."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, [_unreadable(path, err)]
    return _load(raw, path)


def load_spec_text(text: str, path: Path) -> tuple[Spec | None, list[Diagnostic]]:
    """Like ``load_spec_with_diagnostics`` for text already in memory (no I/O at all).

    ``path`` names the file in diagnostics and anchors relative local paths.
    """
    return _load(text.encode("utf-8", "surrogatepass"), path)


def spec_digest(path: Path) -> str:
    """sha256 of the spec file's bytes, so a saved plan can tell the spec has changed."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise SpecError(f"{path}: {_unreadable(path, err).message}") from err


def schema_text() -> str:
    """The packaged JSON Schema of the spec, as shipped."""
    return (resources.files("wlbplan") / "schemas" / "wlbplan.schema.json").read_text("utf-8")


def _error_message(path: Path, diagnostics: list[Diagnostic]) -> str:
    errors = [d for d in diagnostics if d.is_error]
    if len(errors) == 1 and errors[0].start is None:
        return f"{path}: {errors[0].message}"
    lines = "\n".join(f"  {d.format()}" for d in errors)
    return f"invalid spec {path} ({_plural(len(errors), 'error')}):\n{lines}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _unreadable(path: Path, err: OSError) -> Diagnostic:
    if isinstance(err, FileNotFoundError):
        message = "spec file not found"
    else:
        message = f"cannot read the spec file: {err.strerror or err}"
    return Diagnostic("error", str(path), "", message)


def _load(raw: bytes, path: Path) -> tuple[Spec | None, list[Diagnostic]]:
    report = _Report(str(path))
    data = _parse(raw, report)
    if data is not _UNUSABLE:
        dirty = _check_schema(data, report)
        _check_semantics(data, report, dirty)
    diagnostics = report.sorted()
    if data is _UNUSABLE or any(d.is_error for d in diagnostics):
        return None, diagnostics
    digest = hashlib.sha256(raw).hexdigest()
    return _to_spec(data, path, digest, report), diagnostics


# ---------------------------------------------------------------------------------------
# Diagnostics with positions
# ---------------------------------------------------------------------------------------


# (character index, 0-based line, 0-based column), as PyYAML's marks count. Turned into
# a Position only for a diagnostic: the byte offset costs a scan of the text before it.
_Mark = tuple[int, int, int]


@dataclass(frozen=True)
class _Span:
    start: _Mark
    end: _Mark

    @classmethod
    def of(cls, node: Node) -> _Span:
        start, end = node.start_mark, node.end_mark
        return cls((start.index, start.line, start.column), (end.index, end.line, end.column))

    @classmethod
    def at(cls, mark: _Mark) -> _Span:
        return cls(mark, mark)


class _Report:
    """Collects diagnostics and knows where every path of the document sits in the file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.text = ""
        self.values: dict[PathT, _Span] = {}
        self.keys: dict[PathT, _Span] = {}
        self.plain: dict[PathT, str] = {}  # raw text of unquoted scalars that are not str
        self.diagnostics: list[Diagnostic] = []

    def position(self, mark: _Mark) -> Position:
        index, line, column = mark
        # Marks count characters; terraform's range wants a byte offset too. (When the
        # file is not UTF-8 the text stays "" and the mark already counts bytes.)
        ascii_only = self.text.isascii()
        byte = index if ascii_only else len(self.text[:index].encode("utf-8", "replace"))
        return Position(line + 1, column + 1, byte)

    def line_of(self, path: PathT) -> int | None:
        span = self.keys.get(path) or self.values.get(path)
        return span.start[1] + 1 if span else None

    def locate(self, path: PathT, on_key: bool = False) -> _Span | None:
        """The span of ``path`` (its key when asked and known), else its nearest ancestor's."""
        if on_key and path in self.keys:
            return self.keys[path]
        for depth in range(len(path), -1, -1):
            span = self.values.get(path[:depth])
            if span is not None:
                return span
        return None

    def add(
        self,
        severity: Severity,
        path: PathT,
        message: str,
        detail: str = "",
        *,
        on_key: bool = False,
        span: _Span | None = None,
    ) -> None:
        span = span or self.locate(path, on_key)
        start = self.position(span.start) if span else None
        end = self.position(span.end) if span else None
        where = format_path(path)
        self.diagnostics.append(
            Diagnostic(severity, self.filename, where, message, detail, start, end)
        )

    def error(self, path: PathT, message: str, detail: str = "", *, on_key: bool = False) -> None:
        self.add("error", path, message, detail, on_key=on_key)

    def warning(self, path: PathT, message: str, detail: str = "") -> None:
        self.add("warning", path, message, detail)

    def sorted(self) -> list[Diagnostic]:
        unique = list(dict.fromkeys(self.diagnostics))  # one jsonschema error per missing key
        return sorted(unique, key=_diagnostic_order)


def _diagnostic_order(d: Diagnostic) -> tuple[int, int, str]:
    if d.start is None:
        return (0, 0, d.path)
    return (d.start.line, d.start.column, d.path)


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(path: PathT) -> str:
    """``("targets", 0, "wlb", "port")`` → ``targets[0].wlb.port``; odd keys get quotes."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


# ---------------------------------------------------------------------------------------
# YAML → data, keeping positions
# ---------------------------------------------------------------------------------------

_MAX_DEPTH = 64  # no sane spec nests deeper than ~8; stops recursion bombs early
_MAX_NODES = 100_000  # stops alias "billion laughs" expansion
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"}  # no date fields
_SAFE = SafeConstructor()
_SCALARS: dict[str, tuple[str, Callable[[ScalarNode], object]]] = {
    "tag:yaml.org,2002:null": ("null", lambda node: None),
    "tag:yaml.org,2002:bool": ("boolean", _SAFE.construct_yaml_bool),
    "tag:yaml.org,2002:int": ("integer", _SAFE.construct_yaml_int),
    "tag:yaml.org,2002:float": ("number", _SAFE.construct_yaml_float),
}


_UNUSABLE = object()  # no document to validate (None is a document: `~`, `&a`)


class _Abort(Exception):
    """Building the data cannot go on usefully (alias loop, bomb); carries the reason."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def _parse(raw: bytes, report: _Report) -> Any:
    """The document as plain data, or _UNUSABLE after reporting why there is none."""
    try:
        report.text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        _report_undecodable(raw, err, report)
        return _UNUSABLE
    try:
        root = yaml.compose(report.text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        _report_yaml_error(err, report)
        return _UNUSABLE
    except RecursionError:
        report.error((), "the YAML is nested too deeply")
        return _UNUSABLE
    if root is None:
        hint = "Start from examples/self-signed.yaml."
        report.add("error", (), "the spec is empty", hint, span=_Span.at((0, 0, 0)))
        return _UNUSABLE
    try:
        return _Builder(report).build(root, ())
    except _Abort as abort:
        report.add("error", (), abort.message, span=_Span.of(abort.node))
        return _UNUSABLE


def _report_undecodable(raw: bytes, err: UnicodeDecodeError, report: _Report) -> None:
    # No text, so count in bytes; report.text stays "" and byte offset = index.
    line_start = raw.rfind(b"\n", 0, err.start) + 1
    mark = (err.start, raw.count(b"\n", 0, err.start), err.start - line_start)
    message = f"the file is not UTF-8 (byte 0x{raw[err.start]:02x})"
    report.add("error", (), message, span=_Span.at(mark))


def _report_yaml_error(err: yaml.YAMLError, report: _Report) -> None:
    span = None
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        span = _Span.at((mark.index, mark.line, mark.column))
        # PyYAML's own order reads as one sentence: "while parsing X, expected Y".
        said = f"{err.context}, {err.problem}" if err.context else err.problem
        message = f"YAML syntax error: {said}"
    elif isinstance(err, yaml.reader.ReaderError):
        before = report.text[: err.position]
        line_start = before.rfind("\n") + 1
        span = _Span.at((err.position, before.count("\n"), err.position - line_start))
        char = err.character
        code = char if isinstance(char, int) else ord(char)
        message = f"YAML syntax error: {err.reason} (U+{code:04X})"
    else:  # pragma: no cover - every PyYAML error is one of the two above
        message = f"YAML syntax error: {err}"
    report.add("error", (), message, span=span)


class _Builder:
    """Walks the node tree into dicts/lists/scalars, recording every node's span."""

    def __init__(self, report: _Report) -> None:
        self.report = report
        self.count = 0
        self.active: set[int] = set()  # nodes on the current walk: a repeat is an alias loop

    def build(self, node: Node, path: PathT) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _Abort(node, "the document is too large (an alias expanding too often?)")
        if len(path) > _MAX_DEPTH:
            raise _Abort(node, "the document is nested too deeply")
        self.report.values[path] = _Span.of(node)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        with self._walking(node):
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            result: Data = {}
            self._fill(result, node, path, report_duplicates=True)
            return result

    @contextlib.contextmanager
    def _walking(self, node: Node) -> Iterator[None]:
        if id(node) in self.active:
            raise _Abort(node, "recursive YAML alias (a node that contains itself)")
        self.active.add(id(node))
        try:
            yield
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: ScalarNode, path: PathT) -> Any:
        if node.tag in _STR_TAGS:
            if "\x00" in node.value:  # would break paths and argv much later, far from here
                self.report.error(path, "NUL characters are not allowed")
            return node.value
        kind, construct = _SCALARS.get(node.tag, ("", None))
        if construct is None:
            self.report.error(path, f"unsupported YAML tag {node.tag}")
            return node.value
        try:
            value = construct(node)
        except (ValueError, OverflowError, yaml.YAMLError):
            self.report.error(path, f"{node.value!r} is not a valid {kind}")
            return node.value
        if isinstance(value, float) and not math.isfinite(value):
            # .nan and .inf slip through every JSON Schema range check.
            self.report.error(path, f"{node.value!r} is not a finite number")
        if node.style is None:
            self.report.plain[path] = node.value
        return value

    def _fill(self, result: Data, node: Node, path: PathT, report_duplicates: bool) -> None:
        """Add ``node``'s entries to ``result``; YAML merge keys (``<<``) fill the gaps."""
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in result:
                if report_duplicates:
                    self._duplicate(key_node, (*path, key))
                continue
            self.report.keys[(*path, key)] = _Span.of(key_node)
            result[key] = self.build(value_node, (*path, key))
        for source in merges:
            self._merge(result, source, path)

    def _merge(self, result: Data, source: Node, path: PathT) -> None:
        items = source.value if isinstance(source, SequenceNode) else [source]
        for item in items:
            if not isinstance(item, MappingNode):
                span = _Span.of(item)
                self.report.add("error", path, "merge key << needs a mapping", span=span)
                continue
            with self._walking(item):
                self._fill(result, item, path, report_duplicates=False)

    def _key(self, node: Node, path: PathT) -> str | None:
        # Keys are names here, so the raw text is the key: `1:` and `"1":` are the same.
        if isinstance(node, ScalarNode) and "\x00" not in node.value:
            return str(node.value)
        span = _Span.of(node)
        self.report.add("error", path, "mapping keys must be plain text", span=span)
        return None

    def _duplicate(self, key_node: Node, path: PathT) -> None:
        first = self.report.line_of(path)
        # PyYAML would silently keep the last value; other YAML tools keep the first or fail.
        self.report.add(
            "error",
            path,
            f"duplicate key '{path[-1]}' (first at line {first})",
            "YAML tools disagree on which value of a repeated key wins; keep one.",
            span=_Span.of(key_node),
        )


# ---------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------


def _strict_integer(checker: Any, instance: object) -> bool:
    # jsonschema counts 8012.0 as an integer; a port or key size written so is a typo.
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _validator() -> Any:
    schema = json.loads(schema_text())
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", _strict_integer)
    strict = jsonschema.validators.extend(base, type_checker=checker)
    return strict(schema)


def _check_schema(data: Any, report: _Report) -> set[PathT]:
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


def _explain(err: Any, report: _Report) -> Iterator[_Problem]:
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


def _keyword_message(err: Any, report: _Report, path: PathT) -> str:
    keyword, value, instance, schema = err.validator, err.validator_value, err.instance, err.schema
    if keyword == "type":
        return _type_message(value, instance, report.plain.get(path))
    if keyword == "enum":
        return _enum_message(value, instance)
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


def _enum_message(choices: list[Any], instance: object) -> str:
    message = f"{_show(instance)} is not one of: {', '.join(str(c) for c in choices)}"
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


# ---------------------------------------------------------------------------------------
# Semantic rules (what a JSON Schema cannot say)
# ---------------------------------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _host_problem(text: str) -> str | None:
    """Why ``text`` is neither an IP literal nor a DNS name, or None when it is one."""
    if is_ip_literal(text):
        return None
    if ":" in text or "/" in text:
        return "must be a bare host name or IP address (put the port in `port`, no scheme)"
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return "is not a valid host name"
    return None


def _dns_key(name: str) -> str:
    return name.lower().rstrip(".")


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...`` or None when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


class _Clean:
    """Which parts passed the schema: semantic rules only read parts that did."""

    def __init__(self, dirty: set[PathT]) -> None:
        self.dirty = dirty

    def __call__(self, prefix: PathT) -> bool:
        return not any(path[: len(prefix)] == prefix for path in self.dirty)


def _check_semantics(data: Any, report: _Report, dirty: set[PathT]) -> None:
    if not isinstance(data, dict):
        return
    clean = _Clean(dirty)
    if isinstance(data.get("resolve"), dict):
        _check_resolve(data["resolve"], report, clean)
    targets = data.get("targets")
    if not isinstance(targets, list):
        return
    _check_unique_names(targets, report)
    min_rsa = _min_rsa_bits(data)
    for index, target in enumerate(targets):
        if isinstance(target, dict):
            _check_target(target, ("targets", index), report, min_rsa, clean)


def _min_rsa_bits(data: Data) -> int:
    bits = _dig(data, "policy", "min_rsa_bits")
    return bits if isinstance(bits, int) and not isinstance(bits, bool) else Policy().min_rsa_bits


def _check_resolve(resolve: Data, report: _Report, clean: _Clean) -> None:
    for host, address in resolve.items():
        if not clean(("resolve", host)):
            continue
        problem = _host_problem(host)
        if problem:
            report.error(("resolve", host), f"host name '{host}' {problem}", on_key=True)
        if not is_ip_literal(address):
            report.error(
                ("resolve", host),
                f"'{address}' is not an IP address",
                "resolve maps a host name to an IPv4 or IPv6 literal, like curl --resolve.",
            )


def _check_unique_names(targets: list[Any], report: _Report) -> None:
    first: dict[str, int] = {}
    for index, target in enumerate(targets):
        name = _dig(target, "name")
        if not isinstance(name, str):
            continue
        if name in first:
            line = report.line_of(("targets", first[name], "name"))
            report.error(
                ("targets", index, "name"), f"duplicate target name '{name}' (first at line {line})"
            )
        else:
            first[name] = index


def _check_target(target: Data, path: PathT, report: _Report, min_rsa: int, clean: _Clean) -> None:
    """Rules per target; each reads only parts that passed the schema, so one typo
    elsewhere in the target does not hide these errors."""
    _check_hosts(target, path, report, clean)
    address = _dig(target, "wlb", "address")
    if not isinstance(address, str) or not clean((*path, "wlb", "address")):
        return
    if is_ip_literal(address):
        report.warning(
            (*path, "wlb", "address"),
            "the pool reaches WLB by IP address; reconnect it by FQDN",
            "With wlb-verify-cert on, the pool checks the certificate against the host part "
            "of wlb-url; a name is what CA-signed certificates carry (seed procedure).",
        )
    certificate = target.get("certificate")
    if not isinstance(certificate, dict):
        return
    cert_path = (*path, "certificate")
    if isinstance(certificate.get("source"), str) and clean((*cert_path, "source")):
        _check_source(certificate, cert_path, report, clean)
    request = certificate.get("request")
    if isinstance(request, dict):
        _check_request(request, address, (*cert_path, "request"), report, min_rsa, clean)


_HOST_KEYS = (
    ("pool", "coordinator"),
    ("pool", "ssh_host"),
    ("wlb", "address"),
    ("wlb", "ssh_host"),
)


def _check_hosts(target: Data, path: PathT, report: _Report, clean: _Clean) -> None:
    for side, key in _HOST_KEYS:
        value = _dig(target, side, key)
        if not isinstance(value, str) or not clean((*path, side, key)):
            continue
        problem = _host_problem(value)
        if problem:
            report.error((*path, side, key), f"'{value}' {problem}")


_CA_ONLY = ("signed", "intermediates", "root", "signer")


def _check_source(certificate: Data, path: PathT, report: _Report, clean: _Clean) -> None:
    if certificate["source"] == "self-signed":
        for key in _CA_ONLY:
            if key in certificate:
                report.error(
                    (*path, key), f"'{key}' applies to source: ca-signed only", on_key=True
                )
        return
    if "request" not in certificate:
        report.error(
            (*path, "source"),
            "source: ca-signed needs certificate.request",
            "The key and CSR are made on the appliance; request says what goes in the CSR.",
        )
    for key in ("signed", "signer"):
        if key in certificate and "root" not in certificate:
            report.error(
                (*path, key),
                f"'{key}' needs 'root': the pool must be told which CA to trust",
                on_key=True,
            )
    if "signer" in certificate and "signed" not in certificate:
        report.error(
            (*path, "signer"),
            "'signer' needs 'signed': the path where the signer writes the certificate",
            on_key=True,
        )
    if "signer" in certificate and clean((*path, "signer")):
        _check_signer(certificate["signer"]["command"], (*path, "signer", "command"), report)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _check_signer(command: list[str], path: PathT, report: _Report) -> None:
    used = {name for arg in command for name in _PLACEHOLDER.findall(arg)}
    for name in sorted(used - {"csr", "cert"}):
        report.error(path, f"unknown placeholder {{{name}}} (use {{csr}} and {{cert}})")
    for name in sorted({"csr", "cert"} - used):
        report.error(path, f"the command must contain {{{name}}}")


def _check_request(
    request: Data, address: str, path: PathT, report: _Report, min_rsa: int, clean: _Clean
) -> None:
    names_path, key_path = (*path, "alt_names"), (*path, "key")
    if clean(names_path):
        _check_alt_names(request.get("alt_names", []), names_path, report)
    if clean(key_path):
        _check_key(request.get("key", {}), key_path, report, min_rsa)
    if clean(names_path) and clean((*path, "common_name")):
        _check_common_name(request, address, path, report)


def _check_common_name(request: Data, address: str, path: PathT, report: _Report) -> None:
    common_name = request.get("common_name")
    if is_ip_literal(address):
        _check_ip_request(common_name, request.get("alt_names", []), address, path, report)
    elif common_name is not None and _dns_key(common_name) != _dns_key(address):
        report.error(
            (*path, "common_name"),
            f"common_name '{common_name}' must equal wlb.address '{address}'",
            "The pool checks the certificate against the host part of its wlb-url; "
            "a CN that differs breaks the connection.",
        )


def _check_ip_request(
    common_name: str | None, alt_names: list[str], address: str, path: PathT, report: _Report
) -> None:
    if common_name is None:
        report.error(
            path,
            "common_name is required when wlb.address is an IP address: "
            "the CN must be the appliance's FQDN",
            on_key=True,
        )
    elif is_ip_literal(common_name) or _host_problem(common_name):
        report.error(
            (*path, "common_name"),
            f"common_name '{common_name}' must be the appliance's FQDN (a DNS name)",
        )
    wanted = ipaddress.ip_address(address)
    if not any(_san_ip(name) == wanted for name in alt_names):
        where = (*path, "alt_names") if alt_names else path
        report.error(
            where,
            f"wlb.address is the IP address {address}: add 'IP:{address}' to alt_names",
            "The seed rule: CN = FQDN and the IP as a SAN.",
            on_key=True,
        )


def _san_ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    kind, _, value = name.partition(":")
    return ipaddress.ip_address(value) if kind == "IP" and is_ip_literal(value) else None


def _check_alt_names(alt_names: list[str], path: PathT, report: _Report) -> None:
    for index, name in enumerate(alt_names):
        kind, _, value = name.partition(":")
        if kind == "IP" and not is_ip_literal(value):
            report.error((*path, index), f"'{value}' is not an IP address")
        elif kind == "DNS" and is_ip_literal(value):
            report.error((*path, index), f"'{value}' is an IP address: write IP:{value}")
        elif kind == "DNS" and _host_problem(value.removeprefix("*.")):
            report.error((*path, index), f"'{value}' is not a valid DNS name")


_EC_BITS = (256, 384, 521)
_MAX_RSA_BITS = 16384


def _check_key(key: Data, path: PathT, report: _Report, min_rsa: int) -> None:
    bits = key.get("bits")
    if bits is None:
        return
    if key.get("type", "rsa") == "ec":
        if bits not in _EC_BITS:
            report.error((*path, "bits"), f"EC keys are 256, 384 or 521 bits, got {bits}")
    elif bits < min_rsa:
        report.error(
            (*path, "bits"), f"RSA key of {bits} bits is below policy.min_rsa_bits ({min_rsa})"
        )
    elif bits > _MAX_RSA_BITS:
        report.error((*path, "bits"), f"RSA keys above {_MAX_RSA_BITS} bits are not supported")


# ---------------------------------------------------------------------------------------
# Validated data → model.Spec
# ---------------------------------------------------------------------------------------


# Parts of a target that findings point at (audit's SARIF / GitHub locations).
_LINED = ("", "name", "pool", "wlb", "wlb.address", "certificate", "verify")


def _to_spec(data: Data, path: Path, digest: str, report: _Report) -> Spec:
    base = path.absolute().parent
    defaults = Defaults(_ssh(data.get("defaults", {}).get("ssh", {}), SshSettings(), base))
    targets = []
    for index, raw in enumerate(data["targets"]):
        target = _target(raw, defaults.ssh, base)
        targets.append(dataclasses.replace(target, lines=_lines(report, index)))
    return Spec(
        version=data["version"],
        path=path,
        digest=digest,
        targets=tuple(targets),
        defaults=defaults,
        policy=Policy(**data.get("policy", {})),
        resolve=tuple((_dns_key(host), ip) for host, ip in data.get("resolve", {}).items()),
    )


def _lines(report: _Report, index: int) -> tuple[tuple[str, int], ...]:
    found = []
    for where in _LINED:
        parts = tuple(part for part in where.split(".") if part)
        line = report.line_of(("targets", index, *parts))
        if line is not None:
            found.append((where, line))
    return tuple(found)


def _local(text: str, base: Path) -> Path:
    """A local path: ``~`` expanded, relative ones anchored at the spec file's folder."""
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else base / path


def _optional_local(text: str | None, base: Path) -> Path | None:
    return None if text is None else _local(text, base)


def _ssh(raw: Data, inherited: SshSettings, base: Path) -> SshSettings:
    changes = dict(raw)
    for key in ("identity_file", "known_hosts"):
        if key in changes:
            changes[key] = _local(changes[key], base)
    if "connect_timeout" in changes:
        changes["connect_timeout"] = float(changes["connect_timeout"])
    return dataclasses.replace(inherited, **changes)


def _target(raw: Data, default_ssh: SshSettings, base: Path) -> Target:
    wlb = _wlb(raw["wlb"])
    return Target(
        name=raw["name"],
        pool=_pool(raw["pool"]),
        wlb=wlb,
        certificate=_certificate(raw["certificate"], wlb.address, base),
        verify=raw.get("verify", True),
        ssh=_ssh(raw.get("ssh", {}), default_ssh, base),
    )


def _pool(raw: Data) -> PoolSpec:
    fields = dict(raw)
    for name in ("trust_dir", "state_dir"):
        if name in fields:
            fields[name] = PurePosixPath(fields[name])
    return PoolSpec(**fields)


def _wlb(raw: Data) -> WlbSpec:
    fields = dict(raw)
    paths = fields.pop("paths", {})
    fields["paths"] = WlbPaths(**{key: PurePosixPath(value) for key, value in paths.items()})
    if "stunnel_conf" in fields:
        fields["stunnel_conf"] = PurePosixPath(fields["stunnel_conf"])
    if "credentials" in fields:
        fields["credentials"] = WlbCredentials(**fields["credentials"])
    return WlbSpec(**fields)


def _certificate(raw: Data, address: str, base: Path) -> CertificateSpec:
    request = raw.get("request")
    signer = raw.get("signer")
    return CertificateSpec(
        source=raw["source"],
        request=None if request is None else _request(request, address, base),
        signed=_optional_local(raw.get("signed"), base),
        intermediates=tuple(_local(item, base) for item in raw.get("intermediates", [])),
        root=_optional_local(raw.get("root"), base),
        signer=None if signer is None else Signer(tuple(signer["command"])),
    )


def _request(raw: Data, address: str, base: Path) -> CertificateRequest:
    key = raw.get("key", {})
    key_type = key.get("type", "rsa")
    return CertificateRequest(
        # Only reached when valid: a missing CN means wlb.address is a name (see semantics).
        common_name=raw.get("common_name", address),
        alt_names=tuple(raw.get("alt_names", [])),
        subject=Subject(**raw.get("subject", {})),
        key=KeySpec(key_type, key.get("bits", DEFAULT_KEY_BITS[key_type])),
        csr_out=_optional_local(raw.get("csr_out"), base),
    )
