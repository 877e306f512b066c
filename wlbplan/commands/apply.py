"""``wlbplan apply``, ``wlbplan rollback`` and ``wlbplan force-unlock``."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wlbplan.commands.options import (
    finite_seconds,
    format_option,
    note_empty_shard,
    parallelism_option,
    shard_option,
    targets_option,
    timeout_option,
    with_timeout,
)

if TYPE_CHECKING:
    from wlbplan.core.plan import Plan
    from wlbplan.model.events import Reporter, TargetOutcome
    from wlbplan.model.shard import Shard
    from wlbplan.model.spec import Spec, Target
    from wlbplan.render.events import EventWriter
    from wlbplan.run.sessions import Fleet

_state_dir_option = click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None,
    help="Where journals are kept (default: .wlbplan/ beside the spec).",
)


@click.command("apply")
@click.argument("source", metavar="SPEC|PLAN", type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@targets_option
@shard_option
@format_option("text", "json")
@parallelism_option
@timeout_option
@click.option("--lock-timeout", type=click.FloatRange(0), callback=finite_seconds,
              default=0.0, show_default=True,
              help="Seconds to wait for another apply's lock on a pool (Ctrl-C stops "
                   "waiting).")
@_state_dir_option
@click.option("--replace", is_flag=True,
              help="CA-signed request stage: make a new pending key and CSR even if "
                   "matching ones exist.")
@click.option("--resume", is_flag=True,
              help="Go on with an apply that was killed (its journal is left): undo the "
                   "step it died in, then run the rest of the plan it was running.")
def apply(source: Path, auto_approve: bool, targets: tuple[str, ...], shard: Shard | None,
          output_format: str, parallelism: int, timeout: float | None, lock_timeout: float,
          state_dir: Path | None, replace: bool, resume: bool) -> int:
    """Apply a spec (plan, confirm, run) or a saved plan (run as reviewed).

    Every step's undo is journaled before it runs; on failure or Ctrl-C the steps
    already done are undone, last first. A target that cannot be reached, or whose plan
    is refused (the pool would refuse WLB), is reported and the others are applied.
    Exit 0 applied (or nothing to do), 1 a target failed (rolled back), was refused or
    could not be reached, 130 interrupted.
    """
    from wlbplan.errors import WlbplanError
    from wlbplan.render.progress import progress
    from wlbplan.run import pipeline
    from wlbplan.run.sessions import Fleet
    from wlbplan.spec import load_spec

    as_json = output_format == "json"
    if not source.exists():
        raise WlbplanError(f"{source}: no such file; apply takes a spec (YAML) or a plan "
                           "saved by `wlbplan plan SPEC --out PLAN`")
    if resume:
        return _resume(source, targets, shard, as_json, parallelism, state_dir, timeout)
    saved: Plan | None = None
    if pipeline.is_plan_file(source):
        if targets or shard:
            narrowed = (_narrowed_plan(source, targets) if targets else
                        f"wlbplan plan SPEC --shard {shard} --out PLAN")
            raise WlbplanError(
                f"{source} is a saved plan: it is applied whole, as it was reviewed, and "
                f"{'--target' if targets else '--shard'} cannot narrow it. Make a plan of "
                f"those targets instead: `{narrowed}`")
        saved, spec = pipeline.read_saved_plan(source)
        spec = with_timeout(spec, timeout)
        chosen = pipeline.select(spec, [t.target for t in saved.targets])
    else:
        spec = with_timeout(load_spec(source), timeout)
        chosen = pipeline.select(spec, targets, shard)
        note_empty_shard(shard, chosen)
    # A crashed apply is settled before anything else, even before the plan is shown.
    folder = state_dir or pipeline.default_state_dir(spec)
    pipeline.refuse_leftover_journals(folder, chosen)
    # One connection per host for the whole apply: what inspects a target runs its steps.
    with Fleet(spec) as fleet:
        with progress("inspect", len(chosen)) as shown:
            seen = pipeline.inspect_each(spec, chosen, parallelism, fleet=fleet,
                                         progress=shown)
        if saved is None:
            plan = pipeline.plan_all(spec, chosen, seen, replace=replace)
            if not as_json:
                _show_plan(plan)
        else:
            plan = saved
            pipeline.check_fresh(plan, seen)
        _confirm_holding_nothing(fleet, plan,
                                 ask=saved is None and plan.has_changes and not auto_approve)
        not_run = _not_run(plan, chosen, seen)
        stages = {t.target: t.stage for t in plan.targets}

        def run(working: Sequence[Target], writer: EventWriter, cancel: threading.Event,
                shown: Reporter) -> list[TargetOutcome]:
            outcomes = pipeline.apply_all(spec, plan, working, parallelism=parallelism,
                                          state_dir=folder, report=writer, cancel=cancel,
                                          lock_timeout=lock_timeout, fleet=fleet,
                                          progress=shown)
            for outcome, target in zip(outcomes, working, strict=True):
                request = stages.get(target.name) == "request"
                hint = pipeline.next_step(spec, target) if request else None
                if outcome.ok and hint:
                    writer.note(target.name, hint)
            return outcomes

        return _run_and_report(spec, chosen, as_json, parallelism, run, fleet=fleet,
                               not_run=not_run)


def _not_run(plan: Plan, chosen: Sequence[Target],
             seen: Sequence[object]) -> dict[str, TargetOutcome]:
    """The targets nothing is tried on, each its outcome: those that could not be
    inspected, and those the gate refused (only that target: the others go on)."""
    from wlbplan.errors import WlbplanError
    from wlbplan.model.events import TargetOutcome

    outcomes = {t.name: TargetOutcome(t.name, "unreachable", error=str(r))
                for t, r in zip(chosen, seen, strict=True) if isinstance(r, WlbplanError)}
    for made in plan.targets:
        if made.failure == "refused" and made.target not in outcomes:
            outcomes[made.target] = TargetOutcome(made.target, "refused", error=made.reason)
    return outcomes


def _narrowed_plan(source: Path, targets: tuple[str, ...]) -> str:
    """The plan command for just ``targets``, naming the saved plan's spec if it says."""
    from wlbplan.core.planfile import read_plan
    from wlbplan.errors import WlbplanError
    from wlbplan.model.spec import cli_command

    try:
        spec_path = read_plan(source).spec_path
    except WlbplanError:
        spec_path = ""
    return cli_command("plan", spec_path, *(a for t in targets for a in ("--target", t)),
                       "--out", "PLAN")


