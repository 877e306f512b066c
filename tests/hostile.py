"""Hostile values: what a spec's author (or a copy-paste) may put in any string of a spec,
and what a host may report back (a certificate name, a file name). Every value that could
run a command aims at one canary file, so "nothing ran" is one check: the canary does
not exist afterwards.

``{canary}`` in a value stands for the canary's path (in the test's tmp folder). Used by
tests/hardening/ (the spec's every field), tests/actions/test_pool_names.py and
tests/commands/test_host_input_lab.py (names the hosts report).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CANARY = "{canary}"


@dataclass(frozen=True)
class Hostile:
    id: str
    text: str

    def value(self, canary: Path) -> str:
        return self.text.replace(CANARY, str(canary))


def _h(id_: str, text: str) -> Hostile:
    return Hostile(id_, text)


# The schema's caps (and the OS's) each get a value just under and just over.
_LENGTHS = (32, 33, 63, 64, 65, 128, 129, 253, 254, 255, 256, 4097)

VALUES: tuple[Hostile, ...] = (
    # Shell control operators and substitutions.
    _h("semicolon", "x; touch {canary}"),
    _h("and", "x && touch {canary}"),
    _h("or", "x || touch {canary}"),
    _h("pipe", "x | touch {canary}"),
    _h("background", "x & touch {canary}"),
    _h("subst", "$(touch {canary})"),
    _h("backticks", "`touch {canary}`"),
    _h("subst-in-double-quotes", '"$(touch {canary})"'),
    _h("subst-in-single-quotes", "'$(touch {canary})'"),
    _h("break-single-quotes", "'; touch {canary}; '"),
    _h("break-double-quotes", '"; touch {canary}; "'),
    _h("escaped-quote", "\\'; touch {canary}; \\'"),
    _h("redirect", "x > {canary}"),
    _h("append", "x >> {canary}"),
    _h("process-subst", "<(touch {canary})"),
    _h("arithmetic", "$((1+1))$(touch {canary})"),
    _h("env-assignment", "A=1 touch {canary}"),
    _h("variable", "${HOME}$IFS$0"),
    _h("brace-expansion", "{a,b}$(touch {canary})"),
    _h("history", "!!"),
    _h("comment", "x #$(touch {canary})"),
    _h("heredoc", "<<EOF\ntouch {canary}\nEOF"),
    # Line and control characters.
    _h("newline", "x\ntouch {canary}"),
    _h("carriage-return", "x\rtouch {canary}"),
    _h("crlf", "x\r\ntouch {canary}"),
    _h("nul", "x\x00; touch {canary}"),
    _h("tab", "a\tb"),
    _h("escape-sequence", "\x1b[31mred\x1b[0m"),
    _h("delete", "a\x7fb"),
    _h("c1-next-line", "a\x85b"),
    _h("unicode-line-separator", "a\u2028b"),
    # Options where an argument is expected.
    _h("dash", "-"),
    _h("leading-dash", "-rf"),
    _h("leading-double-dash", "--help"),
    _h("ssh-option", "-oProxyCommand=touch {canary}"),
    _h("long-option-value", "--out={canary}"),
    # Globs, paths out of their folder, home.
    _h("star", "*"),
    _h("question-mark", "?"),
    _h("bracket", "[a-z]*"),
    _h("dotdot", ".."),
    _h("dotdot-chain", "../../.."),
    _h("dotdot-escape", "../../../../tmp/x"),
    _h("tilde", "~"),
    _h("tilde-user", "~root/.ssh"),
    # Formats, escapes and separators other parsers read.
    _h("printf", "%n%s%x"),
    _h("backslash", "\\"),
    _h("trailing-backslash", "x\\"),
    _h("backslash-escapes", "a\\nb\\t\\x41"),
    _h("equals", "="),
    _h("attribute", "CN=evil"),
    _h("subject-syntax", "/CN=evil+O=x,OU=y"),
    _h("user-at-host", "root@evil"),
    _h("host-port", "evil:22"),
    _h("scoped-ipv6", "fe80::1%eth0"),
    _h("url-encoded", "%2e%2e%2f%00"),
    # Spaces.
    _h("space", "a b"),
    _h("leading-space", " a"),
    _h("trailing-space", "a "),
    _h("only-spaces", "   "),
    _h("empty", ""),
    # Non-ASCII.
    _h("accents", "Zürich Café Ørsted"),
    _h("bidi-override", "abc\u202etxt.exe"),
    _h("zero-width", "a\u200bb\ufeff"),
    _h("emoji", "🔥💣"),
    _h("fullwidth-semicolon", "x；touch {canary}"),
    *(_h(f"length-{n}", "a" * n) for n in _LENGTHS),
)

BY_ID = {value.id: value for value in VALUES}
assert len(BY_ID) == len(VALUES), "corpus ids must be unique"


def could_run(value: Hostile) -> bool:
    """Does the value name the canary: would it create it if run by a shell?"""
    return CANARY in value.text


def plain(text: str) -> bool:
    """Letters, digits, '.', '_' and '-' only: nothing a shell, a parser or a terminal
    reads as anything but itself (the values the schema lets into names and hosts)."""
    return bool(text) and all(c.isascii() and (c.isalnum() or c in "._-") for c in text)


def in_one_name(value: Hostile, canary: Path, suffix: str = ".pem") -> str | None:
    """``value`` as one file name (what a host can list): ``/`` cannot be in a name, so the
    canary's path is spelled by printf (``\\057``) when a shell runs the name, and any other
    ``/`` becomes ``_``. None when no file can have the name (NUL, empty, too long)."""
    spelled = "".join(f"\\{ord(c):03o}" if c == "/" else c for c in str(canary))
    text = value.text.replace(CANARY, f"\"$(printf '{spelled}')\"").replace("/", "_")
    name = text + suffix
    if "\x00" in name or not text or len(name.encode()) > 255:
        return None
    return name
