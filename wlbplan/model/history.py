"""What the state folder's history says about a target's past applies (read by
``run.history``, judged by the audit): facts from local files, untrusted like any other."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class LastOrder:
    """The newest apply of a target that made an ACME order (the ``order`` stage)."""

    ended: dt.datetime
    outcome: str
    """``applied``, ``rolled_back`` or ``rollback_incomplete``."""
    reason: str | None = None
    """Why it was rolled back, in the words the apply said it then (shown escaped)."""

    @property
    def failed(self) -> bool:
        return self.outcome != "applied"
