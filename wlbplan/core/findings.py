"""What an audit finds, as values: a finding with its stable rule id, a target's findings,
and the whole audit with its verdict against ``--fail-on``. Renderers read these."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from wlbplan import __version__
from wlbplan.core.rules import LEVELS, Level, at_least

FORMAT_VERSION = "1.0"
FailOn = Level | None  # None: never fail


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
    tool_version: str = __version__
    format_version: str = FORMAT_VERSION

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for t in self.targets for f in t.findings)

    def counts(self) -> dict[Level, int]:
        levels = [f.level for f in self.findings]
        return {level: levels.count(level) for level in reversed(LEVELS)}

    def fails(self, fail_on: FailOn) -> bool:
        """Any finding at or above ``fail_on`` (never when None)."""
        return fail_on is not None and any(at_least(f.level, fail_on) for f in self.findings)

    @property
    def unreachable(self) -> tuple[TargetAudit, ...]:
        return tuple(t for t in self.targets if t.error is not None)