def _resume(source: Path, targets: tuple[str, ...], shard: Shard | None, as_json: bool,
            parallelism: int, state_dir: Path | None, timeout: float | None) -> int:
    from wlbplan.errors import WlbplanError
    from wlbplan.run import pipeline
    from wlbplan.spec import load_spec

    if pipeline.is_plan_file(source):
        raise WlbplanError(f"{source}: --resume takes the SPEC; the journal holds the plan "
                           "the interrupted apply was running")
    spec = with_timeout(load_spec(source), timeout)
    chosen = pipeline.select(spec, targets, shard)
    note_empty_shard(shard, chosen)
    folder = state_dir or pipeline.default_state_dir(spec)

    def run(working: Sequence[Target], writer: EventWriter, cancel: threading.Event,
            shown: Reporter) -> list[TargetOutcome]:
        return pipeline.resume_all(spec, working, parallelism=parallelism, state_dir=folder,
                                   report=writer, cancel=cancel, progress=shown)

    return _run_and_report(spec, chosen, as_json, parallelism, run)


Work = Callable[[Sequence["Target"], "EventWriter", threading.Event, "Reporter"],
                list["TargetOutcome"]]


def _run_and_report(spec: Spec, chosen: Sequence[Target], as_json: bool, parallelism: int,
                    run: Work, *, fleet: Fleet | None = None,
                    not_run: dict[str, TargetOutcome] | None = None) -> int:
    """Progress over the targets that run, signals turned into a cancel, the summary of
    every chosen target (those ``not_run`` too) with each failed one's state now, and
    the exit status (130 interrupted, 1 any failure)."""
    from wlbplan.render.events import EventWriter
    from wlbplan.render.progress import progress

    missing = not_run or {}
    working = [t for t in chosen if t.name not in missing]
    # Held to the very end: a stop that comes once a target's steps are all done changes
    # nothing, and the report and the exit status say what really happened.
    with _signals_cancel(_STOP_APPLY) as cancel:
        with progress("apply", len(working)) as shown:
            writer = EventWriter(sys.stdout if as_json else shown.stream, as_json,
                                 str(spec.path))
            writer.start()
            ran = {o.target: o for o in run(working, writer, cancel, shown)}
            if cancel.is_set():
                for outcome in ran.values():
                    if not outcome.interrupted and outcome.status == "applied":
                        writer(_late_stop(outcome))
        outcomes = [ran.get(t.name) or missing[t.name] for t in chosen]
        # Those not run are as the plan showed them a moment ago: not inspected again.
        writer.summary(outcomes, _states_after(spec, chosen, outcomes, parallelism, fleet,
                                               skip=set(missing)))
    return _exit_status(outcomes)


