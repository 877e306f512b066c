"""Apply a target's plan: lock, journal, run each step, and roll back on any failure.

Every step's undo is journaled (fsynced) before the step runs. On a failed step, an
interruption (the CLI turns SIGINT/SIGTERM into ``cancel``) or a bug, the started steps
are undone last-in-first-out, each once, continuing past an undo that fails. A run that
is killed outright leaves its journal, and ``rollback_target`` finishes the job later.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan import actions, lock
from wlbplan.actions import Context
from wlbplan.errors import LockError, StalePlanError, WlbplanError
from wlbplan.journal import Entry, Journal, JournalError
from wlbplan.model import Spec, Target
from wlbplan.pids import alive
from wlbplan.plan import TargetPlan
from wlbplan.planfile import step_id
from wlbplan.sessions import Sessions

Event = dict[str, Any]
Reporter = Callable[[Event], None]


class Interrupted(WlbplanError):
    """The operator asked to stop (SIGINT/SIGTERM); what was done has been undone."""

    exit_code = 130


@dataclass(frozen=True)
class TargetOutcome:
    target: str
    status: str  # applied | rolled_back | rollback_incomplete | nothing_to_do
    done: tuple[str, ...] = ()
    undone: tuple[str, ...] = ()
    undo_failures: tuple[str, ...] = ()
    error: str | None = None
    journal: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "nothing_to_do")


@dataclass
class Run:
    """One target's apply in progress (mutable, private to this module)."""

    ctx: Context
    plan: TargetPlan
    journal: Journal
    report: Reporter
    cancel: threading.Event
    done: list[str] = field(default_factory=list)


def _event(kind: str, target: str, message: str, **extra: Any) -> Event:
    return {"type": kind, "target": target, "message": message, **extra}


def apply_target(spec: Spec, target: Target, plan: TargetPlan, sessions: Sessions,
                 state_dir: Path, report: Reporter, cancel: threading.Event,
                 lock_timeout: float = 0.0) -> TargetOutcome:
    if not plan.steps:
        return TargetOutcome(target.name, "nothing_to_do")
    journal = Journal(state_dir, target.name)
    if journal.exists():
        raise JournalError(journal.leftover_message(target.name))
    _check_environment(target, plan)
    held = lock.acquire(sessions.pool, target, lock_timeout)
    try:
        _still_fresh(target, plan, sessions)
    except BaseException:
        lock.release(sessions.pool, target, held.id)
        raise
    run = Run(Context(spec, target, sessions), plan, journal, report, cancel)
    try:
        journal.begin({"target": target.name, "lock_id": held.id, "spec": str(spec.path),
                       "spec_digest": spec.digest, "observed_digest": plan.observed_digest,
                       "pid": os.getpid(), "host": socket.gethostname(),
                       "owner": held.owner})
    except BaseException:
        lock.release(sessions.pool, target, held.id)
        raise
    try:
        _run_steps(run)
    except BaseException as exc:  # a failed step, an interruption, or a bug: undo first
        outcome = _roll_back(run, journal.replay().pending_undo(), exc)
        if outcome.status == "rolled_back":
            lock.release(sessions.pool, target, held.id)
        if isinstance(exc, WlbplanError | KeyboardInterrupt):
            return outcome
        raise
    archived = journal.end("applied")
    lock.release(sessions.pool, target, held.id)
    return TargetOutcome(target.name, "applied", done=tuple(run.done), journal=str(archived))


def _still_fresh(target: Target, plan: TargetPlan, sessions: Sessions) -> None:
    """Under the lock, look again: another apply may have changed the pool while this one
    waited for the lock, and steps planned before that must not run."""
    from wlbplan.diff import drift, observed_view
    from wlbplan.inspect.run import inspect_target

    seen = inspect_target(target, sessions)
    if seen.digest() == plan.observed_digest:
        return
    moved = drift(plan.observed, observed_view(seen)) or ["(details unavailable)"]
    raise StalePlanError(
        f"{target.name}: the plan is stale: the pool or the appliance changed since it was made "
        "(another apply while this one waited for the lock?): " + "; ".join(moved)
        + ". Nothing was changed; plan again."
    )


def _check_environment(target: Target, plan: TargetPlan) -> None:
    from wlbplan.actions.pool import check_environment

    for step in plan.steps:
        missing = check_environment(step)
        if missing:
            raise WlbplanError(f"{target.name}: {step.action} needs these environment "
                               f"variables set before anything is changed: {missing}")


