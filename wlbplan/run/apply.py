"""Apply a target's plan: lock, journal, run each step, and roll back on any failure.

Every step's undo is journaled (fsynced) before the step runs. On a failed step, an
interruption (the CLI turns SIGINT/SIGTERM into ``cancel``) or a bug, the started steps
are undone last-in-first-out, each once, continuing past an undo that fails. A run that
is killed outright leaves its journal, and ``rollback_target`` finishes the job later.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan import actions
from wlbplan.actions.base import Context
from wlbplan.actions.by_hand import by_hand
from wlbplan.core.plan import TargetPlan
from wlbplan.core.planfile import check_target, read_target_plan, step_id, target_plan_to_json
from wlbplan.errors import Interrupted, LockError, PlanFileError, StalePlanError, WlbplanError
from wlbplan.model.events import Event, Reporter, TargetOutcome
from wlbplan.model.lock import LockInfo
from wlbplan.model.spec import Spec, Target
from wlbplan.run import lock
from wlbplan.run.journal import Entry, Journal, JournalError, Replay, journal_owner_alive
from wlbplan.run.sessions import Sessions

__all__ = ["Interrupted", "Reporter", "TargetOutcome", "apply_target", "resume_target",
           "rollback_target"]


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
    journal = Journal(state_dir, target.name, target.spec_path)
    if journal.exists():
        raise JournalError(journal.leftover_message(target.name))
    _check_environment(target, plan)
    _not_stopped(target, cancel, "before it began")
    held = lock.acquire(sessions.pool, target, lock_timeout, cancel=cancel,
                        waiting=lambda holder: report(_lock_wait_event(target, holder,
                                                                       lock_timeout)))
    try:
        _still_fresh(target, plan, sessions)
        _not_stopped(target, cancel, "before its first step")
    except BaseException:
        lock.release(sessions.pool, target, held.id)
        raise
    run = Run(Context(spec, target, sessions, state_dir, report), plan, journal, report, cancel)
    try:
        journal.begin({"target": target.name, "lock_id": held.id, "spec": str(spec.path),
                       "spec_digest": spec.digest, "observed_digest": plan.observed_digest,
                       "pid": os.getpid(), "host": socket.gethostname(),
                       "owner": held.owner, "plan": target_plan_to_json(plan)})
    except BaseException:
        lock.release(sessions.pool, target, held.id)
        raise
    return _execute(run, held.id, lambda: _run_plan(run))


def _not_stopped(target: Target, cancel: threading.Event, when: str) -> None:
    if cancel.is_set():
        raise Interrupted(f"{target.name}: stopped {when}; nothing was changed")


def _lock_wait_event(target: Target, holder: LockInfo | None, timeout: float) -> Event:
    who = holder.describe() if holder is not None else "another apply"
    return _event("lock_waiting", target.name,
                  f"{target.name}: waiting up to {timeout:g}s for the pool's lock ({who})")


def _execute(run: Run, lock_id: str, work: Callable[[], None]) -> TargetOutcome:
    """Run ``work``; on any failure undo everything the journal says was started."""
    name, pool = run.ctx.target.name, run.ctx.sessions.pool
    try:
        work()
    except BaseException as exc:  # a failed step, an interruption, or a bug: undo first
        outcome = _roll_back(run, run.journal.replay().pending_undo(), exc, lock_id)
        if outcome.status == "rolled_back":
            lock.release(pool, run.ctx.target, lock_id)
        if isinstance(exc, WlbplanError | KeyboardInterrupt):
            return outcome
        raise
    archived = run.journal.end("applied")
    lock.release(pool, run.ctx.target, lock_id)
    return TargetOutcome(name, "applied", done=tuple(run.done), journal=str(archived))


def _still_fresh(target: Target, plan: TargetPlan, sessions: Sessions) -> None:
    """Under the lock, look again: another apply may have changed the pool while this one
    waited for the lock, and steps planned before that must not run."""
    from wlbplan.core.diff import drift, observed_view
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
    from wlbplan.actions import acme
    from wlbplan.actions.pool import check_environment

    for step in plan.steps:
        missing = check_environment(step) or acme.check_environment(step)
        if missing:
            raise WlbplanError(f"{target.name}: {step.action} needs these environment "
                               f"variables set before anything is changed: {missing}")


def _run_steps(run: Run, first: int = 1) -> None:
    registry = actions.registry()
    name = run.ctx.target.name
    for index, step in enumerate(run.plan.steps, start=1):
        if index < first:
            continue
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
        run.journal.done(index, run.ctx.outputs.pop(step.action, None))
        run.done.append(ident)
        run.report(_event("apply_complete", name, f"{ident}: done", step=ident,
                          seconds=round(time.monotonic() - started, 3)))
    if run.cancel.is_set():
        # A signal during the last step still means "stop and undo", as for any other.
        raise Interrupted(f"{name}: interrupted during the last step")


def _run_plan(run: Run, first: int = 1) -> None:
    """The plan's steps from ``first``; after an ACME order, the steps that install what
    it returned, planned now and journaled before they run."""
    _run_steps(run, first)
    if run.plan.stage == "order" and run.journal.replay().extension is None:
        _install_issued(run)


def _install_issued(run: Run) -> None:
    from wlbplan.actions.acme import output_chain
    from wlbplan.core.plan import plan_one
    from wlbplan.inspect.run import inspect_target

    ctx, name = run.ctx, run.ctx.target.name
    index = next(i for i, s in enumerate(run.plan.steps, 1) if s.action == "acme.order")
    chain = output_chain(run.journal.replay().outputs.get(index))
    # Looked at again: the key and CSR the order was made for are on the appliance now.
    then = plan_one(ctx.spec, ctx.target, inspect_target(ctx.target, ctx.sessions),
                    issued=chain)
    first = len(run.plan.steps) + 1
    run.journal.extend(target_plan_to_json(then))
    run.plan = joined(run.plan, then)
    run.report(_event("acme_issued", name, f"{name}: the CA issued the certificate; "
                      f"installing it in {len(then.steps)} more step(s)"))
    _run_steps(run, first)


def joined(plan: TargetPlan, then: TargetPlan) -> TargetPlan:
    """An order stage's plan followed by the install steps planned once it ran."""
    return dataclasses.replace(plan, steps=plan.steps + then.steps)


