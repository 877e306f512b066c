"""The apply lock's record, as written on the coordinator and read back by apply and audit
(alone, or in an inspection's one script), and where it lives."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from wlbplan.model.spec import Target
from wlbplan.model.text import visible

LOCK_FILE = "apply.lock"
LOCK_KEY = "wlbplan-apply-lock"
"""The key of the pool's other_config that holds the lock: over XenAPI alone, and over SSH
beside the file (run/lock.py says why)."""
UNREADABLE = "unreadable"
"""The id of a lock file that holds no record wlbplan writes; ``force-unlock`` takes it."""
# What an id may be: wlbplan writes a UUID; it is pasted into a force-unlock command.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", re.ASCII)
_MAX_PID = 2**31 - 1  # pid_t


@dataclass(frozen=True)
class LockInfo:
    id: str
    owner: str
    pid: int
    created: str
    target: str

    @property
    def unreadable(self) -> bool:
        return self.id == UNREADABLE

    def describe(self) -> str:
        """One line, though the record is the coordinator's file: whoever can write it
        chooses these fields."""
        if self.unreadable:
            return ("a lock file wlbplan cannot read (cut short, damaged or not written by "
                    "wlbplan), so whose it is is unknown")
        return visible(f"lock {self.id} held by {self.owner} (pid {self.pid}) "
                       f"since {self.created}")


def lock_path(target: Target) -> str:
    """Where the pool's apply lock lives on its coordinator."""
    return f"{str(target.pool.state_dir).rstrip('/')}/{LOCK_FILE}"


def unreadable_lock(target: str) -> LockInfo:
    return LockInfo(id=UNREADABLE, owner="unknown", pid=0, created="unknown", target=target)


def parse_lock(text: str, target: str) -> LockInfo:
    """The record in a lock file's text. Anything but the record wlbplan writes (not JSON,
    another shape, a missing or extra field, a field of the wrong type) is the unreadable
    lock: still a lock (an apply may hold it), only no one's that can be named."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return unreadable_lock(target)
    if not isinstance(record, dict) or set(record) != {"id", "owner", "pid", "created",
                                                       "target"}:
        return unreadable_lock(target)
    lock_id, pid = record["id"], record["pid"]
    texts = (record["owner"], record["created"], record["target"])
    if not (isinstance(lock_id, str) and _ID.fullmatch(lock_id) and lock_id != UNREADABLE
            and type(pid) is int and 0 < pid <= _MAX_PID
            and all(isinstance(t, str) for t in texts)):
        return unreadable_lock(target)
    return LockInfo(id=lock_id, owner=record["owner"], pid=pid, created=record["created"],
                    target=record["target"])
