"""The lab pool's state file as the lab tests compare it: the apply lock's key of
other_config left out. A snapshot taken while a run holds the lock (or before an
incomplete rollback that keeps it) is compared with the pool after; the lock itself is
checked on its own (applylab.held_locks)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

LOCK_KEY = "wlbplan-apply-lock"  # run/lock_xenapi.KEY, spelled out: the lab's view


def pool_state_digest(path: Path) -> str:
    """The pool state's sha256 (as sorted JSON), the lock key left out."""
    state = json.loads(path.read_bytes())
    state.get("pool", {}).get("other-config", {}).pop(LOCK_KEY, None)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