_STOP_APPLY = ("Stopping after the current step: a target whose apply has not finished "
               "will be rolled back; one that has finished stays applied…")
_STOP_ROLLBACK = "The rollback is never cut short: it goes on to the end…"


def _late_stop(outcome: TargetOutcome) -> dict[str, str]:
    return {"type": "stop_after_finish", "target": outcome.target,
            "message": f"{outcome.target}: the stop came after its last step had run; "
                       "it stays applied (nothing was undone)."}


def _exit_status(outcomes: Sequence[TargetOutcome]) -> int:
    """From what happened to each target, never from when a signal came: 130 when a
    target was stopped (rolled back or not started) on the operator's request."""
    if any(o.interrupted for o in outcomes):
        return 130
    return 0 if all(o.ok for o in outcomes) else 1


def _show_plan(plan: Plan) -> None:
    from wlbplan.render import render_plan
    from wlbplan.render.console import want_color

    click.echo(render_plan(plan, "text", color=want_color()), nl=False)


def _confirm_holding_nothing(fleet: Fleet, plan: Plan, *, ask: bool) -> None:
    """The connections of targets with no step are closed now: nothing more runs there
    (a failed target is re-inspected, and none of these can fail). With ``ask``, every
    connection is closed before the prompt, and the apply connects again after 'yes'.

    Why not keep them through the prompt: a person may take minutes, or leave the prompt
    open; meanwhile every host would hold an idle session (two per target, hundreds for a
    fleet), and a firewall or NAT that drops idle flows silently leaves a connection that
    looks open, so the first command after 'yes' would hang until the command timeout and
    the target would be reported unreachable. One reconnect per host after a human's
    answer costs a handshake, nothing next to the wait. The common fleet cases never ask
    (``--auto-approve`` in CI, a saved plan): they keep the connections that inspected
    the targets, and run the steps over them without a reconnect."""
    fleet.close([t.target for t in plan.targets if not t.steps])
    if ask:
        fleet.close()
        _confirm()


def _confirm() -> None:
    from wlbplan.errors import WlbplanError

    if not sys.stdin.isatty():
        raise WlbplanError(
            "refusing to apply without confirmation: stdin is not a terminal. Review the "
            "plan, then run again with --auto-approve (or apply a saved plan file)."
        )
    answer = click.prompt("Do you want to perform these actions? Only 'yes' will be accepted",
                          default="", show_default=False, err=True)
    if answer.strip() != "yes":
        raise WlbplanError("Apply cancelled: nothing was changed.")


@contextlib.contextmanager
def _signals_cancel(message: str) -> Iterator[threading.Event]:
    """SIGINT and SIGTERM ask the apply to stop between steps and roll back; they never
    interrupt a step or an undo half-way. ``message`` is shown once, when asked; it must
    hold whenever the signal comes."""
    cancel = threading.Event()

    def ask_to_stop(signum: int, frame: object) -> None:
        if not cancel.is_set():
            click.echo(message, err=True)
        cancel.set()

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _states_after(spec: Spec, chosen: Sequence[Target], outcomes: Sequence[TargetOutcome],
                  parallelism: int, fleet: Fleet | None = None,
                  skip: set[str] | None = None) -> dict[str, str]:
    """Re-inspect the targets that failed, to say exactly what state they are in now
    (not those in ``skip``: they could not be inspected a moment ago)."""
    from wlbplan.errors import WlbplanError
    from wlbplan.render.events import state_line
    from wlbplan.run import pipeline

    failed = {o.target for o in outcomes if not o.ok} - (skip or set())
    targets = [t for t in chosen if t.name in failed]
    states: dict[str, str] = {}
    for target in targets:
        try:
            seen = pipeline.inspect_all(spec, [target], parallelism, fleet=fleet)[0]
        except WlbplanError as err:
            states[target.name] = f"could not be inspected: {err}"
            continue
        states[target.name] = state_line(seen)
    return states


