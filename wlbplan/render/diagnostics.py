"""Render spec diagnostics: compiler-style text lines, or terraform's ``validate -json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wlbplan.model.spec import Diagnostic, Position

FORMAT_VERSION = "1.0"
SUCCESS = "Success! The spec is valid."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _counts(diagnostics: Sequence[Diagnostic]) -> tuple[int, int]:
    errors = sum(1 for d in diagnostics if d.is_error)
    return errors, len(diagnostics) - errors


def render_text(diagnostics: Sequence[Diagnostic]) -> str:
    """One ``FILE:LINE:COL: severity: PATH: message`` line each, then the verdict line."""
    errors, warnings = _counts(diagnostics)
    verdict = SUCCESS
    if errors:
        verdict = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}."
    return "\n".join([*(d.format() for d in diagnostics), verdict]) + "\n"


def _position(position: Position) -> dict[str, int]:
    return {"line": position.line, "column": position.column, "byte": position.byte}


def _diagnostic(d: Diagnostic) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": d.severity, "summary": d.message, "detail": d.detail}
    if d.path:
        # terraform puts a resource address here; the spec path plays that role.
        out["address"] = d.path
    if d.start is not None:
        end = d.end or d.start
        out["range"] = {
            "filename": d.filename,
            "start": _position(d.start),
            "end": _position(end),
        }
    return out


def validate_document(diagnostics: Sequence[Diagnostic]) -> dict[str, Any]:
    """The ``terraform validate -json`` shape (``range`` omitted when there is no position)."""
    errors, warnings = _counts(diagnostics)
    return {
        "format_version": FORMAT_VERSION,
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": warnings,
        "diagnostics": [_diagnostic(d) for d in diagnostics],
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps(validate_document(diagnostics), indent=2) + "\n"
