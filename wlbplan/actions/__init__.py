"""How each step runs and is undone. Every remote effect goes through the target's Runners.

An action has three parts: ``undo_record(ctx, step)`` — what undoing it takes, computed
and journaled before it runs (public data only); ``run(ctx, step)``; and
``undo(ctx, record)``, which must be safe to run even if ``run`` never started or
stopped half-way. The shared parts live in ``actions.base``; the catalogue is here.
"""

from __future__ import annotations

from wlbplan.actions import appliance, pool
from wlbplan.actions.base import Action, Context, StepFailed, UndoRecord

__all__ = ["Action", "Context", "StepFailed", "UndoRecord", "registry", "undo"]


def registry() -> dict[str, Action]:
    return {**pool.ACTIONS, **appliance.ACTIONS}


def undo(ctx: Context, record: UndoRecord) -> None:
    """Run one journaled undo record (it names its own kind)."""
    handlers = {**pool.UNDO, **appliance.UNDO}
    handler = handlers.get(record.get("kind", ""))
    if handler is None:
        raise StepFailed(f"the journal holds an undo this wlbplan does not know: {record!r}")
    handler(ctx, record)
