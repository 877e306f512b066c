"""The rule catalogue for people and tools (``wlbplan audit --list-rules``).

The same entries SARIF's ``tool.driver.rules`` and the JSON report's ``rules`` carry; the
Markdown table is the README's, word for word (a test keeps them equal). JSON is described
by ``schemas/rules.schema.json``.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from wlbplan import __version__
from wlbplan.core.rules import CATALOGUE, LEVELS, Rule
from wlbplan.render.markdown import md_escape

FORMAT_VERSION = "1.0"
MARKDOWN_HEAD = ("| Rule | Default level | What it means | Why, and what to do |",
                 "|---|---|---|---|")
_ID_WIDTH = max(len(rule_id) for rule_id in CATALOGUE)
_LEVEL_WIDTH = max(len(level) for level in LEVELS)
_HELP_WIDTH = 88


def render(fmt: str) -> str:
    rules = list(CATALOGUE.values())
    if fmt == "json":
        return json.dumps(to_json(rules), indent=2) + "\n"
    if fmt == "markdown":
        return markdown_table(rules) + "\n"
    return "\n".join(_text(rule) for rule in rules)


def to_json(rules: list[Rule]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "wlbplan", "version": __version__},
        "rules": [{"id": r.id, "name": r.name, "level": r.level, "title": r.title,
                   "help": r.help} for r in rules],
    }


def markdown_table(rules: list[Rule]) -> str:
    rows = [f"| `{r.id}` | {r.level} | {md_escape(r.title)} | {md_escape(r.help)} |"
            for r in rules]
    return "\n".join([*MARKDOWN_HEAD, *rows])


def _text(rule: Rule) -> str:
    head = f"{rule.id:<{_ID_WIDTH}}  {rule.level:<{_LEVEL_WIDTH}}  {rule.title}"
    body = textwrap.fill(rule.help, _HELP_WIDTH, initial_indent="    ",
                         subsequent_indent="    ", break_on_hyphens=False)
    return f"{head}\n{body}\n"
