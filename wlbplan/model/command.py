"""Commands as values: what the step catalogue builds and every connector runs.

A command is always a tuple of arguments; the shell form is made by quoting each part,
so nothing is ever interpolated into a shell string. Secrets are named so that the
displayed form can mask them, argument by argument: the shown form is the argv that runs,
each secret argument (``SECRET`` or ``name=SECRET``) masked and unprintable characters
escaped visibly.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from wlbplan.model.text import clip, shell_word

MASK = "********"


@dataclass(frozen=True)
class Command:
    """One command as argv. ``secrets`` are values masked wherever the command is shown:
    an argument equal to one, or ``name=`` followed by one, shows as ``MASK`` (never a
    substring match, which would mask every occurrence of a short secret's letters)."""

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
        """The form shown to people and written to plans, journals and logs. Masked per
        argument before joining: once quoted, a secret with a quote or a space in it no
        longer matches the value it was given as."""
        return " ".join(self._shown(part) for part in self.argv)

    def brief(self, limit: int = 160) -> str:
        """``display()`` cut to ``limit`` characters, for messages: an inspection script
        is pages long, and its head names it well enough."""
        return clip(self.display(), limit)

    def _shown(self, part: str) -> str:
        secrets = [s for s in self.secrets if s]
        if part in secrets:
            return MASK
        name, sep, value = part.partition("=")
        if sep and value in secrets:
            return shell_word(name + sep) + MASK
        return shell_word(part)


@dataclass(frozen=True)
class Raw:
    """A shell fragment written in wlbplan's own code (a variable, a glob), never input."""

    text: str


Part = str | Raw


def sh(*parts: Part) -> str:
    """Join parts into shell words: strings are quoted, ``Raw`` fragments kept as written."""
    return " ".join(p.text if isinstance(p, Raw) else shlex.quote(p) for p in parts)


def shown(*parts: Part) -> str:
    """What ``sh`` makes, as a plan shows it: the same words, unprintable characters
    escaped visibly (bash's ``$'...'``) instead of passed raw to the reader."""
    return " ".join(p.text if isinstance(p, Raw) else shell_word(p) for p in parts)


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
