"""Renderers: plans (text, json, markdown) and spec diagnostics.

Imports stay lazy so that importing one renderer does not load rich or the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wlbplan.plan import Plan

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
