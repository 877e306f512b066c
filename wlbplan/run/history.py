"""The state folder's finished applies of a target (``history/``), read for the audit: the
newest one that made an ACME order, and how it ended. Every file is untrusted: read
within the journal's size cap, through the journal's own parser; one it cannot read is
passed over, never guessed at."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from wlbplan.limits import JOURNAL as JOURNAL_CAP
from wlbplan.limits import TooLarge, read_file
from wlbplan.model.history import LastOrder
from wlbplan.model.text import visible
from wlbplan.run.journal import Journal, JournalError, trusted

LOOK_BACK = 30
"""How many of the newest finished applies are read for the last order: a nightly apply
that finds nothing to do journals nothing, so the last order is among the newest."""
REASON_CHARS = 600


def last_order(state_dir: Path, target: str) -> LastOrder | None:
    """How the newest apply with an ACME order ended; None when there was none (or its
    journal cannot be trusted)."""
    journal = Journal(state_dir, target)
    folder = journal.folder / "history"
    try:
        for path in (state_dir, journal.folder, folder):
            trusted(path)
        names = sorted((p for p in folder.glob("*.jsonl") if p.is_file()), reverse=True)
    except (JournalError, OSError):
        return None
    for path in names[:LOOK_BACK]:
        found = _order_in(journal, path)
        if found is not None:
            return found
    return None


def _order_in(journal: Journal, path: Path) -> LastOrder | None:
    try:
        trusted(path)
        replay = journal.parse(read_file(path, JOURNAL_CAP, follow=False))
    except (JournalError, TooLarge, OSError):
        return None
    plan = replay.header.get("plan")
    if not isinstance(plan, dict) or plan.get("stage") != "order" or replay.ended is None:
        return None
    try:
        ended = dt.datetime.strptime(str(replay.ended_at), "%Y-%m-%dT%H:%M:%S.%fZ") \
            .replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    reason = visible(replay.reason[:REASON_CHARS]) if isinstance(replay.reason, str) else None
    return LastOrder(ended, str(replay.ended), reason)