def _roll_back(run: Run, entries: list[Entry], cause: BaseException,
               lock_id: str) -> TargetOutcome:
    name = run.ctx.target.name
    reason = str(cause) or type(cause).__name__
    run.report(_event("rollback_start", name, f"{name}: rolling back {len(entries)} "
                      f"step(s) because: {reason}"))
    undone, failures = undo_entries(run.ctx, run.journal, entries, run.report)
    status = "rolled_back" if not failures else "rollback_incomplete"
    if failures:
        run.journal.incomplete(failures)
    archived = str(run.journal.end(status, reason)) if not failures \
        else str(run.journal.path)
    return TargetOutcome(name, status, done=tuple(run.done), undone=tuple(undone),
                         undo_failures=tuple(failures), error=reason, journal=archived,
                         interrupted=isinstance(cause, Interrupted | KeyboardInterrupt),
                         lock_id=lock_id if failures else None)


def undo_entries(ctx: Context, journal: Journal, entries: list[Entry], report: Reporter,
                 purpose: str = "rollback") -> tuple[list[str], list[str]]:
    """Undo ``entries`` in the order given (already last-first), each once, past failures."""
    name = ctx.target.name
    undone: list[str] = []
    failures: list[str] = []
    for entry in entries:
        label = f"{name}.{entry.index:02d}.{entry.action}"
        if entry.undo is None:
            journal.undone(entry.index, True, "nothing to undo", purpose=purpose)
            continue
        if failures and entry.undo.get("cleanup"):
            # Not undone (so a later rollback does it): the backups an unfinished restore
            # still needs must stay.
            report(_event("rollback_skipped", name, f"{label}: kept, an undo above failed"))
            continue
        try:
            actions.undo(ctx, entry.undo)
        except Exception as err:  # keep undoing the rest; this one is reported
            journal.undone(entry.index, False, str(err), purpose=purpose)
            said = f"{str(err).rstrip('.')}. By hand: {by_hand(ctx, entry.undo)}"
            failures.append(f"{label}: {said}")
            report(_event("rollback_errored", name, f"{label}: undo failed: {said}"))
            continue
        journal.undone(entry.index, True, purpose=purpose)
        undone.append(label)
        report(_event("rollback_complete", name, f"{label}: undone"))
    return undone, failures


