"""What an audit finds, as values: a finding with its stable rule id (and, when an
ignore matched it, that acceptance), a target's findings, and the whole audit with its
verdict against ``--fail-on``. Renderers read these."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from wlbplan import __version__
from wlbplan.core.rules import LEVELS, Level, at_least
from wlbplan.model.ignore import Ignore

FORMAT_VERSION = "1.1"
FailOn = Level | None  # None: never fail


@dataclass(frozen=True)
class Acceptance:
    """The ignore that matched a finding: in force (the finding is suppressed: shown as
    accepted, never counted, never failing), or expired (it counts again)."""

    ignore: Ignore
    expired: bool = False

    @property
    def reason(self) -> str:
        return self.ignore.reason

    @property
    def until(self) -> dt.date | None:
        return self.ignore.until

    @property
    def expired_on(self) -> dt.date | None:
        """The first day the finding counted again: the day after ``until``."""
        if not self.expired or self.ignore.until is None:
            return None
        return self.ignore.until + dt.timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    level: Level
    target: str
    message: str
    hint: str = ""
    about: str = ""
    """What the finding concerns: ``pool``, ``appliance`` or a certificate's subject."""
    spec_path: str = ""
    """The spec address it points at, e.g. ``targets[0].verify``."""
    line: int | None = None
    acceptance: Acceptance | None = None

    @property
    def suppressed(self) -> bool:
        """Accepted by an ignore still in force: reported, not counted."""
        return self.acceptance is not None and not self.acceptance.expired

    @property
    def fingerprint(self) -> str:
        """Stable across runs (no dates or day counts), so CI can de-duplicate. ``about``
        is part of it: a finding on a certificate with another subject is a new one."""
        text = "\0".join((self.rule_id, self.target, self.about))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TargetAudit:
    target: str
    findings: tuple[Finding, ...] = ()
    line: int | None = None
    error: str | None = None
    """Set when the target could not be inspected (its only finding says so)."""


@dataclass(frozen=True)
class Audit:
    spec_path: str
    created: str
    targets: tuple[TargetAudit, ...]
    general: tuple[Finding, ...] = ()
    """Findings on no one target: on the audit's own settings (an ignore that matched
    nothing)."""
    tool_version: str = __version__
    format_version: str = FORMAT_VERSION

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding, accepted ones included."""
        return (*(f for t in self.targets for f in t.findings), *self.general)

    @property
    def counted(self) -> tuple[Finding, ...]:
        """The findings that count: all but the suppressed."""
        return tuple(f for f in self.findings if not f.suppressed)

    @property
    def suppressed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed)

    def counts(self) -> dict[Level, int]:
        levels = [f.level for f in self.counted]
        return {level: levels.count(level) for level in reversed(LEVELS)}

    def fails(self, fail_on: FailOn) -> bool:
        """Any counted finding at or above ``fail_on`` (never when None)."""
        return fail_on is not None and any(at_least(f.level, fail_on) for f in self.counted)

    @property
    def unreachable(self) -> tuple[TargetAudit, ...]:
        return tuple(t for t in self.targets if t.error is not None)

    @property
    def failed_targets(self) -> tuple[TargetAudit, ...]:
        """The unreachable targets that make the run fail: all but those whose being
        unreachable is accepted (a pool down for maintenance, until a date)."""
        return tuple(t for t in self.unreachable
                     if not all(f.suppressed for f in t.findings))
