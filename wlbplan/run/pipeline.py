"""The read-only pipeline over a spec's targets: inspect, then plan. Library, not CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

from wlbplan.core.audit import audit_target, blockers, make_audit, unreachable
from wlbplan.core.diff import drift, observed_view
from wlbplan.core.findings import Audit, TargetAudit
from wlbplan.core.plan import (
    Plan,
    TargetPlan,
    make_plan,
    now_utc,
    parse_time,
    plan_or_refusal,
)
from wlbplan.core.plan import next_step as plan_next_step
from wlbplan.core.planfile import check_saved, read_plan
from wlbplan.errors import Interrupted, SpecError, StalePlanError, WlbplanError
from wlbplan.inspect.run import inspect_hosts, inspect_target
from wlbplan.model.events import Reporter, TargetOutcome, target_done, target_start
from wlbplan.model.observed import Observed
from wlbplan.model.shard import Shard
from wlbplan.model.spec import Spec, Target
from wlbplan.model.text import visible
from wlbplan.run.apply import apply_target, resume_target, rollback_target
from wlbplan.run.history import last_order
from wlbplan.run.journal import Journal, JournalError
from wlbplan.run.lock import owner_alive
from wlbplan.run.sessions import Fleet, Sessions, open_sessions

DEFAULT_PARALLELISM = 16
R = TypeVar("R")


def select(spec: Spec, names: Sequence[str], shard: Shard | None = None) -> list[Target]:
    """The targets named with ``--target`` (all when none), in spec order; with
    ``--shard``, only those of that shard."""
    known = [t.name for t in spec.targets]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; targets: {', '.join(known)}"
            raise SpecError(f"{spec.path}: no target named {name!r}{hint}")
    return [t for t in spec.targets
            if (not names or t.name in names) and (shard is None or shard.holds(t.name))]


def _sessions(spec: Spec, target: Target,
              fleet: Fleet | None) -> AbstractContextManager[Sessions]:
    """The target's runners: the fleet's (kept open for what follows), or its own."""
    return fleet.borrowed(target) if fleet is not None else open_sessions(spec, target)


def _each(targets: Sequence[Target], parallelism: int, one: Callable[[Target], R],
          ok: Callable[[R], bool], progress: Reporter | None) -> list[R]:
    """``one`` on every target, ``parallelism`` at a time, in the targets' order; each
    start and end told to ``progress`` (a renderer's; the work never waits on it)."""

    def tracked(target: Target) -> R:
        if progress is not None:
            progress(target_start(target.name))
        started = time.monotonic()
        fine = False
        try:
            result = one(target)
            fine = ok(result)
            return result
        finally:
            if progress is not None:
                progress(target_done(target.name, fine, time.monotonic() - started))

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as workers:
        return list(workers.map(tracked, targets))


class TargetsFailed(WlbplanError):
    """Some targets could not be inspected; each one's error is listed."""


def inspect_each(spec: Spec, targets: Sequence[Target],
                 parallelism: int = DEFAULT_PARALLELISM, *, fleet: Fleet | None = None,
                 progress: Reporter | None = None) -> list[Observed | WlbplanError]:
    """Every target, ``parallelism`` at a time: what was observed, or why it could not be.
    With ``fleet``, the connections stay open for what the caller does next."""

    def one(target: Target) -> Observed | WlbplanError:
        try:
            with _sessions(spec, target, fleet) as sessions:
                return inspect_target(target, sessions)
        except WlbplanError as err:
            return err

    return _each(targets, parallelism, one, lambda r: isinstance(r, Observed), progress)


def inspect_all(spec: Spec, targets: Sequence[Target],
                parallelism: int = DEFAULT_PARALLELISM, *,
                fleet: Fleet | None = None) -> list[Observed]:
    """Every target, or TargetsFailed naming every one that could not be inspected."""
    results = inspect_each(spec, targets, parallelism, fleet=fleet)
    problems = [f"{t.name}: {r}" for t, r in zip(targets, results, strict=True)
                if isinstance(r, WlbplanError)]
    if problems:
        raise TargetsFailed("\n".join(problems))
    return [r for r in results if isinstance(r, Observed)]


def _audit_one(spec: Spec, target: Target, state_dir: Path) -> TargetAudit:
    try:
        with open_sessions(spec, target) as sessions:
            # One round trip per host; the lock, stunnel.conf, the coordinator's lookup
            # of WLB's name and the appliance's leftovers read apart from the facts: a
            # plan is not made against them.
            seen = inspect_hosts(target, sessions)
    except WlbplanError as err:
        return unreachable(spec, target, str(err))
    held = seen.lock
    ordered = last_order(state_dir, target.name) if target.certificate.acme else None
    return audit_target(spec, target, seen.observed, lock=held, conf=seen.conf,
                        lock_owner_alive=owner_alive(held) if held else None,
                        last_order=ordered, lookup=seen.lookup, checks=seen.checks)


def audit_all(spec: Spec, targets: Sequence[Target], parallelism: int = DEFAULT_PARALLELISM,
              *, progress: Reporter | None = None, state_dir: Path | None = None) -> Audit:
    """Findings on every target; one that cannot be inspected is a finding, not an abort
    (a nightly audit of a fleet reports on the rest). Judging runs in the same worker as
    inspecting: its ``openssl verify`` calls overlap with other targets' round trips.
    ``state_dir``: whose history tells how the last ACME order ended (default: the
    spec's)."""
    folder = state_dir or default_state_dir(spec)
    audited = _each(targets, parallelism, lambda t: _audit_one(spec, t, folder),
                    lambda a: a.error is None, progress)
    return make_audit(spec, audited)


def plan_all(spec: Spec, targets: Sequence[Target],
             observed: Sequence[Observed | WlbplanError], *, replace: bool = False) -> Plan:
    """apply's plan: each inspected target's steps, or the gate's refusal (that target
    is not applied, the spec must change; the others go on), a target that could not be
    inspected marked unreachable."""
    created = now_utc()
    stamp = parse_time(created)  # one clock for the plan and its steps
    return make_plan(spec, [
        plan_or_refusal(spec, t, o, replace=replace, stamp=stamp) if isinstance(o, Observed)
        else TargetPlan.failed(t.name, "unreachable", str(o))
        for t, o in zip(targets, observed, strict=True)], created)


def next_step(spec: Spec, target: Target) -> str | None:
    """After a request stage: what the operator does next, in one sentence."""
    said = plan_next_step(spec, target)
    return f"{target.name}: {said}" if said else None


def plan_each(spec: Spec, targets: Sequence[Target], parallelism: int = DEFAULT_PARALLELISM,
              *, replace: bool = False, state_dir: Path | None = None,
              progress: Reporter | None = None) -> Plan:
    """A verdict for every target: its plan, the gate's refusal, or why it could not be
    inspected. Nothing stops at the first bad pool: a fleet's plan is complete or useless.
    Each plan also says what stands in the way of applying it (``blockers``)."""
    folder = state_dir or default_state_dir(spec)
    created = now_utc()
    stamp = parse_time(created)  # one clock for the plan and its steps
    made = _each(targets, parallelism, lambda t: _plan_one(spec, t, folder, replace, stamp),
                 lambda p: p.failure is None, progress)
    return make_plan(spec, made, created)


def _plan_one(spec: Spec, target: Target, state_dir: Path, replace: bool,
              stamp: dt.datetime) -> TargetPlan:
    try:
        with open_sessions(spec, target) as sessions:
            # The lock and stunnel.conf come in the same round trip, as audit reads them:
            # apart from the facts the plan is made against.
            inspected = inspect_hosts(target, sessions)
    except WlbplanError as err:
        return TargetPlan.failed(target.name, "unreachable", str(err))
    seen, held = inspected.observed, inspected.lock
    made = plan_or_refusal(spec, target, seen, replace=replace, stamp=stamp)
    found = [f"{f.rule_id}: {f.message}" + (f" ({f.hint})" if f.hint else "")
             for f in blockers(spec, target, seen, lock=held, conf=inspected.conf,
                               lock_owner_alive=owner_alive(held) if held else None)]
    journal = Journal(state_dir, target.name, target.spec_path)
    if journal.exists():
        try:
            found.insert(0, journal.leftover_message(target.name))
        except JournalError as err:  # damaged or untrusted: that is the blocker
            found.insert(0, str(err))
    return dataclasses.replace(made, blockers=tuple(found)) if found else made


# ---- apply --------------------------------------------------------------------------------


def default_state_dir(spec: Spec) -> Path:
    return spec.path.parent / ".wlbplan"


def is_plan_file(path: Path) -> bool:
    """A saved plan is JSON with a format_version; anything else is taken as a spec."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()  # only the head: the file may be endless
    except OSError:
        return False
    return head.startswith(b"{") and b'"format_version"' in head


def read_saved_plan(path: Path) -> tuple[Plan, Spec]:
    """A saved plan and its spec, for ``show`` and ``apply``: refused when the spec changed
    since, or when any step is not exactly what wlbplan renders from the plan's own
    recorded changes and facts (an edited file). No host is contacted."""
    plan = read_plan(path)
    spec = spec_of_plan(plan)
    check_saved(plan, spec, str(path))
    return plan, spec


def spec_of_plan(plan: Plan) -> Spec:
    """The spec a saved plan was made from, refused if it changed since."""
    from wlbplan.spec import load_spec

    spec = load_spec(Path(plan.spec_path))
    if spec.digest != plan.spec_digest:
        raise StalePlanError(
            f"Saved plan is stale: the spec {plan.spec_path} changed after the plan was made. "
            "Make a new plan (wlbplan plan --out) and review it again."
        )
    return spec


def check_fresh(plan: Plan, observed: Sequence[Observed | WlbplanError]) -> None:
    """Refuse a saved plan when what it was made against has moved, saying what moved
    (a target that could not be inspected is the caller's to report)."""
    moved: list[str] = []
    for target_plan, seen in zip(plan.targets, observed, strict=True):
        if not isinstance(seen, Observed) or seen.digest() == target_plan.observed_digest:
            continue
        lines = drift(target_plan.observed, observed_view(seen)) or ["(details unavailable)"]
        moved += [visible(f"  {target_plan.target}: {line}") for line in lines]
    if moved:
        raise StalePlanError(
            "Saved plan is stale: the pool or the appliance changed after the plan was made:\n"
            + "\n".join(moved)
            + "\nMake a new plan (wlbplan plan --out) and review it again."
        )


def refuse_leftover_journals(state_dir: Path, targets: Sequence[Target]) -> None:
    leftovers = [Journal(state_dir, t.name, t.spec_path) for t in targets]
    found = [j.leftover_message(t.name) for j, t in zip(leftovers, targets, strict=True)
             if j.exists()]
    if found:
        raise JournalError("\n".join(found))


def apply_all(spec: Spec, plan: Plan, targets: Sequence[Target], *, parallelism: int,
              state_dir: Path, report: Reporter, cancel: threading.Event,
              lock_timeout: float = 0.0, fleet: Fleet | None = None,
              progress: Reporter | None = None) -> list[TargetOutcome]:
    """Each target's plan, in parallel across pools (each target is one pool: the spec's
    rules), step after step within one. With ``fleet``, over the connections that
    inspected the targets."""
    by_name = {t.target: t for t in plan.targets}

    def one(target: Target, sessions: Sessions) -> TargetOutcome:
        return apply_target(spec, target, by_name[target.name], sessions, state_dir,
                            report, cancel, lock_timeout)

    return _each_target(spec, targets, parallelism, one, fleet, progress)


def resume_all(spec: Spec, targets: Sequence[Target], *, parallelism: int, state_dir: Path,
               report: Reporter, cancel: threading.Event,
               progress: Reporter | None = None) -> list[TargetOutcome]:
    """``apply --resume``: every chosen target with an interrupted apply goes on from it."""

    def one(target: Target, sessions: Sessions) -> TargetOutcome:
        return resume_target(spec, target, sessions, state_dir, report, cancel)

    return _each_target(spec, targets, parallelism, one, None, progress)


def _each_target(spec: Spec, targets: Sequence[Target], parallelism: int,
                 work: Callable[[Target, Sessions], TargetOutcome], fleet: Fleet | None,
                 progress: Reporter | None) -> list[TargetOutcome]:
    """``work`` on every target with its sessions, ``parallelism`` at a time; one that is
    refused (lock, journal, connection) is that target's outcome, the others go on."""

    def one(target: Target) -> TargetOutcome:
        try:
            with _sessions(spec, target, fleet) as sessions:
                return work(target, sessions)
        except WlbplanError as err:  # refused before any step: lock, journal, connection
            return TargetOutcome(target.name, "refused", error=str(err),
                                 interrupted=isinstance(err, Interrupted))

    return _each(targets, parallelism, one, lambda o: o.ok, progress)


def rollback_one(spec: Spec, target: Target, state_dir: Path,
                 report: Reporter) -> TargetOutcome:
    with open_sessions(spec, target) as sessions:
        return rollback_target(spec, target, sessions, state_dir, report)
