"""What an apply reports as it goes (events) and how each target ended (outcome)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]
Reporter = Callable[[Event], None]



@dataclass(frozen=True)
class TargetOutcome:
    target: str
    status: str  # applied | rolled_back | rollback_incomplete | nothing_to_do
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
