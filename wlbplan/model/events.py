"""What an apply reports as it goes (events) and how each target ended (outcome)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]
Reporter = Callable[[Event], None]

# Progress over a fleet: each target's work began, or ended (ok or failed).
TARGET_START = "target_start"
TARGET_DONE = "target_done"


def target_start(target: str) -> Event:
    return {"type": TARGET_START, "target": target, "message": f"{target}: started"}


def target_done(target: str, ok: bool, seconds: float) -> Event:
    said = "done" if ok else "failed"
    return {"type": TARGET_DONE, "target": target, "ok": ok, "seconds": round(seconds, 3),
            "message": f"{target}: {said}"}


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    status: str  # applied | rolled_back | rollback_incomplete | nothing_to_do | refused
    # | unreachable (could not be inspected: nothing was tried on it)
    done: tuple[str, ...] = ()
    undone: tuple[str, ...] = ()
    undo_failures: tuple[str, ...] = ()
    error: str | None = None
    journal: str | None = None
    interrupted: bool = False
    """It ended as it did because the operator asked to stop (not for a failure)."""
    lock_id: str | None = None
    """The pool's lock this run holds still (an incomplete rollback keeps it)."""

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "nothing_to_do")
