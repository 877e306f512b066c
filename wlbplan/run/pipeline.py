"""The read-only pipeline over a spec's targets: inspect, then plan. Library, not CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wlbplan.core.audit import audit_target, blockers, make_audit, unreachable
from wlbplan.core.diff import drift, observed_view
from wlbplan.core.findings import Audit, TargetAudit
from wlbplan.core.plan import (
    Plan,
    TargetPlan,
    make_plan,
    now_utc,
    parse_time,
    plan_one,
    plan_or_refusal,
)
from wlbplan.core.plan import next_step as plan_next_step
from wlbplan.core.planfile import check_saved, read_plan
from wlbplan.core.stunnel_conf import Served as StunnelServes
from wlbplan.core.stunnel_conf import served_files
from wlbplan.errors import Interrupted, SpecError, StalePlanError, WlbplanError
from wlbplan.inspect.run import inspect_target
from wlbplan.model.command import Command
from wlbplan.model.events import Reporter, TargetOutcome
from wlbplan.model.observed import Observed
from wlbplan.model.shard import Shard
from wlbplan.model.spec import Spec, Target
from wlbplan.model.text import visible
from wlbplan.run.apply import apply_target, resume_target, rollback_target
from wlbplan.run.journal import Journal, JournalError
from wlbplan.run.lock import owner_alive, read_lock
from wlbplan.run.sessions import Sessions, open_sessions


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


def _inspect_one(spec: Spec, target: Target) -> Observed:
    with open_sessions(spec, target) as sessions:
        return inspect_target(target, sessions)


class TargetsFailed(WlbplanError):
    """Some targets could not be inspected; each one's error is listed."""


def inspect_each(spec: Spec, targets: Sequence[Target],
                 parallelism: int = 10) -> list[Observed | WlbplanError]:
    """Every target, ``parallelism`` at a time: what was observed, or why it could not be."""
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as workers:
        futures = [workers.submit(_inspect_one, spec, t) for t in targets]
    results: list[Observed | WlbplanError] = []
    for future in futures:
        try:
            results.append(future.result())
        except WlbplanError as err:
            results.append(err)
    return results


def inspect_all(spec: Spec, targets: Sequence[Target], parallelism: int = 10) -> list[Observed]:
    """Every target, or TargetsFailed naming every one that could not be inspected."""
    results = inspect_each(spec, targets, parallelism)
    problems = [f"{t.name}: {r}" for t, r in zip(targets, results, strict=True)
                if isinstance(r, WlbplanError)]
    if problems:
        raise TargetsFailed("\n".join(problems))
    return [r for r in results if isinstance(r, Observed)]


def _audit_one(spec: Spec, target: Target) -> TargetAudit:
    try:
        with open_sessions(spec, target) as sessions:
            seen = inspect_target(target, sessions)
            # Read apart from the facts: a lock is not part of what a plan is made against.
            held = read_lock(sessions.pool, target)
            conf = read_stunnel_conf(sessions, target)
    except WlbplanError as err:
        return unreachable(spec, target, str(err))
    return audit_target(spec, target, seen, lock=held, conf=conf,
                        lock_owner_alive=owner_alive(held) if held else None)


def read_stunnel_conf(sessions: Sessions, target: Target) -> StunnelServes | None:
    """What the appliance's stunnel.conf loads on WLB's port (None: the spec names none).
    Apart from the facts, like the lock: a plan is not made against it, only checked."""
    path = target.wlb.stunnel_conf
    if path is None:
        return None
    read = sessions.appliance.run(Command(("cat", "--", str(path))))
    if not read.ok:
        return StunnelServes(problem=f"cannot be read ({visible(read.stderr.strip())})")
    return served_files(read.stdout, target.wlb.port)


def audit_all(spec: Spec, targets: Sequence[Target], parallelism: int = 10) -> Audit:
    """Findings on every target; one that cannot be inspected is a finding, not an abort
    (a nightly audit of a fleet reports on the rest). Judging runs in the same worker as
    inspecting: its ``openssl verify`` calls overlap with other targets' round trips."""
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as workers:
        audited = list(workers.map(lambda t: _audit_one(spec, t), targets))
    return make_audit(spec, audited)


