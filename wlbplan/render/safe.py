"""Free text as every human-facing renderer shows it: no PEM, nothing unprintable.

Names, subjects, messages and commands may quote what a host said; ``safe`` is the one
way they reach text, Markdown, GitHub annotations, JUnit, SARIF, inspect output and
progress lines. Machine formats (JSON) keep the value itself, PEMs redacted.
"""

from __future__ import annotations

from wlbplan.model.text import clip, visible
from wlbplan.render.planjson import redact_text

FIELD_CHARS = 1000
"""Where a format has a size limit (a pull-request comment), one field is cut here, so that
one oversized host value (a 100 kB subject) cannot push everything else out."""


def safe(text: str) -> str:
    """One line: PEMs replaced by their placeholder, then every unprintable character
    (line breaks, ESC, BEL, NEL, U+2028…) escaped visibly."""
    return visible(redact_text(text))


def safe_clipped(text: str, limit: int = FIELD_CHARS) -> str:
    """``safe``, cut to ``limit`` characters with a note of how many were left out."""
    return clip(redact_text(text), limit)
