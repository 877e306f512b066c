"""A spec document as YAML text, with comments: what ``wlbplan import`` writes.

PyYAML cannot write comments, so the layout (block mappings and sequences, two spaces a
level) is written here, and every scalar by ``yaml.safe_dump`` on its own: whatever a
host put in a value (``: ``, ``#``, quotes, line breaks) comes out quoted on one line and
reads back as the same string. Comments go through ``model.text.visible``, so a line break
in host text never ends a comment and starts a key. ``emit`` reads its own text back and
refuses (ValueError, a bug) anything that does not hold exactly the data it was given.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from wlbplan.model.text import visible

Scalar = str | int | float | bool
_INDENT = "  "
_WIDTH = 92  # comment lines are wrapped to this, indentation included
# What YAML takes for the end of a line (YAML 1.1, which PyYAML reads).
_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


@dataclass(frozen=True)
class Block:
    """A mapping: its fields in the order they are written."""

    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Items:
    """A sequence of scalars or mappings."""

    values: tuple[Scalar | Block, ...]


Value = Scalar | Block | Items


@dataclass(frozen=True)
class Field:
    """``key: value``, with comment lines above it and one beside it (scalars only)."""

    key: str
    value: Value
    above: tuple[str, ...] = ()
    beside: str = ""


def scalar(value: Scalar) -> str:
    """``value`` as one line of YAML that reads back as ``value`` in a block mapping."""
    text = _dump(value)
    if any(mark in text for mark in _LINE_BREAKS):
        text = _dump(value, style='"')  # double quotes escape every line break
    return text


def _dump(value: Scalar, style: str | None = None) -> str:
    text = yaml.safe_dump(value, default_style=style, width=math.inf, allow_unicode=True)
    return text.removesuffix("\n...\n").removesuffix("\n")


def comment(text: str, indent: str = "") -> list[str]:
    """``text`` as comment lines at ``indent``: escaped first (host text cannot end the
    comment), then wrapped at spaces, continuation lines indented two more."""
    shown = visible(text)
    if not shown.strip():
        return [f"{indent}#"]
    width = max(40, _WIDTH - len(indent) - 2)
    lines = [shown]
    if len(shown) > width and " " in shown.strip():  # one long word stays whole
        hang = " " * (len(shown) - len(shown.lstrip(" ")) + 2)
        lines = textwrap.wrap(shown, width=width, subsequent_indent=hang,
                              break_long_words=False, break_on_hyphens=False)
    return [f"{indent}# {line}" for line in lines]


def data(fields: Sequence[Field]) -> dict[str, Any]:
    """The plain data the fields stand for (what ``yaml.safe_load`` must read back)."""
    return {f.key: _data(f.value) for f in fields}


def _data(value: Value) -> Any:
    if isinstance(value, Block):
        return data(value.fields)
    if isinstance(value, Items):
        return [_data(v) for v in value.values]
    return value


def emit(fields: Sequence[Field], header: Sequence[str] = (),
         footer: Sequence[str] = ()) -> str:
    """The document: header comments, the fields, footer comments."""
    lines = [line for text in header for line in comment(text)]
    for field in fields:
        lines += _field(field, "")
    lines += [line for text in footer for line in comment(text)]
    text = "\n".join(lines) + "\n"
    try:
        same = yaml.safe_load(text) == data(fields)
    except yaml.YAMLError:
        same = False
    if not same:
        raise ValueError("the YAML written does not read back as the data it was made from")
    return text


def _field(field: Field, indent: str) -> list[str]:
    lines = [line for text in field.above for line in comment(text, indent)]
    head = f"{indent}{scalar(field.key)}:"
    value = field.value
    if isinstance(value, Block) and value.fields:
        lines.append(head)
        for inner in value.fields:
            lines += _field(inner, indent + _INDENT)
    elif isinstance(value, Items) and value.values:
        lines.append(head)
        for item in value.values:
            lines += _item(item, indent + _INDENT)
    else:
        text = "{}" if isinstance(value, Block) else "[]" if isinstance(value, Items) \
            else scalar(value)
        beside = f"  # {visible(field.beside)}" if field.beside else ""
        lines.append(f"{head} {text}{beside}")
    return lines


def _item(item: Scalar | Block, indent: str) -> list[str]:
    """``- value``; a mapping's first key on the dash line, the others under it."""
    if not isinstance(item, Block) or not item.fields:
        return [f"{indent}- {'{}' if isinstance(item, Block) else scalar(item)}"]
    inner = indent + _INDENT
    first, *others = item.fields
    lines = [line for text in first.above for line in comment(text, indent)]
    head, *rest = _field(replace(first, above=()), inner)
    lines += [f"{indent}- {head[len(inner):]}", *rest]
    for field in others:
        lines += _field(field, inner)
    return lines
