"""How text that wlbplan did not write is shown: one escape for every renderer and message.

Certificate names, subjects and issuers, xe and OpenSSL errors, file names: the hosts
choose them, so they may hold line breaks, terminal escapes or Unicode separators that
would forge lines of a plan or of a CI log (``::error::``, ``::add-mask::``) or restyle a
terminal. ``visible`` turns every character Python does not call printable (C0 and C1
controls, DEL, ESC, line and paragraph separators, format and bidi controls, lone
surrogates, unassigned code points, non-space separators) into a backslash escape, so
the text always stays on one line and shows what is really there. Printable text,
backslashes included, is left as it is, so escaping twice changes nothing.

``shell_word`` is the same rule for one argument of a shown command: a printable word is
quoted as ``shlex.quote`` does, any other is written in bash's ``$'...'`` form, whose
escapes are the same, so the shown command is exactly the argv that runs.
"""

from __future__ import annotations

import shlex

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# surrogateescape keeps an undecodable byte as U+DC80..U+DCFF: show the byte itself.
_RAW_BYTES = range(0xDC80, 0xDD00)


def escape_char(char: str) -> str:
    """One character as an escape that bash's ``$'...'`` and Python both read back."""
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code in _RAW_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` on one line, every unprintable character escaped (``\\n``, ``\\x1b``,
    ``\\u2028``…). The one function every human-facing output uses for host text."""
    if text.isprintable():
        return text  # the common case, kept cheap
    return "".join(c if c.isprintable() else escape_char(c) for c in text)


def shell_word(word: str) -> str:
    """One argument as a person reads it in a shown command: ``shlex.quote`` when it is
    printable, else bash's ANSI-C quoting with the unprintable characters escaped."""
    if word.isprintable():
        return shlex.quote(word)
    body = "".join(
        "\\\\" if c == "\\" else "\\'" if c == "'" else c if c.isprintable() else escape_char(c)
        for c in word
    )
    return f"$'{body}'"


ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` (escaped), saying how much was left out."""
    shown = visible(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}{ELLIPSIS} ({len(shown) - limit} more characters)"


def printable_json(text: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` makes it) with the same data
    but no raw unprintable character: json escapes C0 controls itself, yet leaves DEL, C1
    controls (NEL, CSI), U+2028/2029 and format characters raw for a terminal to act on.
    Outside strings JSON has only printable characters, spaces and line ends."""
    if text.replace("\n", "").isprintable():
        return text
    return "".join(c if c == "\n" or c.isprintable() else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
