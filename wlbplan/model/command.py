"""Commands as values: what the step catalogue builds and every connector runs.

A command is always a tuple of arguments; the shell form is made by quoting each part,
so nothing is ever interpolated into a shell string. Secrets are named so that the
displayed form can mask them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

MASK = "********"


@dataclass(frozen=True)
class Command:
    """One command as argv. ``secrets`` are values masked wherever the command is shown."""

    argv: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    stdin: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a command needs at least one argument")

    def shell(self) -> str:
        """The form a remote shell receives: every part quoted."""
        return shlex.join(self.argv)

    def display(self) -> str:
        """The form shown to people and written to plans, journals and logs."""
        shown = self.shell()
        for secret in self.secrets:
            if secret:
                shown = shown.replace(shlex.quote(secret), MASK).replace(secret, MASK)
        return shown


@dataclass(frozen=True)
class Raw:
    """A shell fragment written in wlbplan's own code (a variable, a glob), never input."""

    text: str


Part = str | Raw


def sh(*parts: Part) -> str:
    """Join parts into shell words: strings are quoted, ``Raw`` fragments kept as written."""
    return " ".join(p.text if isinstance(p, Raw) else shlex.quote(p) for p in parts)


def script(text: str, *args: str, secrets: tuple[str, ...] = (),
           stdin: bytes | None = None) -> Command:
    """A POSIX sh script as one command. ``text`` is fixed code (or built from quoted parts);
    values go in ``args`` and reach it as "$1", "$2"…, never spliced into the text."""
    extra = ("sh", *args) if args else ()
    return Command(("sh", "-c", text, *extra), secrets=secrets, stdin=stdin)


@dataclass(frozen=True)
class CommandResult:
    command: str
    """The displayed (masked) form of what ran."""
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