def closable_journal(state_dir: Path, target: Target, lock_id: str) -> Journal | None:
    """The journal ``force-unlock LOCK_ID`` may close: this target's, written under that
    lock by a run that is gone, whose last rollback went through every step and left
    some undone (listed, with what to do by hand). Any other journal is left alone: a
    crashed run's still needs `wlbplan rollback`."""
    journal = Journal(state_dir, target.name, target.spec_path)
    if not journal.exists():
        return None
    replay = journal.replay()
    if replay.header.get("lock_id") != lock_id or not replay.incomplete:
        return None
    _refuse_live_owner(target, journal, replay.header, "it rolls back by itself")
    return journal


def _refuse_live_owner(target: Target, journal: Journal, header: dict[str, Any],
                       then: str) -> None:
    """Rollback and resume are for a dead run's journal, never a running one's."""
    if journal_owner_alive(header):
        raise JournalError(
            f"{target.name}: the apply that wrote {journal.path} is still running (lock "
            f"{header.get('lock_id')} held by {header.get('owner')}, pid {header.get('pid')}); "
            + then)


def rollback_target(spec: Spec, target: Target, sessions: Sessions, state_dir: Path,
                    report: Reporter) -> TargetOutcome:
    """Finish an apply that died: undo what its journal says was started."""
    journal = Journal(state_dir, target.name, target.spec_path)
    if not journal.exists():
        return TargetOutcome(target.name, "nothing_to_do")
    replay = journal.replay()
    _refuse_live_owner(target, journal, replay.header, "it rolls back by itself if it fails")
    lock_id = replay.header.get("lock_id")
    holder = lock.read_lock(sessions.pool, target)
    if holder is not None and holder.id != lock_id:
        raise LockError(lock.held_message(
            target, holder, sessions.pool,
            "nothing was undone; wait for it to finish before rolling back"))
    ctx = Context(spec, target, sessions, state_dir, report)
    entries = replay.pending_undo()
    report(_event("rollback_start", target.name,
                  f"{target.name}: undoing {len(entries)} step(s) from {journal.path}"))
    undone, failures = undo_entries(ctx, journal, entries, report)
    if failures:
        journal.incomplete(failures)
        return TargetOutcome(target.name, "rollback_incomplete", undone=tuple(undone),
                             undo_failures=tuple(failures), journal=str(journal.path),
                             lock_id=lock_id if isinstance(lock_id, str) else None)
    archived = journal.end("rolled_back")
    if lock_id:
        lock.release(sessions.pool, target, lock_id)
    return TargetOutcome(target.name, "rolled_back", undone=tuple(undone),
                         journal=str(archived))


# ---- resume ---------------------------------------------------------------------------


