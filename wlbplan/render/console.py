"""A rich Console writing to a string: deterministic output, colour only when asked."""

from __future__ import annotations

import io
import os
import sys

from rich.console import Console

WIDTH = 100


def make_console(color: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=WIDTH,
                      highlight=False, soft_wrap=True, emoji=False)
    return console, buffer


def want_color(stream: object = None) -> bool:
    """Colour for a terminal, never with NO_COLOR set or when piped (CI logs, files)."""
    if "NO_COLOR" in os.environ:
        return False
    target = stream if stream is not None else sys.stdout
    isatty = getattr(target, "isatty", None)
    return bool(isatty and isatty())
