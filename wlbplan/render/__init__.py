"""Renderers: plans (text, json, markdown), audits and spec diagnostics.

Imports stay lazy so that importing one renderer does not load rich or the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wlbplan.core.findings import Audit, FailOn
    from wlbplan.core.plan import Plan

PLAN_FORMATS = ("text", "json", "markdown")


def render_plan(plan: Plan, fmt: str, *, color: bool = False) -> str:
    """``plan`` in one of PLAN_FORMATS; ``color`` only matters for text."""
    if fmt == "text":
        from wlbplan.render import text

        return text.render(plan, color=color)
    if fmt == "json":
        from wlbplan.render import planjson

        return planjson.render(plan)
    if fmt == "markdown":
        from wlbplan.render import markdown

        return markdown.render(plan)
    raise ValueError(f"unknown plan format {fmt!r}; expected one of {', '.join(PLAN_FORMATS)}")


AUDIT_FORMATS = ("text", "json", "markdown", "sarif", "junit", "github")


def render_audit(audit: Audit, fmt: str, *, color: bool = False,
                 fail_on: FailOn = "error") -> str:
    """``audit`` in one of AUDIT_FORMATS; ``color`` only matters for text, ``fail_on``
    only for json and junit (the verdict they carry)."""
    if fmt == "text":
        from wlbplan.render import audit_text

        return audit_text.render(audit, color=color)
    if fmt == "json":
        from wlbplan.render import audit_json

        return audit_json.render(audit, fail_on=fail_on)
    if fmt == "markdown":
        from wlbplan.render import audit_markdown

        return audit_markdown.render(audit)
    if fmt == "sarif":
        from wlbplan.render import sarif

        return sarif.render(audit)
    if fmt == "junit":
        from wlbplan.render import junit

        return junit.render(audit, fail_on=fail_on)
    if fmt == "github":
        from wlbplan.render import github

        return github.render(audit)
    raise ValueError(f"unknown audit format {fmt!r}; expected one of {', '.join(AUDIT_FORMATS)}")


RULES_FORMATS = ("text", "json", "markdown")


def render_rules(fmt: str) -> str:
    """The rule catalogue (``audit --list-rules``) in one of RULES_FORMATS."""
    from wlbplan.render import audit_rules

    if fmt not in RULES_FORMATS:
        raise ValueError(f"unknown rules format {fmt!r}; expected one of "
                         f"{', '.join(RULES_FORMATS)}")
    return audit_rules.render(fmt)