@click.command("rollback")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--target", "target", required=True, help="The target whose apply to undo.")
@format_option("text", "json")
@_state_dir_option
@timeout_option
def rollback(spec: Path, target: str, output_format: str, state_dir: Path | None,
             timeout: float | None) -> int:
    """Undo an interrupted or crashed apply from its journal."""
    from wlbplan.render.events import EventWriter
    from wlbplan.run import pipeline
    from wlbplan.spec import load_spec

    loaded = with_timeout(load_spec(spec), timeout)
    chosen = pipeline.select(loaded, [target])
    as_json = output_format == "json"
    writer = EventWriter(sys.stdout if as_json else sys.stderr, as_json, str(spec))
    writer.start()
    folder = state_dir or pipeline.default_state_dir(loaded)
    with _signals_cancel(_STOP_ROLLBACK):  # held: a rollback is never cut short
        outcome = pipeline.rollback_one(loaded, chosen[0], folder, writer)
    writer.summary([outcome], _states_after(loaded, chosen, [outcome], 1)
                   if outcome.status != "nothing_to_do" else {}, rollback=True)
    return 0 if outcome.status in ("rolled_back", "nothing_to_do") else 1


@click.command("force-unlock")
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--target", "target", default=None,
              help="The target whose pool to unlock (needed when the spec has several).")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.argument("lock_id")
@_state_dir_option
@timeout_option
def force_unlock(spec: Path, target: str | None, force: bool, lock_id: str,
                 state_dir: Path | None, timeout: float | None) -> int:
    """Remove a pool's apply lock left by a dead run (needs the exact LOCK_ID).

    Only for a lock whose apply is gone and whose journal is lost: `wlbplan rollback`
    and `wlbplan apply --resume` settle a dead run's lock by themselves. One more case:
    when this machine holds that run's journal and its rollback was incomplete (what it
    could not undo was listed, to be done by hand), the journal is closed too, so the
    next apply can proceed.
    """
    from wlbplan.errors import SpecError, WlbplanError
    from wlbplan.render.safe import safe
    from wlbplan.run import lock
    from wlbplan.run.apply import closable_journal
    from wlbplan.run.pipeline import default_state_dir, select
    from wlbplan.run.sessions import open_sessions
    from wlbplan.spec import load_spec

    loaded = with_timeout(load_spec(spec), timeout)
    if target is None and len(loaded.targets) > 1:
        names = ", ".join(t.name for t in loaded.targets)
        raise SpecError(f"{spec} has several targets ({names}): name the pool to unlock "
                        "with --target NAME")
    chosen = select(loaded, [target] if target else [])[0]
    if not force:
        if not sys.stdin.isatty():
            raise WlbplanError(
                f"refusing to remove the lock of {chosen.name} without confirmation: stdin is "
                "not a terminal. Run again with --force once you are sure its apply is gone.")
        answer = click.prompt(
            f"Remove the apply lock {lock_id} of {chosen.name}? Another apply may then run "
            "on this pool. Only 'yes' will be accepted", default="", show_default=False,
            err=True)
        if answer.strip() != "yes":
            raise WlbplanError("Force-unlock cancelled: the lock was kept.")
    journal = closable_journal(state_dir or default_state_dir(loaded), chosen, lock_id)
    with open_sessions(loaded, chosen) as sessions:
        if journal is None or lock.read_lock(sessions.pool, chosen) is not None:
            holder = lock.force_unlock(sessions.pool, chosen, lock_id)
            click.echo(f"{chosen.name}: removed {holder.describe()}")
    if journal is not None:
        left = journal.replay().incomplete
        archived = journal.end("rollback_incomplete")
        click.echo(f"{chosen.name}: closed the journal of the incomplete rollback "
                   f"({archived}); what it could not undo is yours to restore by hand:")
        for failure in left:  # host text (xe errors) inside: shown escaped
            click.echo(f"  {safe(failure)}")
    return 0
