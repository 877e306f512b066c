"""Diagnostics with positions: where every path of the document sits in the file.

The YAML reader records a span per node and per key; every later stage (schema, rules,
building) reports through ``Report`` by path, and gets FILE:LINE:COL for free.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from yaml.nodes import Node

from wlbplan.model.spec import Diagnostic, Position, Severity

PathT = tuple[str | int, ...]
Data = dict[str, Any]



# (character index, 0-based line, 0-based column), as PyYAML's marks count. Turned into
# a Position only for a diagnostic: the byte offset costs a scan of the text before it.
Mark = tuple[int, int, int]


class Span(NamedTuple):
    """Where a node sits. A named tuple, not a dataclass: the reader makes one per node
    and key, ~20 000 for a 500-target spec, and a tuple is three times cheaper to make."""

    start: Mark
    end: Mark

    @classmethod
    def of(cls, node: Node) -> Span:
        start, end = node.start_mark, node.end_mark
        return cls((start.index, start.line, start.column), (end.index, end.line, end.column))

    @classmethod
    def at(cls, mark: Mark) -> Span:
        return cls(mark, mark)


class Report:
    """Collects diagnostics and knows where every path of the document sits in the file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.text = ""
        self.values: dict[PathT, Span] = {}
        self.keys: dict[PathT, Span] = {}
        self.plain: dict[PathT, str] = {}  # raw text of unquoted scalars that are not str
        self.diagnostics: list[Diagnostic] = []

    def position(self, mark: Mark) -> Position:
        index, line, column = mark
        # Marks count characters; terraform's range wants a byte offset too. (When the
        # file is not UTF-8 the text stays "" and the mark already counts bytes.)
        ascii_only = self.text.isascii()
        byte = index if ascii_only else len(self.text[:index].encode("utf-8", "replace"))
        return Position(line + 1, column + 1, byte)

    def line_of(self, path: PathT) -> int | None:
        span = self.keys.get(path) or self.values.get(path)
        return span.start[1] + 1 if span else None

    def locate(self, path: PathT, on_key: bool = False) -> Span | None:
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
        span: Span | None = None,
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

