"""How each step runs and is undone. Every remote effect goes through the target's Runners.

An action has three parts: ``undo_record(ctx, step)`` — what undoing it takes, computed
and journaled before it runs (public data only); ``run(ctx, step)``; and
``undo(ctx, record)``, which must be safe to run even if ``run`` never started or
stopped half-way. The shared parts live in ``actions.base``; the catalogue is here.
"""

from __future__ import annotations

from wlbplan.actions import acme, appliance, pool
from wlbplan.actions.base import Action, Context, StepFailed, UndoRecord

__all__ = ["Action", "Context", "StepFailed", "UndoRecord", "registry", "undo"]


def registry() -> dict[str, Action]:
    return {**pool.ACTIONS, **appliance.ACTIONS, **acme.ACTIONS}


def undo(ctx: Context, record: UndoRecord) -> None:
    """Run one journaled undo record (it names its own kind), only when it touches nothing
    but what this target's apply may have touched."""
    kind = record.get("kind")
    kind = kind if isinstance(kind, str) else ""  # a list as the kind is no kind
    handler = {**pool.UNDO, **appliance.UNDO, **acme.UNDO}.get(kind)
    confine = {**pool.CONFINE, **appliance.CONFINE, **acme.CONFINE}.get(kind)
    if handler is None or confine is None:
        raise StepFailed(f"the journal holds an undo this wlbplan does not know: {record!r}")
    problem = confine(ctx, record)
    if problem is not None:
        raise StepFailed(
            f"refused to run the journal's {kind} undo: its {problem}. An apply of "
            f"{ctx.target.name} only touches the configured certificate and key, their "
            "backups, the pending key and CSR, and CA certificates of wlbplan's own names; "
            "this journal was not written by such an apply (check who could write it)")
    handler(ctx, record)
