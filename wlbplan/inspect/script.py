"""One shell script per host that gathers every fact, and the pure parser of its output.

A fact is a name plus a command built from quoted parts. Each fact's combined output and
exit status come back base64-encoded on one ``@wlbplan NAME DATA`` line, so no content
(a certificate, an error text, a login banner) can be mistaken for structure.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from wlbplan.model.command import Part, Raw, sh

MARK = "@wlbplan"

# _f NAME CMD...: run CMD with stdin closed, keep its output in $_o, report it and $?.
# Each line ends with " ." so that a line cut short (a dropped connection) is never taken
# for a complete one.
# _glob PATTERN...: print the paths that exist (a pattern that matches nothing prints nothing).
PREAMBLE = (
    "_f() { _n=$1; shift; _o=$(\"$@\" 2>&1 </dev/null); _rc=$?; "
    "printf '" + MARK + " %s %s .\\n' \"$_n\" "
    "\"$(printf '%s\\n%s' \"$_o\" \"$_rc\" | base64 | tr -d '\\n')\"; }\n"
    "_glob() { for _g in \"$@\"; do [ -e \"$_g\" ] && printf '%s\\n' \"$_g\"; done; return 0; }\n"
)


def fact(name: Part, *parts: Part) -> str:
    """The script line that gathers one fact (a ``Raw`` name is built in the script)."""
    if isinstance(name, str) and not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        raise ValueError(f"fact names are plain words: {name!r}")
    return sh(Raw("_f"), name, *parts)


@dataclass(frozen=True)
class RawFact:
    output: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def problem(self) -> str:
        """The command's own words when it failed, for messages."""
        text = self.output.strip() or "no output"
        return f"{text} (exit {self.exit_code})"


_NAME = re.compile(r"[A-Za-z0-9_.:-]+", re.ASCII)
# What $? can print: 0..255, no leading zeros.
_STATUS = re.compile(r"0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]", re.ASCII)


def build(lines: list[str]) -> str:
    return PREAMBLE + "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, RawFact]:
    """Every ``@wlbplan`` line of a script's output; anything else is ignored."""
    facts: dict[str, RawFact] = {}
    for line in text.splitlines():
        parsed = _parse_line(line)
        if parsed is not None:
            facts[parsed[0]] = parsed[1]
    return facts


def _parse_line(line: str) -> tuple[str, RawFact] | None:
    pieces = line.rstrip("\r\n").split(" ")
    if len(pieces) != 4 or pieces[0] != MARK or pieces[3] != "." or not _NAME.fullmatch(pieces[1]):
        return None
    try:
        payload = base64.b64decode(pieces[2], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    output, newline, status = payload.rpartition("\n")
    if not newline or not _STATUS.fullmatch(status):
        return None
    return pieces[1], RawFact(output=output, exit_code=int(status))
