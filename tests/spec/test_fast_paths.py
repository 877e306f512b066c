"""The spec loader's fast paths give what the slow ones gave: libyaml's composer the same
data, spans and plain texts as PyYAML's; the schema with its references inlined the same
errors as the schema as shipped."""

from __future__ import annotations

import gc
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from wlbplan.spec import schema_text
from wlbplan.spec.report import Report
from wlbplan.spec.schema import inline_refs

parse_module = importlib.import_module("wlbplan.spec.parse")

TESTS = Path(__file__).resolve().parents[1]
SPECS = sorted((TESTS / "data" / "specs").glob("*/*.yaml")) + sorted(
    (TESTS.parent / "examples").glob("*.yaml"))


def _read(text: str, loader: Any) -> tuple[Any, Report]:
    report = Report("x.yaml")
    report.text = text
    root = yaml.compose(text, Loader=loader)
    return parse_module._Builder(report).build(root, ()), report


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="no libyaml")
def test_libyaml_reads_every_spec_as_pyyaml_does() -> None:
    assert SPECS
    for path in SPECS:
        text = path.read_text()
        try:
            slow, slow_report = _read(text, yaml.SafeLoader)
        except yaml.YAMLError:
            # What PyYAML refuses, libyaml refuses too (PyYAML then says why).
            with pytest.raises(yaml.YAMLError):
                _read(text, yaml.CSafeLoader)
            continue
        fast, fast_report = _read(text, yaml.CSafeLoader)
        assert fast == slow, path
        assert fast_report.values == slow_report.values, path
        assert fast_report.keys == slow_report.keys, path
        assert fast_report.plain == slow_report.plain, path


def test_yaml_errors_keep_pyyaml_words_and_places() -> None:
    report = Report("x.yaml")
    assert parse_module.parse(b"a: [1, 2\nb: 3\n", report) is parse_module.UNUSABLE
    (only,) = report.diagnostics
    assert only.message == ("YAML syntax error: while parsing a flow sequence, "
                            "expected ',' or ']', but got ':'")
    assert only.start is not None
    assert (only.start.line, only.start.column) == (2, 2)


def _errors(schema: dict[str, Any], data: Any) -> list[tuple[Any, ...]]:
    validator = jsonschema.Draft202012Validator(schema)
    return sorted((tuple(e.absolute_path), e.validator, e.message)
                  for e in validator.iter_errors(data))


def test_inlined_schema_has_no_reference_and_finds_the_same_errors() -> None:
    shipped = json.loads(schema_text())
    inlined = inline_refs(shipped)
    assert '"$ref"' not in json.dumps(inlined)
    for path in SPECS:
        data = parse_module.parse(path.read_bytes(), Report(str(path)))
        if data is parse_module.UNUSABLE:
            continue
        assert _errors(inlined, data) == _errors(shipped, data), path


def test_a_reference_beside_other_keywords_keeps_them() -> None:
    name = {"type": "string", "pattern": "^[a-z]+$", "description": "a name"}
    schema = {"$defs": {"name": name}, "properties": {
        "n": {"description": "mine", "$ref": "#/$defs/name", "maxLength": 3},
        # Both say pattern: kept apart, as allOf.
        "m": {"$ref": "#/$defs/name", "pattern": "^.$"}}}
    inlined = inline_refs(schema)["properties"]
    assert inlined["n"] == {"description": "mine", "type": "string", "pattern": "^[a-z]+$",
                            "maxLength": 3}
    assert list(inlined["n"]) == ["description", "type", "pattern", "maxLength"]
    assert inlined["m"] == {"allOf": [name], "pattern": "^.$"}
    for data in ({"n": "abcd"}, {"n": "A"}, {"n": 1}, {"m": "ab"}, {"m": "B"}, {"m": "b"}):
        assert _errors({"properties": inlined}, data) == _errors(schema, data), data


@pytest.mark.parametrize("defs", [
    {"a": {"items": {"$ref": "#/$defs/a"}}},
    {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
    {},
])
def test_a_recursive_or_unknown_reference_is_refused(defs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cannot inline"):
        inline_refs({"$defs": defs, "$ref": "#/$defs/a"})


def test_loading_pauses_the_cyclic_collector_and_restores_it(tmp_path: Path) -> None:
    from wlbplan.spec import load_spec_with_diagnostics

    good, bad = SPECS[0], tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    assert gc.isenabled()
    for path in (good, bad, tmp_path / "missing.yaml"):
        load_spec_with_diagnostics(path)
        assert gc.isenabled(), path
    gc.disable()
    try:
        load_spec_with_diagnostics(good)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _deep_alias() -> str:
    inner = "[" * 40 + "1" + "]" * 40
    return f"version: 1\na: &x {inner}\nb: {'[' * 40}*x{']' * 40}\n"


@pytest.mark.parametrize("text", [
    "[" * 65 + "]" * 65,
    "[" * 999 + "]" * 999,
    "[" * 3000 + "]" * 3000,
    "".join(" " * i + "a:\n" for i in range(200)) + " " * 200 + "b: 1\n",
    "- " * 120 + "x\n",
    _deep_alias(),
    "version: 1\ntargets: [" + "{a: " * 30 + "1" + "}" * 30 + "]\n",
], ids=["flow-65", "flow-999", "flow-3000", "block-200", "seq-120", "alias", "shallow"])
def test_deep_documents_get_the_same_diagnostics_either_way(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from wlbplan.spec import load_spec_text

    fast = load_spec_text(text, Path("deep.yaml"))[1]
    monkeypatch.setattr(parse_module, "_FAST_LOADER", None)
    slow = load_spec_text(text, Path("deep.yaml"))[1]
    assert [d.format() for d in fast] == [d.format() for d in slow]


_PROBE = """
import sys
from pathlib import Path
from wlbplan.spec import load_spec_with_diagnostics
spec, diagnostics = load_spec_with_diagnostics(Path(sys.argv[1]))
print(spec is not None, "cryptography" in sys.modules)
"""


def test_a_spec_naming_no_certificate_file_loads_without_cryptography(tmp_path: Path) -> None:
    """cryptography's x509 costs a 500-target validate ~10% of its time; only a spec that
    names certificate files to check needs it."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\ntargets:\n  - name: t1\n    pool: {coordinator: xs1}\n"
                    "    wlb: {address: wlb1.example.com}\n"
                    "    certificate: {source: self-signed}\n")
    done = subprocess.run([sys.executable, "-c", _PROBE, str(spec)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["True", "False"]