def plan_all(spec: Spec, targets: Sequence[Target], observed: Sequence[Observed], *,
             replace: bool = False) -> Plan:
    created = now_utc()
    stamp = parse_time(created)  # one clock for the plan and its steps
    return make_plan(spec, [plan_one(spec, t, o, replace=replace, stamp=stamp)
                            for t, o in zip(targets, observed, strict=True)], created)


def next_step(spec: Spec, target: Target) -> str | None:
    """After a request stage: what the operator does next, in one sentence."""
    said = plan_next_step(spec, target)
    return f"{target.name}: {said}" if said else None


def plan_each(spec: Spec, targets: Sequence[Target], parallelism: int = 10, *,
              replace: bool = False, state_dir: Path | None = None) -> Plan:
    """A verdict for every target: its plan, the gate's refusal, or why it could not be
    inspected. Nothing stops at the first bad pool: a fleet's plan is complete or useless.
    Each plan also says what stands in the way of applying it (``blockers``)."""
    folder = state_dir or default_state_dir(spec)
    created = now_utc()
    stamp = parse_time(created)  # one clock for the plan and its steps
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as workers:
        made = list(workers.map(lambda t: _plan_one(spec, t, folder, replace, stamp), targets))
    return make_plan(spec, made, created)


def _plan_one(spec: Spec, target: Target, state_dir: Path, replace: bool,
              stamp: dt.datetime) -> TargetPlan:
    try:
        with open_sessions(spec, target) as sessions:
            seen = inspect_target(target, sessions)
            held = read_lock(sessions.pool, target)  # as audit reads it: apart from the facts
            conf = read_stunnel_conf(sessions, target)
    except WlbplanError as err:
        return TargetPlan.failed(target.name, "unreachable", str(err))
    made = plan_or_refusal(spec, target, seen, replace=replace, stamp=stamp)
    found = [f"{f.rule_id}: {f.message}" + (f" ({f.hint})" if f.hint else "")
             for f in blockers(spec, target, seen, lock=held, conf=conf,
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


def check_fresh(plan: Plan, observed: Sequence[Observed]) -> None:
    """Refuse a saved plan when what it was made against has moved, saying what moved."""
    moved: list[str] = []
    for target_plan, seen in zip(plan.targets, observed, strict=True):
        if seen.digest() == target_plan.observed_digest:
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
              lock_timeout: float = 0.0) -> list[TargetOutcome]:
    by_name = {t.target: t for t in plan.targets}

    def one(target: Target, sessions: Sessions) -> TargetOutcome:
        return apply_target(spec, target, by_name[target.name], sessions, state_dir,
                            report, cancel, lock_timeout)

    return _each_target(spec, targets, parallelism, one)


def resume_all(spec: Spec, targets: Sequence[Target], *, parallelism: int, state_dir: Path,
               report: Reporter, cancel: threading.Event) -> list[TargetOutcome]:
    """``apply --resume``: every chosen target with an interrupted apply goes on from it."""

    def one(target: Target, sessions: Sessions) -> TargetOutcome:
        return resume_target(spec, target, sessions, state_dir, report, cancel)

    return _each_target(spec, targets, parallelism, one)


def _each_target(spec: Spec, targets: Sequence[Target], parallelism: int,
                 work: Callable[[Target, Sessions], TargetOutcome]) -> list[TargetOutcome]:
    """``work`` on every target with its sessions, ``parallelism`` at a time."""

    def one(target: Target) -> TargetOutcome:
        with open_sessions(spec, target) as sessions:
            return work(target, sessions)

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as workers:
        futures = [workers.submit(one, t) for t in targets]
    outcomes = []
    for target, future in zip(targets, futures, strict=True):
        try:
            outcomes.append(future.result())
        except WlbplanError as err:  # refused before any step: lock, journal, connection
            outcomes.append(TargetOutcome(target.name, "refused", error=str(err),
                                          interrupted=isinstance(err, Interrupted)))
    return outcomes


def rollback_one(spec: Spec, target: Target, state_dir: Path,
                 report: Reporter) -> TargetOutcome:
    with open_sessions(spec, target) as sessions:
        return rollback_target(spec, target, sessions, state_dir, report)
