"""The rule catalogue is the contract behind SARIF, JUnit and dashboards: every id used
in the package is catalogued, every catalogued id is used, and the README lists them."""

from __future__ import annotations

import re
from pathlib import Path

from wlbplan.core import rules

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


def test_readme_lists_every_rule_with_its_level() -> None:
    readme = (ROOT / "README.md").read_text()
    for rule in rules.CATALOGUE.values():
        assert f"| `{rule.id}` | {rule.level} | {rule.title} |" in readme, rule.id


def test_levels_order() -> None:
    assert rules.at_least("error", "warning")
    assert rules.at_least("warning", "warning")
    assert not rules.at_least("note", "warning")
    assert rules.rule("WLB-POOL-BY-IP").name == "WlbPoolByIp"
