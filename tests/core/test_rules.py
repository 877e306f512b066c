"""The rule catalogue is the contract behind SARIF, JUnit and dashboards: every id used
in the package is catalogued, every catalogued id is used, and the README lists them."""

from __future__ import annotations

import re
from pathlib import Path

from wlbplan.core import rules
from wlbplan.render import audit_rules

ROOT = Path(__file__).resolve().parents[2]
RULE_ID = re.compile(r'"(WLB-[A-Z0-9-]+)"')


def ids_used_in_package() -> set[str]:
    used: set[str] = set()
    for path in (ROOT / "wlbplan").rglob("*.py"):
        if path.name != "rules.py":
            used |= set(RULE_ID.findall(path.read_text()))
    return used


def test_every_rule_used_is_catalogued_and_every_catalogued_rule_is_used() -> None:
    assert ids_used_in_package() == set(rules.CATALOGUE)


def test_rules_are_well_formed() -> None:
    names = [r.name for r in rules.CATALOGUE.values()]
    assert len(set(names)) == len(names)
    for rule_id, rule in rules.CATALOGUE.items():
        assert rule.id == rule_id
        assert re.fullmatch(r"WLB(-[A-Z0-9]+)+", rule_id)
        assert rule.level in rules.LEVELS
        assert rule.title
        assert not rule.title.endswith(".")
        assert rule.help.endswith((".", ")"))


def test_readme_table_is_the_catalogue_as_list_rules_prints_it() -> None:
    """The README's table is ``wlbplan audit --list-rules --format markdown``, whole: a rule
    added, removed or reworded in the catalogue must be pasted there too."""
    readme = (ROOT / "README.md").read_text()
    table = audit_rules.markdown_table(list(rules.CATALOGUE.values()))
    opening = "<details><summary>The rules</summary>\n\n"
    assert f"{opening}{table}\n\n</details>" in readme
    listed = re.findall(r"^\| `(WLB-[A-Z0-9-]+)` \|", readme, flags=re.MULTILINE)
    assert listed == list(rules.CATALOGUE)


def test_levels_order() -> None:
    assert rules.at_least("error", "warning")
    assert rules.at_least("warning", "warning")
    assert not rules.at_least("note", "warning")
    assert rules.rule("WLB-POOL-BY-IP").name == "WlbPoolByIp"