def resume_target(spec: Spec, target: Target, sessions: Sessions, state_dir: Path,
                  report: Reporter, cancel: threading.Event) -> TargetOutcome:
    """Finish an apply that died, from its journal: undo the step it died in (it may have
    half-happened), then run that step and the rest of the plan it was running. Any
    failure rolls back everything, the dead run's steps included."""
    journal = Journal(state_dir, target.name, target.spec_path)
    if not journal.exists():
        report(_event("resume_start", target.name,
                      f"{target.name}: no interrupted apply to resume ({journal.path})"))
        return TargetOutcome(target.name, "nothing_to_do")
    replay = journal.replay()
    plan = _resumable(spec, target, journal, replay)
    if replay.extension is not None:
        plan = joined(plan, _recorded(spec, target, journal, replay.extension))
    _not_stopped(target, cancel, "before resuming")
    held = _adopt_lock(sessions, target, replay.header.get("lock_id"))
    journal.resume({"lock_id": held.id, "pid": os.getpid(), "host": socket.gethostname(),
                    "owner": held.owner})
    first = next((i for i in range(1, len(plan.steps) + 1) if i not in replay.done),
                 len(plan.steps) + 1)
    run = Run(Context(spec, target, sessions, state_dir, report), plan, journal, report, cancel,
              done=[step_id(target.name, i, s) for i, s in enumerate(plan.steps, 1)
                    if i < first])
    report(_event("resume_start", target.name,
                  f"{target.name}: resuming at step {first} of {len(plan.steps)} "
                  f"({first - 1} done by the apply started {replay.header.get('time', '?')})"))

    def work() -> None:
        _undo_unfinished(run, journal.replay().unfinished())
        _run_plan(run, first)

    return _execute(run, held.id, work)


def _resumable(spec: Spec, target: Target, journal: Journal, replay: Replay) -> TargetPlan:
    header = replay.header
    rollback = f"`{target.command('rollback')}`"
    _refuse_live_owner(target, journal, header, "nothing to resume")
    if replay.undo_attempted:
        raise JournalError(
            f"{target.name}: a rollback of this apply has begun ({journal.path}); it can only "
            f"be finished: run {rollback}")
    if header.get("spec_digest") != spec.digest:
        raise JournalError(
            f"{target.name}: the spec changed since the interrupted apply began; its plan "
            f"no longer matches the spec, so it is not resumed: run {rollback}, then plan "
            "again")
    if "plan" not in header:
        raise JournalError(
            f"{target.name}: {journal.path} does not record its plan (written by an older "
            f"wlbplan); run {rollback}")
    # The plan it records runs only as wlbplan renders it, like a saved plan.
    where = f"{target.name}: the plan recorded in {journal.path}"
    try:
        plan = read_target_plan(header["plan"], where)
        check_target(spec, plan, where)
    except PlanFileError as err:
        raise JournalError(f"{err}; it is not resumed: run {rollback}") from None
    return plan


def _recorded(spec: Spec, target: Target, journal: Journal,
              data: dict[str, Any]) -> TargetPlan:
    """The install steps an ACME order's apply recorded, run only as wlbplan renders them."""
    where = f"{target.name}: the steps recorded after the ACME order in {journal.path}"
    try:
        then = read_target_plan(data, where)
        check_target(spec, then, where)
    except PlanFileError as err:
        raise JournalError(f"{err}; it is not resumed: run "
                           f"`{target.command('rollback')}`") from None
    return then


def _adopt_lock(sessions: Sessions, target: Target, lock_id: object) -> LockInfo:
    """The dead run's lock is taken over; a pool locked by anyone else is refused."""
    holder = lock.read_lock(sessions.pool, target)
    if holder is None:
        return lock.acquire(sessions.pool, target)
    if holder.id != lock_id:
        raise LockError(lock.held_message(
            target, holder, sessions.pool,
            f"nothing was resumed (the interrupted apply's lock was {lock_id})"))
    return holder


def _undo_unfinished(run: Run, entries: list[Entry]) -> None:
    """The step the dead run was in may have half-happened: undo it, so that running it
    again starts from the state after the last completed step."""
    if not entries:
        return
    _, failures = undo_entries(run.ctx, run.journal, entries, run.report, purpose="resume")
    if failures:
        raise WlbplanError(f"{run.ctx.target.name}: could not undo the interrupted step "
                           f"before resuming: {'; '.join(failures)}")
