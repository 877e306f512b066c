"""``wlbplan audit --list-rules``: the whole catalogue in text, JSON and Markdown, from the
same entries SARIF's rule metadata is made of."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from audit_samples import clean

from wlbplan.cli import main
from wlbplan.core.rules import CATALOGUE
from wlbplan.render import RULES_FORMATS, render_rules, sarif

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "rules.schema.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["audit", *argv])
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out, err


def test_json_lists_every_rule_as_sarif_describes_it() -> None:
    doc = json.loads(render_rules("json"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    driver = sarif.to_sarif(clean())["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in doc["rules"]] == list(CATALOGUE) == [r["id"] for r in driver]
    for listed, described in zip(doc["rules"], driver, strict=True):
        assert listed["name"] == described["name"]
        assert listed["level"] == described["defaultConfiguration"]["level"]
        assert listed["title"] == described["shortDescription"]["text"]
        assert listed["help"] == described["help"]["text"]


def test_text_gives_id_level_and_title_on_one_line_and_the_help_below() -> None:
    out = render_rules("text")
    lines = out.splitlines()
    heads = [line for line in lines if line.startswith("WLB-")]
    assert len(heads) == len(CATALOGUE)
    assert heads[0].split(None, 2) == ["WLB-TARGET-UNREACHABLE", "error",
                                       "the target could not be inspected"]
    at = lines.index(heads[0])
    assert lines[at + 1].startswith("    wlbplan could not read the pool")
    assert all(len(line) <= 92 for line in lines if not line.startswith("WLB-"))
    assert out.endswith("\n")
    assert "\n\n\n" not in out


def test_markdown_is_one_row_per_rule_with_markdown_escaped() -> None:
    rows = render_rules("markdown").splitlines()[2:]
    assert len(rows) == len(CATALOGUE)
    by_ip = next(r for r in rows if "`WLB-POOL-BY-IP`" in r)
    assert r"wlb\_url=\<fqdn\>:\<port\>" in by_ip  # not an HTML tag, not italics


@pytest.mark.parametrize("fmt", RULES_FORMATS)
def test_the_command_prints_the_catalogue_without_a_spec(
        capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = run(capsys, "--list-rules", "--format", fmt)
    assert code == 0
    assert out == render_rules(fmt)


def test_the_command_refuses_a_format_the_catalogue_has_not(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--list-rules", "--format", "sarif")
    assert code == 1
    assert "--list-rules prints text, json, markdown, not sarif" in out + err


def test_without_list_rules_a_spec_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 1
    assert "Missing argument 'SPEC'" in out + err
