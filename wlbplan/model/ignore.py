"""An accepted finding: ``--ignore RULE[:TARGET][@YYYY-MM-DD]`` or an ``audit.ignore`` entry
of the spec, as one value. Which findings it silences is the core's business
(``wlbplan.core.ignores``); this module only holds and reads the value."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# Rule ids are upper-case words joined by '-', target names never hold ':' or '@' (the
# spec's name pattern), so the three parts of the option cannot be confused.
_OPTION = re.compile(r"^(?P<rule>[^:@]+)(?::(?P<target>[^:@]+))?(?:@(?P<until>[^:@]+))?$")


@dataclass(frozen=True)
class Ignore:
    rule: str
    target: str | None = None
    """Only this target's findings; None: every target's."""
    until: dt.date | None = None
    """The last day the acceptance holds (UTC); the finding counts again the day after."""
    reason: str = ""
    line: int | None = None
    """The entry's line in the spec; None when it was given on the command line."""

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and today > self.until

    @property
    def text(self) -> str:
        """The entry in the option's own form, ``RULE[:TARGET][@YYYY-MM-DD]``."""
        out = self.rule
        if self.target is not None:
            out += f":{self.target}"
        if self.until is not None:
            out += f"@{self.until.isoformat()}"
        return out

    @property
    def origin(self) -> str:
        """Where it was given, for people: ``--ignore`` or ``audit.ignore, line N``."""
        if self.line is None:
            return "--ignore"
        return f"audit.ignore, line {self.line}"


def parse_date(text: str) -> dt.date:
    """A calendar date written ``YYYY-MM-DD`` (ValueError otherwise, saying why)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a day of the calendar") from None


def parse_option(text: str) -> Ignore:
    """``RULE[:TARGET][@YYYY-MM-DD]`` → Ignore; ValueError with the reason otherwise.
    The rule id and the target are checked against the catalogue and the spec elsewhere."""
    found = _OPTION.match(text)
    if found is None:
        raise ValueError(f"{text!r}: expected RULE[:TARGET][@YYYY-MM-DD]")
    until = found["until"]
    return Ignore(rule=found["rule"].strip(), target=found["target"],
                  until=None if until is None else parse_date(until))