def _run_steps(run: Run) -> None:
    registry = actions.registry()
    name = run.ctx.target.name
    for index, step in enumerate(run.plan.steps, start=1):
        if run.cancel.is_set():
            raise Interrupted(f"{name}: interrupted before step {index}")
        ident = step_id(name, index, step)
        action = registry.get(step.action)
        if action is None:
            raise WlbplanError(f"{ident}: this wlbplan cannot run {step.action!r} steps")
        run.report(_event("apply_start", name, f"{ident}: {step.summary}", step=ident))
        started = time.monotonic()
        # The undo is worked out as late as possible (it looks at what is there) and
        # journaled before anything is changed.
        run.journal.step(index, step.action, action.undo_record(run.ctx, step))
        try:
            action.run(run.ctx, step)
        except WlbplanError as err:
            run.report(_event("apply_errored", name, f"{ident}: {err}", step=ident,
                              seconds=round(time.monotonic() - started, 3)))
            raise
        run.journal.done(index)
        run.done.append(ident)
        run.report(_event("apply_complete", name, f"{ident}: done", step=ident,
                          seconds=round(time.monotonic() - started, 3)))
    if run.cancel.is_set():
        # A signal during the last step still means "stop and undo", as for any other.
        raise Interrupted(f"{name}: interrupted during the last step")


def _roll_back(run: Run, entries: list[Entry], cause: BaseException) -> TargetOutcome:
    name = run.ctx.target.name
    reason = str(cause) or type(cause).__name__
    run.report(_event("rollback_start", name, f"{name}: rolling back {len(entries)} "
                      f"step(s) because: {reason}"))
    undone, failures = undo_entries(run.ctx, run.journal, entries, run.report)
    status = "rolled_back" if not failures else "rollback_incomplete"
    archived = str(run.journal.end(status)) if not failures else str(run.journal.path)
    return TargetOutcome(name, status, done=tuple(run.done), undone=tuple(undone),
                         undo_failures=tuple(failures), error=reason, journal=archived)


def undo_entries(ctx: Context, journal: Journal, entries: list[Entry],
                 report: Reporter) -> tuple[list[str], list[str]]:
    """Undo ``entries`` in the order given (already last-first), each once, past failures."""
    name = ctx.target.name
    undone: list[str] = []
    failures: list[str] = []
    for entry in entries:
        label = f"{name}.{entry.index:02d}.{entry.action}"
        if entry.undo is None:
            journal.undone(entry.index, True, "nothing to undo")
            continue
        if failures and entry.undo.get("cleanup"):
            # Not undone (so a later rollback does it): the backups an unfinished restore
            # still needs must stay.
            report(_event("rollback_skipped", name, f"{label}: kept, an undo above failed"))
            continue
        try:
            actions.undo(ctx, entry.undo)
        except Exception as err:  # keep undoing the rest; this one is reported
            journal.undone(entry.index, False, str(err))
            failures.append(f"{label}: {err}")
            report(_event("rollback_errored", name, f"{label}: undo failed: {err}"))
            continue
        journal.undone(entry.index, True)
        undone.append(label)
        report(_event("rollback_complete", name, f"{label}: undone"))
    return undone, failures


def journal_owner_alive(header: dict[str, Any]) -> bool:
    """Is the process that began this journal still running here?"""
    pid = header.get("pid")
    if not isinstance(pid, int) or header.get("host") != socket.gethostname():
        return False
    return pid != os.getpid() and alive(pid)


def rollback_target(spec: Spec, target: Target, sessions: Sessions, state_dir: Path,
                    report: Reporter) -> TargetOutcome:
    """Finish an apply that died: undo what its journal says was started."""
    journal = Journal(state_dir, target.name)
    if not journal.exists():
        return TargetOutcome(target.name, "nothing_to_do")
    replay = journal.replay()
    if journal_owner_alive(replay.header):
        raise JournalError(
            f"{target.name}: the apply that wrote {journal.path} is still running "
            f"(lock {replay.header.get('lock_id')} held by {replay.header.get('owner')}, pid "
            f"{replay.header.get('pid')}); it rolls back by itself if it fails"
        )
    lock_id = replay.header.get("lock_id")
    holder = lock.read_lock(sessions.pool, target)
    if holder is not None and holder.id != lock_id:
        raise LockError(
            f"{target.name}: the pool is locked by another apply ({holder.describe()}); "
            "wait for it to finish before rolling back"
        )
    ctx = Context(spec, target, sessions)
    entries = replay.pending_undo()
    report(_event("rollback_start", target.name,
                  f"{target.name}: undoing {len(entries)} step(s) from {journal.path}"))
    undone, failures = undo_entries(ctx, journal, entries, report)
    if failures:
        return TargetOutcome(target.name, "rollback_incomplete", undone=tuple(undone),
                             undo_failures=tuple(failures), journal=str(journal.path))
    archived = journal.end("rolled_back")
    if lock_id:
        lock.release(sessions.pool, target, lock_id)
    return TargetOutcome(target.name, "rolled_back", undone=tuple(undone),
                         journal=str(archived))
